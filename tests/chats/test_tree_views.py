"""The tree in the browser's terms: switch versions, edit, regenerate, delete, fork, compare."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from chats.models import Chat, Message
from tests.chats.helpers import send, wait_for_answer, wait_for_title
from tests.fake_provider import Script

pytestmark = pytest.mark.django_db(transaction=True)
HX = {"HX-Request": "true"}


def _chat_with_answer(
    client: Client, model: str, fake_llm: Any, text: str = "First answer."
) -> tuple[Chat, Message, Message]:
    fake_llm.enqueue(Script(text=text), Script(text="Title"))
    send(client, "Question?", model)
    chat = Chat.objects.get()
    question = chat.messages.get(role="user")
    answer = wait_for_answer(chat.messages.get(role="assistant").id)
    wait_for_title(chat, "Title")  # the title call must not take a script meant for later
    return chat, question, answer


def _answers(chat: Chat) -> list[Message]:
    return list(chat.messages.filter(role="assistant").order_by("created_at"))


def test_regenerating_adds_a_second_version_shown_as_2_of_2(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, _question, first = _chat_with_answer(alice_client, fake_model, fake_llm)
    fake_llm.enqueue(Script(text="Second answer."))

    response = alice_client.post(f"/c/{chat.id}/m/{first.id}/regenerate", headers=HX)

    assert response.status_code == 200
    second = _answers(chat)[1]
    assert wait_for_answer(second.id).text == "Second answer."
    page = alice_client.get(f"/c/{chat.id}/").content.decode()
    assert "Second answer." in page and "First answer." not in page
    assert "2/2" in page


def test_switching_back_to_the_first_version_is_remembered(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, question, first = _chat_with_answer(alice_client, fake_model, fake_llm)
    fake_llm.enqueue(Script(text="Second answer."))
    alice_client.post(f"/c/{chat.id}/m/{first.id}/regenerate")
    wait_for_answer(_answers(chat)[1].id)

    response = alice_client.post(f"/c/{chat.id}/m/{first.id}/select", headers=HX)

    assert response.status_code == 200
    assert 'id="chat-body"' in response.content.decode()
    assert "First answer." in response.content.decode()
    question.refresh_from_db()
    assert question.selected_child_index == 0
    # Another device (a fresh client for the same account) sees the same choice.
    other = Client()
    other.force_login(chat.user)
    assert "1/2" in other.get(f"/c/{chat.id}/").content.decode()


def test_switching_is_refused_while_the_chat_is_generating(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, _question, first = _chat_with_answer(alice_client, fake_model, fake_llm)
    stalled = Script(text=["slow ", "answer"], stall_after=1)
    fake_llm.enqueue(stalled)
    alice_client.post(f"/c/{chat.id}/m/{first.id}/regenerate")
    assert stalled.wait_until_stalled()
    question = Message.objects.get(role="user", chat=chat)
    before = question.selected_child_index

    response = alice_client.post(f"/c/{chat.id}/m/{first.id}/select", headers=HX)

    assert response.status_code == 409
    assert "Wait for the answer to finish" in response.content.decode()
    question.refresh_from_db()
    assert question.selected_child_index == before
    stalled.release()
    wait_for_answer(_answers(chat)[1].id)


def test_editing_a_question_answers_the_new_version_with_the_right_context(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, question, _first = _chat_with_answer(alice_client, fake_model, fake_llm)
    fake_llm.reset()
    fake_llm.enqueue(Script(text="Edited answer."))

    response = alice_client.post(
        f"/c/{chat.id}/m/{question.id}/edit", {"text": "Better question?", "mode": "version"}
    )

    assert response.status_code == 302
    version = chat.messages.filter(role="user").order_by("-created_at").first()
    assert version is not None and version.text == "Better question?"
    answer = chat.messages.get(role="assistant", parent=version)
    assert wait_for_answer(answer.id).text == "Edited answer."
    sent = fake_llm.chat_requests[0].json["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == ["Better question?"]


def test_editing_an_answer_makes_a_version_or_edits_in_place(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, _question, first = _chat_with_answer(alice_client, fake_model, fake_llm)

    alice_client.post(f"/c/{chat.id}/m/{first.id}/edit", {"text": "Fixed", "mode": "in_place"})
    first.refresh_from_db()
    assert first.text == "Fixed"
    assert len(_answers(chat)) == 1

    alice_client.post(f"/c/{chat.id}/m/{first.id}/edit", {"text": "Rewritten", "mode": "version"})
    versions = _answers(chat)
    assert [v.text for v in versions] == ["Fixed", "Rewritten"]
    assert versions[1].status == "complete"


def test_an_empty_edit_is_refused_and_changes_nothing(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, question, _first = _chat_with_answer(alice_client, fake_model, fake_llm)
    response = alice_client.post(
        f"/c/{chat.id}/m/{question.id}/edit", {"text": "", "mode": "version"}
    )
    assert response.status_code == 400
    assert chat.messages.count() == 2


@pytest.mark.parametrize(("scope", "left"), [("version", 1), ("turn", 1), ("single", 1)])
def test_deleting_an_answer(
    alice_client: Client, fake_model: str, fake_llm: Any, scope: str, left: int
) -> None:
    chat, _question, first = _chat_with_answer(alice_client, fake_model, fake_llm)
    response = alice_client.post(f"/c/{chat.id}/m/{first.id}/delete", {"scope": scope}, headers=HX)
    assert response.status_code == 200
    assert chat.messages.count() == left


def test_deleting_the_only_first_message_deletes_the_chat(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, question, _first = _chat_with_answer(alice_client, fake_model, fake_llm)
    response = alice_client.post(
        f"/c/{chat.id}/m/{question.id}/delete", {"scope": "version"}, headers=HX
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/"
    assert not Chat.objects.filter(id=chat.id).exists()


def test_an_unknown_delete_scope_is_refused(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, question, _first = _chat_with_answer(alice_client, fake_model, fake_llm)
    response = alice_client.post(f"/c/{chat.id}/m/{question.id}/delete", {"scope": "everything"})
    assert response.status_code == 400
    assert chat.messages.count() == 2


def test_forking_starts_an_independent_chat_that_shows_where_it_came_from(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, _question, first = _chat_with_answer(alice_client, fake_model, fake_llm)

    response = alice_client.post(f"/c/{chat.id}/m/{first.id}/fork", headers=HX)

    assert response.status_code == 204
    fork = Chat.objects.exclude(id=chat.id).get()
    assert response["HX-Redirect"] == f"/c/{fork.id}/"
    assert (fork.parent_chat_id, fork.forked_from_message_id, fork.fork_depth) == (
        chat.id,
        first.id,
        1,
    )
    assert [m.text for m in fork.messages.order_by("seq")] == ["Question?", "First answer."]
    fork_page = alice_client.get(f"/c/{fork.id}/").content.decode()
    assert "Forked from" in fork_page and f"/c/{chat.id}/" in fork_page
    assert f"/c/{fork.id}/" in alice_client.get(f"/c/{chat.id}/").content.decode()


def test_forking_with_an_edited_question_answers_it_in_the_new_chat(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, question, _first = _chat_with_answer(alice_client, fake_model, fake_llm)
    fake_llm.enqueue(Script(text="Forked answer."))
    alice_client.post(
        f"/c/{chat.id}/m/{question.id}/edit", {"text": "Other question", "mode": "fork"}
    )
    fork = Chat.objects.exclude(id=chat.id).get()
    answer = fork.messages.get(role="assistant")
    assert wait_for_answer(answer.id).text == "Forked answer."
    assert chat.messages.count() == 2


def test_the_tree_endpoints_answer_404_for_another_users_chat(
    alice_client: Client, bob_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, _question, first = _chat_with_answer(alice_client, fake_model, fake_llm)
    for action, data in [
        ("select", {}),
        ("edit", {"text": "x", "mode": "version"}),
        ("regenerate", {}),
        ("delete", {"scope": "turn"}),
        ("fork", {}),
    ]:
        response = bob_client.post(f"/c/{chat.id}/m/{first.id}/{action}", data)
        assert response.status_code == 404, action
    assert bob_client.get(f"/c/{chat.id}/compare?a={first.id}&b={first.id}").status_code == 404
    assert chat.messages.count() == 2
    assert Chat.objects.count() == 1


def test_an_edited_answer_is_rendered_as_markdown(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, _question, first = _chat_with_answer(alice_client, fake_model, fake_llm)
    alice_client.post(
        f"/c/{chat.id}/m/{first.id}/edit", {"text": "**in place**", "mode": "in_place"}
    )
    assert "<strong>in place</strong>" in alice_client.get(f"/c/{chat.id}/").content.decode()
    alice_client.post(f"/c/{chat.id}/m/{first.id}/edit", {"text": "*a version*", "mode": "version"})
    assert "<em>a version</em>" in alice_client.get(f"/c/{chat.id}/").content.decode()
