"""Every request that spends from the bucket updates the meters on the page in its response.

Send, retry, regenerate and an answered edit each answer with the account menu's meter and
the composer's, swapped in out of band with what their own admission left; a refused request
(429) shows the empty bucket and when the next message comes.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from chats.models import Chat, Message
from ratelimit.models import Bucket, UserRateLimit
from tests.chats.helpers import send, wait_for_answer
from tests.chats.test_tree_views import _chat_with_answer
from tests.fake_provider import Script

pytestmark = pytest.mark.django_db(transaction=True)
HX = {"HX-Request": "true"}


def _swapped_in(response: Any, element_id: str) -> str | None:
    """The text of the element `element_id` that the response swaps in out of band, if any."""
    html = response.content.decode()
    element = re.search(
        rf'<div [^>]*id="{element_id}"[^>]*hx-swap-oob="true"[^>]*>(.*?)</div>', html, re.S
    )
    if element is None:
        return None
    return " ".join(re.sub(r"<[^>]+>", " ", element.group(1)).split())


def meters(response: Any) -> tuple[str | None, str | None]:
    """What the response puts in the composer's meter and in the account menu's."""
    return _swapped_in(response, "composer-meter"), _swapped_in(
        response, "ratelimit-meter-platform"
    )


def _latest_answer_done(chat: Chat) -> None:
    wait_for_answer(chat.messages.filter(role="assistant").latest("created_at").id)


@pytest.mark.parametrize("request_kind", ["regenerate", "edit"])
def test_regenerating_or_editing_a_question_updates_both_meters(
    alice_client: Client, fake_model: str, fake_llm: Any, request_kind: str
) -> None:
    chat, question, answer = _chat_with_answer(alice_client, fake_model, fake_llm)
    fake_llm.enqueue(Script(text="Second answer."))
    url, data = {
        "regenerate": (f"/c/{chat.id}/m/{answer.id}/regenerate", {}),
        "edit": (f"/c/{chat.id}/m/{question.id}/edit", {"text": "Other?", "mode": "version"}),
    }[request_kind]

    response = alice_client.post(url, data, headers=HX)

    assert response.status_code == 200
    composer, menu = meters(response)
    assert composer == "98 / 100 messages left"  # one send, then this request
    assert menu is not None and menu.startswith("98 / 100 messages left")
    _latest_answer_done(chat)


def test_editing_a_question_into_a_fork_leads_to_a_page_whose_meters_show_it(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, question, _answer = _chat_with_answer(alice_client, fake_model, fake_llm)
    fake_llm.enqueue(Script(text="Forked answer."))

    response = alice_client.post(
        f"/c/{chat.id}/m/{question.id}/edit",
        {"text": "Another question?", "mode": "fork"},
        headers=HX,
    )

    # htmx loads the fork's page in full (nothing of this response is swapped in).
    assert response.status_code == 204
    fork_page = alice_client.get(response["HX-Redirect"]).content.decode()
    assert "98 / 100 messages left" in fork_page
    _latest_answer_done(Chat.objects.exclude(id=chat.id).get())


def test_retrying_a_failed_answer_updates_the_meters(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    # A failed first answer gets no title: the second script is the retry's.
    fake_llm.enqueue(Script(text=["Half ", "an ", "answer"], fail_after=1), Script(text="Again."))
    send(alice_client, "Question?", fake_model)
    chat = Chat.objects.get()
    failed = wait_for_answer(chat.messages.get(role="assistant").id)
    assert failed.status == Message.Status.ERROR

    response = alice_client.post(f"/c/{chat.id}/m/{failed.id}/retry", headers=HX)

    assert response.status_code == 200
    assert meters(response)[0] == "98 / 100 messages left"
    _latest_answer_done(chat)


def test_an_edit_that_is_not_answered_spends_nothing_and_leaves_the_meters(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, _question, answer = _chat_with_answer(alice_client, fake_model, fake_llm)

    response = alice_client.post(
        f"/c/{chat.id}/m/{answer.id}/edit", {"text": "Better.", "mode": "in_place"}, headers=HX
    )

    assert response.status_code == 200
    assert meters(response) == (None, None)
    assert UserRateLimit.objects.get(bucket=Bucket.PLATFORM).tokens == 99


def _bucket_emptied(user: User) -> None:
    """Alice has spent her whole bucket; the next refill comes in 30 min (an hour's interval)."""
    UserRateLimit.objects.filter(user=user, bucket=Bucket.PLATFORM).update(
        tokens=0, refilled_at=timezone.now() - timedelta(minutes=30)
    )


@pytest.mark.parametrize("request_kind", ["send", "regenerate", "edit", "retry"])
def test_a_refused_request_shows_the_empty_meter_and_when_the_next_message_comes(
    alice: User, alice_client: Client, fake_model: str, fake_llm: Any, request_kind: str
) -> None:
    chat, question, answer = _chat_with_answer(alice_client, fake_model, fake_llm)
    _bucket_emptied(alice)
    Message.objects.filter(id=answer.id).update(status=Message.Status.STOPPED)  # retryable
    url, data = {
        "send": (f"/c/{chat.id}/send", {"text": "More?", "model": fake_model}),
        "regenerate": (f"/c/{chat.id}/m/{answer.id}/regenerate", {}),
        "edit": (f"/c/{chat.id}/m/{question.id}/edit", {"text": "Again?", "mode": "version"}),
        "retry": (f"/c/{chat.id}/m/{answer.id}/retry", {}),
    }[request_kind]

    response = alice_client.post(url, data, headers=HX)

    assert response.status_code == 429
    assert response["HX-Retarget"] == "#composer-error"
    # The whole test runs well within the minute that would change "30 min".
    composer, menu = meters(response)
    assert composer == menu == "Limit reached, next message in 30 min"
    html = response.content.decode()
    assert html.count('value="0"') == 2  # both bars are empty
    assert chat.messages.count() == 2  # nothing was written
