from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_channel_layer(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_answers_503_when_the_channel_layer_is_unreachable(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["channel_layer"] == "error"
    assert response.json()["database"] == "ok"


def test_favicon_points_at_the_static_icon_without_touching_the_csrf_cookie(
    client: Client,
) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith(".svg")
    assert "favicon" in response["Location"]
    assert settings.CSRF_COOKIE_NAME not in response.cookies
    assert client.get(response["Location"]).status_code == 200


def test_pages_name_their_icon(client: Client) -> None:
    page = client.get("/").content.decode()
    assert '<link rel="icon"' in page
    assert "img/favicon" in page
