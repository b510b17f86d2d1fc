"""A real Daphne server in a spawned process, against the test database."""

from __future__ import annotations

import importlib
import multiprocessing
import os
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings


def use_source_static_files() -> None:
    """Serve static files through the finders, so no collectstatic manifest is needed."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _resolve(spec: str) -> tuple[Any, str]:
    """`"package.module:name"` -> (the imported module, "name")."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ValueError(f"a patch names module:attribute, not {spec!r}")
    return importlib.import_module(module_name), attribute


def patches_apply(patches: Mapping[str, str]) -> None:
    """Replace each `module:name` by the object `replacement_module:name` names.

    The object is replaced in its module and in every loaded module that imported the same
    object by name (`from chats.tree_services import chat_lock`), so call this once the code
    that uses it is imported. Imports done later inside functions read the patched module attribute.
    """
    for target, replacement_spec in patches.items():
        module, name = _resolve(target)
        original = getattr(module, name)
        replacement_module, replacement_name = _resolve(replacement_spec)
        replacement = getattr(replacement_module, replacement_name)
        for loaded in list(sys.modules.values()):
            namespace = getattr(loaded, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for attribute, value in list(namespace.items()):
                if value is original:
                    setattr(loaded, attribute, replacement)


def _serve(
    port: int,
    database: dict[str, Any],
    extra_env: dict[str, str],
    patches: dict[str, str] | None = None,
) -> None:
    """Run in the child: point Django at the test database and serve with Daphne."""
    os.environ.update(extra_env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vero.settings")
    import django

    django.setup()
    from django.conf import settings as child_settings

    child_settings.DATABASES["default"].update(database)
    use_source_static_files()

    # Transactional tests recreate content types under new ids between tests; a cached id
    # from an earlier test would break the admin's log entries.
    from django.contrib.contenttypes.models import ContentType
    from django.core.signals import request_started

    request_started.connect(
        lambda **_: ContentType.objects.clear_cache(), weak=False, dispatch_uid="ct-cache"
    )

    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server

    from vero.asgi import application

    if patches:
        # Every view (and so every service module) is imported before patching.
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018  (imports the URLconf's views)
        patches_apply(patches)

    Server(
        application=application,
        endpoints=build_endpoint_description_strings(host="127.0.0.1", port=port),
        signal_handlers=True,
        verbosity=0,
    ).run()


@dataclass
class LiveServer:
    url: str
    process: multiprocessing.process.BaseProcess

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


def live_server_start(
    *, extra_env: dict[str, str] | None = None, patches: dict[str, str] | None = None
) -> LiveServer:
    """Spawn Daphne on a free port against the current (test) database; wait until it answers.

    `patches` replace objects in the server's process only, for tests that show a safeguard
    matters: `{"chats.tree_services:chat_lock": "tests.chats.tree_invariants:no_lock"}` serves
    with the chat's lock replaced everywhere it was imported (`patches_apply`).
    """
    from django.db import connection

    database = {"NAME": connection.settings_dict["NAME"]}
    port = _free_port()
    context = multiprocessing.get_context("spawn")
    # No LiteLLM preload: the fake provider speaks OpenAI's API, served by the lean engine.
    # No registry cache: the tests change the registry from this process, which the server's
    # cache would only see after REGISTRY_CACHE_SECONDS (tests/models_registry/test_cache.py).
    env = {
        "SECURE_COOKIES": "false",
        "LLM_PRELOAD": "false",
        "REGISTRY_CACHE_SECONDS": "0",
        **(extra_env or {}),
    }
    process = context.Process(target=_serve, args=(port, database, env, patches), daemon=True)
    process.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not process.is_alive():
            raise RuntimeError(f"live server exited with code {process.exitcode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return LiveServer(url=f"http://127.0.0.1:{port}", process=process)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("live server did not start within 60 s")
