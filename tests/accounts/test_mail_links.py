"""Links in mail work as they are copied: the site's real scheme and host, never wrapped."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from accounts.models import User
from tests.live_http import HttpSession, console_link, watched_server
from vero.mail import ConsoleEmailBackend

_SET_PASSWORD_FORM = 'name="password2"'


@pytest.mark.django_db(transaction=True)
def test_a_reset_link_copied_from_the_server_output_opens_the_set_password_page(
    alice: User, capfd: pytest.CaptureFixture[str]
) -> None:
    with watched_server() as server:
        visitor = HttpSession(server.url)
        visitor.get("/accounts/password/reset/")
        sent = visitor.post("/accounts/password/reset/", {"email": "alice@example.com"})
        assert sent.url.endswith("/accounts/password/reset/done/")

        link = console_link(capfd, "/accounts/password/reset/key/")
        assert link.startswith(server.url + "/accounts/password/reset/key/")
        reader = HttpSession(server.url)
        page = reader.get(link)
        assert page.status == 200
        assert page.url.endswith("-set-password/")
        assert _SET_PASSWORD_FORM in page.text
        new_password = {
            "password1": "a brand new passphrase",
            "password2": "a brand new passphrase",
        }
        changed = reader.post(page.url, new_password)
    assert changed.status == 200
    assert changed.url == server.url + "/"
    assert "alice@example.com" in changed.text or "Alice" in changed.text


@pytest.mark.django_db
def test_links_in_mail_use_app_base_url_when_a_proxy_hides_the_address(
    alice: User, settings: SettingsWrapper
) -> None:
    settings.APP_BASE_URL = "https://chat.example.com"
    client = Client()
    client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert len(mail.outbox) == 1
    body = str(mail.outbox[0].body)
    assert "testserver" not in body
    link = re.search(r"https://chat\.example\.com(/accounts/password/reset/key/\S+)", body)
    assert link is not None
    page = client.get(link.group(1), follow=True)
    assert _SET_PASSWORD_FORM in page.content.decode()


def test_console_mail_prints_a_long_link_on_one_line_and_text_decoded() -> None:
    link = "http://127.0.0.1:8000/accounts/password/reset/key/" + "a1-" * 40 + "?next=/c/x&y=1"
    message = mail.EmailMessage(
        "Réinitialiser", f"Bonjour Zoë,\n\n{link}\n", to=["zoe@example.com"]
    )
    stream = io.StringIO()
    ConsoleEmailBackend(stream=stream).send_messages([message])
    printed = stream.getvalue().splitlines()
    assert link in printed
    assert "Bonjour Zoë," in printed
    assert "Subject: Réinitialiser" in printed


def _settings_with_app_base_url(value: str) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh interpreter, as a server starting with APP_BASE_URL would."""
    return subprocess.run(
        [sys.executable, "-c", "from vero import settings; print(settings.APP_BASE_URL)"],
        env={**os.environ, "APP_BASE_URL": value},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "value", ["chat.example.com", "ftp://chat.example.com", "https://chat.example.com/vero"]
)
def test_a_server_refuses_to_start_with_an_app_base_url_that_is_not_a_scheme_and_host(
    value: str,
) -> None:
    loaded = _settings_with_app_base_url(value)
    assert loaded.returncode != 0
    assert "APP_BASE_URL must be a scheme and host" in loaded.stderr


def test_app_base_url_loses_its_trailing_slash() -> None:
    loaded = _settings_with_app_base_url("https://chat.example.com:8443/")
    assert loaded.stdout.strip() == "https://chat.example.com:8443"
