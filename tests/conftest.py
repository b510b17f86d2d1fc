"""Shared fixtures: personas (a guest, alice, bob, an admin) and clients acting as them.

Fixtures and pytest hooks only; the plain helpers they use live in `tests/helpers.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from tests.helpers import PASSWORD, client_for_guest, fake_model_register

pytest_plugins = ["tests.fixtures_fake_provider"]


def pytest_configure(config: pytest.Config) -> None:
    # Serve static files from the source folders: tests need no collectstatic manifest.
    from tests.live_server import use_source_static_files

    use_source_static_files()
    # Concurrency tests hold dozens of connections at once on purpose: a larger pool here.
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    if isinstance(pool, dict):
        pool["max_size"] = 80
    # Hashing passwords at production cost would dominate the suite's time.
    from django.conf import settings as django_settings

    django_settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _generation_loop_quiet_at_the_end(django_db_setup: None) -> Iterator[None]:
    """Before the test database goes: stop the in-process generation loop's tasks (its reaper
    would fail on the missing database) and close its HTTP sessions (left open, they warn at
    exit)."""
    yield
    import asyncio

    from chats.worker import _worker
    from models_registry.llm import llm_close

    loop = _worker.loop
    if loop is not None and loop.is_running():

        async def quiet() -> None:
            tasks = [task for task in _worker.tasks if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await llm_close()

        asyncio.run_coroutine_threadsafe(quiet(), loop).result(30)


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user("alice@example.com", PASSWORD, name="Alice")


@pytest.fixture
def bob(db: None) -> User:
    return User.objects.create_user("bob@example.com", PASSWORD, name="Bob")


@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_superuser("admin@example.com", PASSWORD)


@pytest.fixture
def guest(db: None) -> User:
    """A guest who has already written something (so their row exists)."""
    return User.objects.create(is_guest=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last: Playwright keeps an event loop on the main thread."""
    items.sort(key=lambda item: "tests/browser/" in str(item.fspath))


@pytest.fixture
def guest_client(guest: User) -> Client:
    return client_for_guest(guest)


@pytest.fixture
def alice_client(alice: User) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob: User) -> Client:
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture
def admin_client(admin_user: User) -> Client:  # overrides pytest-django's admin_client
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def fake_model(db: None, fake_llm: Any) -> str:
    return fake_model_register(fake_llm.base_url)


@pytest.fixture(autouse=True)
def _registry_cache_empty() -> Iterator[None]:
    """Each test starts with this process's registry cache empty (it outlives transactions)."""
    from models_registry.cache import registry_cache_clear

    registry_cache_clear()
    yield
    registry_cache_clear()
