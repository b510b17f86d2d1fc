"""A refused CSRF token is explained in words, and the page's script can read the fresh one."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_the_csrf_cookie_is_readable_by_the_pages_script_under_the_name_it_reads() -> None:
    # static/js/requests.js reads the token from this cookie at every request.
    assert settings.CSRF_COOKIE_HTTPONLY is False
    assert settings.CSRF_COOKIE_NAME == "csrftoken"
    script = (settings.BASE_DIR / "static/js/requests.js").read_text()
    assert f'const CSRF_COOKIE = "{settings.CSRF_COOKIE_NAME}"' in script


def test_a_post_with_a_stale_token_is_refused_in_words_and_marked_for_the_script(
    alice: User,
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/")  # the page hands out a token cookie

    response = client.post(
        "/c/send", {"text": "hi", "model": "x", "csrfmiddlewaretoken": "stale" * 8},
        headers={"HX-Request": "true"},
    )  # fmt: skip

    assert response.status_code == 403
    assert response["Vero-CSRF-Failure"] == "1"
    page = response.content.decode()
    assert "you probably signed in or out in another tab" in page
    assert "CSRF verification failed" not in page
