"""The service worker's script and the app shell it keeps: served at the root with the headers
a worker needs, and a shell that holds nothing of the person who fetched it."""

from __future__ import annotations

import json
import re

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from chats.models import Chat

pytestmark = pytest.mark.django_db


def _assets(body: str) -> list[str]:
    match = re.search(r"const ASSETS = (\[.*?\]);", body)
    assert match is not None
    return list(json.loads(match.group(1)))


def test_the_service_worker_is_served_at_the_root_for_the_whole_site(client: Client) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    assert response["Cache-Control"] == "no-cache"


def test_the_service_worker_keeps_the_shell_and_the_projects_static_files(client: Client) -> None:
    body = client.get("/sw.js").content.decode()
    assets = _assets(body)
    assert 'const SHELL_URL = "/shell"' in body
    assert f"{settings.STATIC_URL}js/cache/paint.js" in assets
    assert f"{settings.STATIC_URL}js/cache/offline.js" in assets
    assert any(asset.startswith(f"{settings.STATIC_URL}vendor/htmx-") for asset in assets)
    assert not any("/admin/" in asset or asset.endswith(".md") for asset in assets)


def test_the_service_worker_version_changes_with_its_assets(client: Client) -> None:
    from vero.views import _shell_version

    first = _shell_version(("/static/js/a.js",))
    assert first == _shell_version(("/static/js/a.js",))
    assert first != _shell_version(("/static/js/a.1234.js",))


def test_the_shell_holds_none_of_the_users_data(alice: User, alice_client: Client) -> None:
    Chat.objects.create(user=alice, title="Secret plans for Tuesday")
    response = alice_client.get("/shell")
    body = response.content.decode()
    assert response.status_code == 200
    assert "data-app-shell" in body
    assert "Secret plans" not in body
    assert "alice" not in body.lower()
    assert "csrfmiddlewaretoken" not in body and "X-CSRFToken" not in body
    assert settings.CSRF_COOKIE_NAME not in response.cookies
    assert "no-store" in response["Cache-Control"]


def test_the_chat_page_still_shows_the_users_chats_and_token(
    alice: User, alice_client: Client
) -> None:
    chat = Chat.objects.create(user=alice, title="Secret plans for Tuesday")
    body = alice_client.get(f"/c/{chat.id}/").content.decode()
    assert "Secret plans" in body and "X-CSRFToken" in body and "Alice" in body
    assert "data-app-shell" not in body


def test_the_shell_answers_a_head_request_so_an_offline_page_can_probe_it(
    client: Client,
) -> None:
    assert client.head("/shell").status_code == 200


def test_the_worker_and_the_shell_refuse_writes(client: Client) -> None:
    assert client.post("/sw.js").status_code == 405
    assert client.post("/shell").status_code == 405
