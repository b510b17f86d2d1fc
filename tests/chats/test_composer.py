"""The composer: what it says when no model can be used, and the picker's capability icons."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import User
from chats.models import Chat, Message
from models_registry.models import Model

pytestmark = pytest.mark.django_db

# Emoji and pictographs (the picker used 💡, 🛠 and 🖼, boxes where no emoji font exists).
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]")


def _composer(client: Client) -> str:
    page = client.get("/").content.decode()
    return page[
        page.index('<form class="composer"') : page.index(
            "</form>", page.index('<form class="composer"')
        )
    ]


def _send_button(composer: str) -> str:
    return re.search(r"<button[^>]*data-send-button[^>]*>", composer, re.S).group(0)  # type: ignore[union-attr]


def test_without_a_model_send_is_disabled_and_says_why(alice_client: Client) -> None:
    composer = _composer(alice_client)

    button = _send_button(composer)
    assert " disabled" in button
    assert 'aria-describedby="no-model-note"' in button
    assert 'id="no-model-note"' in composer
    assert "No model is available yet, so nothing can be sent." in composer


def test_an_administrator_without_a_model_is_sent_to_the_providers_and_the_readme(
    admin_client: Client,
) -> None:
    composer = _composer(admin_client)

    assert 'href="/admin/models_registry/provider/"' in composer
    assert "OPENAI_API_KEY" in composer and "OLLAMA_BASE_URL" in composer
    assert "First model" in composer
    assert "Keys &amp; endpoints" not in composer


def test_a_user_without_a_model_is_sent_to_their_own_keys_or_their_administrator(
    alice_client: Client, admin_user: User
) -> None:
    composer = _composer(alice_client)

    assert 'href="/settings/keys/"' in composer
    assert "or ask your administrator to add a model" in composer
    assert "ADMIN_EMAIL" not in composer
    assert "/admin/" not in composer


def test_with_no_administrator_at_all_the_note_says_how_the_operator_makes_one(
    alice_client: Client,
) -> None:
    composer = _composer(alice_client)

    assert "ask your administrator" not in composer
    assert "ADMIN_EMAIL" in composer
    assert 'href="/settings/keys/"' in composer


def test_a_guest_without_a_model_may_use_their_own_key_and_is_offered_to_sign_up(
    client: Client, admin_user: User
) -> None:
    composer = _composer(client)

    assert 'href="/settings/keys/"' in composer
    assert 'href="/accounts/signup/"' in composer
    assert "wait until the operator of this server adds one" in composer


def test_a_send_without_a_model_is_refused_with_a_clear_error(alice_client: Client) -> None:
    response = alice_client.post("/c/send", {"text": "hello"}, headers={"HX-Request": "true"})

    assert response.status_code == 400
    assert "Choose a model." in response.content.decode()
    assert Chat.objects.count() == 0 and Message.objects.count() == 0


def test_with_a_model_send_is_enabled_and_no_note_is_shown(
    alice_client: Client, fake_model: str
) -> None:
    composer = _composer(alice_client)

    assert " disabled" not in _send_button(composer)
    assert "no-model-note" not in composer


def test_the_picker_shows_capabilities_as_labelled_svg_icons_not_emoji(
    alice_client: Client, fake_model: str
) -> None:
    Model.objects.filter(id=fake_model).update(
        supports_reasoning=True, supports_tools=True, input_modalities=["text", "image"]
    )

    composer = _composer(alice_client)

    assert not EMOJI.search(composer), EMOJI.findall(composer)
    assert 'data-capabilities="reasoning tools images"' in composer
    for capability, label in [
        ("reasoning", "Reasoning"),
        ("tools", "Tools"),
        ("images", "Reads images"),
    ]:
        icon = re.search(
            rf'<svg [^>]*data-capability="{capability}"[^>]*>\s*<title>([^<]*)</title>', composer
        )
        assert icon is not None, capability
        assert f'aria-label="{label}"' in icon.group(0) and icon.group(1) == label
