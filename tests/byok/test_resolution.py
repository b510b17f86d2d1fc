"""BYOK models in chats: resolved with the owner's key or endpoint, outside tier gating."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from byok.models import UserByokModel, UserCustomProvider
from byok.services import byok_endpoint_create, byok_model_add
from chats.models import Chat, Message
from models_registry.models import Tier
from models_registry.resolver import UnknownModelError, resolve
from ratelimit.models import Bucket, UserRateLimit
from tests.byok.helpers import ALICE_ENDPOINT_KEY, ALICE_OPENAI_KEY, GUEST_KEY, assert_no_secret
from tests.chats.helpers import send, wait_for_answer
from tests.fake_provider import Script
from tests.helpers import client_for_guest

# Answers are generated on another thread, which must see the committed rows.
sends_a_message = pytest.mark.django_db(transaction=True)


def _answer() -> Message:
    return Message.objects.get(role=Message.Role.ASSISTANT)


@sends_a_message
def test_alice_chats_with_a_model_of_her_own_endpoint_using_her_endpoint_key(
    alice_client: Client, alice_endpoint_model: UserByokModel, fake_llm: Any
) -> None:
    fake_llm.require_api_key(ALICE_ENDPOINT_KEY)
    fake_llm.enqueue(Script(text=["From ", "your ", "lab."]))

    response = send(alice_client, "Hello lab", "byok:custom:homelab:fake-model-mini")

    assert response.status_code == 302
    answer = wait_for_answer(_answer().id)
    assert (answer.status, answer.text) == ("complete", "From your lab.")
    assert answer.model_id == "byok:custom:homelab:fake-model-mini"
    # The answer, and the title when it has been asked for: both with Alice's endpoint key.
    requests = fake_llm.chat_requests
    assert {request.authorization for request in requests} == {f"Bearer {ALICE_ENDPOINT_KEY}"}
    assert {request.json["model"] for request in requests} == {"fake-model-mini"}
    assert_no_secret(alice_client.get(response["Location"]))


@sends_a_message
def test_alice_chats_with_a_platform_model_through_her_own_openai_key(
    alice_client: Client, platform_openai: Any, alice_openai_model: UserByokModel, fake_llm: Any
) -> None:
    fake_llm.require_api_key(ALICE_OPENAI_KEY)
    fake_llm.enqueue(Script(text="Paid by Alice."))

    send(alice_client, "Hello", "byok:openai:fake-model")

    answer = wait_for_answer(_answer().id)
    assert (answer.status, answer.text) == ("complete", "Paid by Alice.")
    requests = fake_llm.chat_requests
    assert {request.authorization for request in requests} == {f"Bearer {ALICE_OPENAI_KEY}"}
    assert {request.json["model"] for request in requests} == {"fake-model"}


@sends_a_message
def test_a_byok_send_spends_the_byok_bucket_not_the_platform_one(
    alice_client: Client, alice: User, alice_endpoint_model: UserByokModel, fake_llm: Any
) -> None:
    send(alice_client, "Hello", alice_endpoint_model.model_id)
    wait_for_answer(_answer().id)

    buckets = set(UserRateLimit.objects.filter(user=alice).values_list("bucket", flat=True))
    assert buckets == {Bucket.BYOK}


@sends_a_message
def test_a_guest_whose_tier_allows_no_platform_model_can_still_use_their_own(
    guest: User, fake_llm: Any, private_networks_allowed: None, fake_model: str
) -> None:
    tier = Tier.objects.get(slug=Tier.GUEST)
    tier.includes_all_models = False
    tier.save()
    tier.allowed_models.clear()
    endpoint = byok_endpoint_create(
        user=guest, name="Mine", base_url=fake_llm.base_url, api_key=GUEST_KEY
    )
    model = byok_model_add(user=guest, endpoint=endpoint, provider_model_id="fake-model")
    client = client_for_guest(guest)

    refused = send(client, "Hello", fake_model)
    assert refused.status_code == 400
    assert "not included in your plan" in refused.content.decode()

    send(client, "Hello", model.model_id)
    answer = wait_for_answer(_answer().id)
    assert answer.status == "complete"
    assert fake_llm.chat_requests[0].authorization == f"Bearer {GUEST_KEY}"


def test_bobs_byok_model_is_an_unknown_model_for_alice(
    alice_client: Client, bob: User, fake_llm: Any, private_networks_allowed: None
) -> None:
    endpoint = byok_endpoint_create(user=bob, name="Bob lab", base_url=fake_llm.base_url)
    bobs = byok_model_add(user=bob, endpoint=endpoint, provider_model_id="fake-model")

    response = send(alice_client, "Hello", bobs.model_id)

    assert response.status_code == 400
    assert "This model does not exist." in response.content.decode()
    assert not Chat.objects.exists()
    assert fake_llm.requests == []


@pytest.mark.parametrize(
    "model_id",
    [
        "byok:custom:homelab:not-added",
        "byok:custom:elsewhere:fake-model-mini",
        "byok:openai:fake-model-mini",
        "byok:anthropic:fake-model-mini",
        "byok:custom:homelab:",
        "byok:custom:homelab",
        "byok:",
    ],
)
def test_ids_that_are_not_alices_models_are_unknown(
    alice: User, alice_endpoint_model: UserByokModel, model_id: str
) -> None:
    with pytest.raises(UnknownModelError, match=r"This model does not exist\."):
        resolve(alice, model_id)


def test_a_guest_without_a_row_has_no_byok_models(
    alice_endpoint_model: UserByokModel,
) -> None:
    with pytest.raises(UnknownModelError):
        resolve(None, alice_endpoint_model.model_id)


def test_the_call_target_carries_the_key_but_never_shows_it(
    alice: User, alice_endpoint_model: UserByokModel, alice_endpoint: UserCustomProvider
) -> None:
    target = resolve(alice, alice_endpoint_model.model_id)

    assert (target.api_base, target.api_key) == (alice_endpoint.base_url, ALICE_ENDPOINT_KEY)
    assert (target.provider_kind, target.engine) == ("custom", "openai_compatible")
    assert target.pricing.input_per_million is None  # their provider bills them, not us
    assert ALICE_ENDPOINT_KEY not in repr(target)


def test_alices_byok_models_appear_in_her_picker_marked_as_hers(
    alice_client: Client,
    alice_endpoint_model: UserByokModel,
    alice_openai_model: UserByokModel,
    fake_model: str,
) -> None:
    response = alice_client.get("/")

    body = response.content.decode()
    assert 'value="byok:custom:homelab:fake-model-mini"' in body
    assert 'value="byok:openai:fake-model"' in body
    assert 'optgroup label="Your endpoint: Home lab"' in body
    assert 'optgroup label="Your OpenAI key"' in body
    assert "Lab mini · your key" in body
    assert 'value="fake:fake-model"' in body
    assert_no_secret(response)


def test_bob_does_not_see_alices_models_in_his_picker(
    bob_client: Client, alice_endpoint_model: UserByokModel
) -> None:
    assert "byok:" not in bob_client.get("/").content.decode()
