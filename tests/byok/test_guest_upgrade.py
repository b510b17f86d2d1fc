"""Guest → account: a guest's keys, endpoints and models move; the account wins conflicts."""

from __future__ import annotations

from typing import Any

from accounts.models import User
from accounts.services import guest_upgrade
from byok.models import UserByokModel, UserCustomProvider, UserProviderKey
from byok.services import byok_endpoint_create, byok_key_set, byok_model_add
from tests.byok.helpers import ALICE_OPENAI_KEY, GUEST_KEY
from tests.helpers import PASSWORD, client_for_guest
from vero.lib.secrets import secret_decrypt


def _models(user: User) -> set[str]:
    return {model.model_id for model in UserByokModel.objects.filter(user=user)}


def test_signing_up_moves_the_guests_keys_endpoints_and_models(
    guest: User, fake_llm: Any, private_networks_allowed: None
) -> None:
    key = byok_key_set(user=guest, provider="openrouter", api_key=GUEST_KEY)
    byok_model_add(user=guest, key=key, provider_model_id="anthropic/claude-sonnet-5.5")
    endpoint = byok_endpoint_create(user=guest, name="Laptop", base_url=fake_llm.base_url)
    byok_model_add(user=guest, endpoint=endpoint, provider_model_id="fake-model")

    client_for_guest(guest).post(
        "/accounts/signup/",
        {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    account = User.objects.get(email="new@example.com")
    assert not User.objects.filter(id=guest.id).exists()
    assert _models(account) == {
        "byok:openrouter:anthropic/claude-sonnet-5.5",
        "byok:custom:laptop:fake-model",
    }
    moved = UserProviderKey.objects.get(user=account)
    assert secret_decrypt(token=moved.api_key_encrypted) == GUEST_KEY
    assert UserCustomProvider.objects.get(user=account).slug == "laptop"


def test_logging_in_keeps_the_accounts_key_and_brings_the_guests_models_under_it(
    guest: User, alice: User, alice_openai_model: UserByokModel
) -> None:
    guest_key = byok_key_set(user=guest, provider="openai", api_key=GUEST_KEY)
    byok_model_add(user=guest, key=guest_key, provider_model_id="fake-model")  # Alice has it
    byok_model_add(user=guest, key=guest_key, provider_model_id="gpt-9-nano")

    client = client_for_guest(guest)
    response = client.post("/accounts/login/", {"login": "alice@example.com", "password": PASSWORD})

    assert response.status_code == 302
    (key,) = UserProviderKey.objects.all()
    assert key.user_id == alice.id
    assert secret_decrypt(token=key.api_key_encrypted) == ALICE_OPENAI_KEY
    assert _models(alice) == {"byok:openai:fake-model", "byok:openai:gpt-9-nano"}
    assert UserByokModel.objects.get(provider_model_id="fake-model").display_name == "My GPT"
    assert UserByokModel.objects.count() == 2


def test_an_endpoint_named_like_one_of_the_accounts_goes_unless_it_is_the_same_server(
    guest: User, alice: User, alice_endpoint_model: UserByokModel, fake_llm: Any
) -> None:
    same = byok_endpoint_create(
        user=guest, name="Home lab", slug="homelab", base_url=fake_llm.base_url
    )
    byok_model_add(user=guest, endpoint=same, provider_model_id="fake-model")

    assert guest_upgrade(guest_id=guest.id, account=alice)

    assert _models(alice) == {
        "byok:custom:homelab:fake-model-mini",
        "byok:custom:homelab:fake-model",
    }
    assert UserCustomProvider.objects.get().user_id == alice.id


def test_an_endpoint_with_the_same_short_name_on_another_server_is_dropped(
    guest: User, alice: User, alice_endpoint_model: UserByokModel, fake_llm: Any
) -> None:
    other = byok_endpoint_create(
        user=guest, name="Other", slug="homelab", base_url=fake_llm.origin + "/other/v1"
    )
    byok_model_add(user=guest, endpoint=other, provider_model_id="fake-model")

    assert guest_upgrade(guest_id=guest.id, account=alice)

    assert _models(alice) == {"byok:custom:homelab:fake-model-mini"}
    assert UserCustomProvider.objects.get().base_url == alice_endpoint_model.endpoint.base_url  # type: ignore[union-attr]
    assert UserByokModel.objects.count() == 1


def test_upgrading_to_alice_leaves_bobs_key_alone(guest: User, alice: User, bob: User) -> None:
    byok_key_set(user=guest, provider="xai", api_key=GUEST_KEY)
    byok_key_set(user=bob, provider="xai", api_key="sk-bob-xai-99999999")

    guest_upgrade(guest_id=guest.id, account=alice)

    assert UserProviderKey.objects.get(user=bob).api_key_last_four == "9999"
    assert UserProviderKey.objects.get(user=alice).api_key_last_four == GUEST_KEY[-4:]
