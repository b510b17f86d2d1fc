"""Helpers for account tests: log in through the form, confirm an address from its mail."""

from __future__ import annotations

import re

from django.core import mail
from django.test import Client

from tests.helpers import PASSWORD


def login(client: Client, email: str, next_url: str | None = None) -> str:
    url = "/accounts/login/" + (f"?next={next_url}" if next_url else "")
    data = {"login": email, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    response = client.post(url, data)
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def email_confirm(client: Client, email: str) -> None:
    """Ask for the verification mail on /accounts/email/ and follow its link, as its owner."""
    mail.outbox.clear()
    client.post("/accounts/email/", {"email": email, "action_send": ""})
    assert len(mail.outbox) == 1, "no verification mail was sent"
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+)", str(mail.outbox[0].body))
    assert link is not None
    assert client.post(link.group(1)).status_code == 302
