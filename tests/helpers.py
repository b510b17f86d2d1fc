"""Helpers shared by every test package: the personas' password, a guest's client, the fake
model, and a listener on the realtime events' channel.

They live here rather than in `tests/conftest.py` so that tests import plain functions from a
plain module; conftest keeps the fixtures, which use these helpers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import connection
from django.test import Client

from accounts.guests import guest_token_issue
from accounts.models import User
from realtime.events import CHANNEL

PASSWORD = "correct horse battery staple"

FAKE_MODEL_ID = "fake:fake-model"


def client_for_guest(user: User) -> Client:
    """A client carrying `user`'s guest cookie, as the guest's browser would."""
    client = Client()
    client.cookies[settings.GUEST_COOKIE_NAME] = guest_token_issue(guest_id=user.id)
    return client


def fake_model_register(base_url: str) -> str:
    """Register the fake provider as a custom endpoint serving `fake:fake-model` to every tier."""
    from models_registry.models import Creator, Model, ModelProvider, Provider, Tier

    creator, _ = Creator.objects.get_or_create(slug="fake", defaults={"name": "Fake Labs"})
    provider, _ = Provider.objects.update_or_create(
        slug="fake-provider",
        defaults={"name": "Fake provider", "kind": "custom", "base_url": base_url, "enabled": True},
    )
    model, _ = Model.objects.get_or_create(
        id=FAKE_MODEL_ID,
        defaults={"creator": creator, "display_name": "Fake Model", "input_modalities": ["text"]},
    )
    ModelProvider.objects.get_or_create(
        model=model,
        provider=provider,
        defaults={
            "provider_model_id": "fake-model",
            "is_default": True,
            "price_input_per_million": 1,
            "price_output_per_million": 2,
        },
    )
    for slug, name in (("guest", "Guest"), ("regular", "Regular")):
        Tier.objects.update_or_create(
            slug=slug,
            defaults={"name": name, "includes_all_models": True, "bucket_capacity": 100,
                      "refill_amount": 100, "refill_interval_seconds": 3600},
        )  # fmt: skip
    return FAKE_MODEL_ID


class EventListener:
    """A connection of its own LISTENing on the events' channel, as a server process does."""

    def __init__(self, listener: psycopg.Connection[Any]) -> None:
        self._listener = listener

    def received(self, timeout: float = 0.5) -> list[dict[str, Any]]:
        """The payloads delivered since the last call, waiting `timeout` seconds for more."""
        return [orjson.loads(note.payload) for note in self._listener.notifies(timeout=timeout)]


@contextmanager
def events_listen() -> Iterator[EventListener]:
    """Listen on the events' channel of the test database; only committed events arrive."""
    database = connection.settings_dict
    with psycopg.connect(
        host=database["HOST"] or None,
        port=database["PORT"] or None,
        user=database["USER"] or None,
        password=database["PASSWORD"] or None,
        dbname=database["NAME"],
        autocommit=True,
    ) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        yield EventListener(listener)
