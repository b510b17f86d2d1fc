"""Pytest fixtures for the fake LLM provider: one server per session, reset for every test.

Import them into a conftest with `from tests.fixtures_fake_provider import *` or list this
module in `pytest_plugins`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_provider import FakeProvider

__all__ = ["fake_llm", "fake_provider_server"]


@pytest.fixture(scope="session")
def fake_provider_server() -> Iterator[FakeProvider]:
    """The running fake provider, shared by the whole session (prefer `fake_llm` in tests)."""
    with FakeProvider() as server:
        yield server


@pytest.fixture
def fake_llm(fake_provider_server: FakeProvider) -> Iterator[FakeProvider]:
    """The fake provider with an empty queue, no recorded requests and default settings."""
    fake_provider_server.reset()
    yield fake_provider_server
    # Also reset afterwards so a test that failed mid-stall does not leave a handler hanging.
    fake_provider_server.reset()
