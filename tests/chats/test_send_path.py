"""The hot path of an answer: a bounded send, checkpoints in one statement, a one-statement
finish, and streams of local answers that need no database."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import AsyncClient, Client
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings as SettingsWrapper

from accounts.models import User
from chats import checkpoints, live
from chats.models import Chat, Message, TokenUsage
from chats.selectors import chat_tree_load
from tests.chats.helpers import send, sse_events, wait_for_answer
from tests.fake_provider import Script

pytestmark = pytest.mark.django_db(transaction=True)

TOKENS = [f"w{i} " for i in range(30)]


def _grow_chat(chat: Chat, count: int) -> Message:
    """Append `count` finished messages to the chat's single branch; return the last one."""
    last = chat.messages.order_by("-seq").first()
    assert last is not None
    rows = []
    parent_id = last.id
    for offset in range(1, count + 1):
        message = Message(
            id=uuid.uuid4(), chat=chat, branch_id=last.branch_id, seq=last.seq + offset,
            parent_id=parent_id, role="user" if offset % 2 else "assistant",
            parts=[{"type": "text", "text": f"m{offset}"}], selected_child_index=0,
        )  # fmt: skip
        rows.append(message)
        parent_id = message.id
    rows[-1].selected_child_index = None
    Message.objects.filter(id=last.id).update(selected_child_index=0)
    Message.objects.bulk_create(rows)
    return rows[-1]


def _wait_until_generated(message_id: uuid.UUID, timeout: float = 10.0) -> None:
    """Until this process no longer generates the answer (its end is saved, its task done)."""
    deadline = time.monotonic() + timeout
    while live.live_answer_get(message_id) is not None:
        assert time.monotonic() < deadline, f"answer {message_id} still generating"
        time.sleep(0.02)


def test_a_send_makes_the_same_few_statements_in_a_short_and_a_long_chat(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=["one"]), Script(text=["title"]))
    send(alice_client, "first", fake_model)
    chat = Chat.objects.get()
    first_answer = wait_for_answer(chat.messages.get(role="assistant").id)

    counts = []
    tip = first_answer
    for grow in (0, 600):
        if grow:
            tip = _grow_chat(chat, grow)
        fake_llm.enqueue(Script(text=["more"]))
        chat.refresh_from_db()
        with CaptureQueriesContext(connection) as captured:
            response = send(
                alice_client, "next", fake_model, chat_id=chat.id, parent=str(tip.id),
                version=str(chat.tree_version),
            )  # fmt: skip
        assert response.status_code == 302
        answer = Message.objects.filter(chat=chat, status="streaming").get()
        tip = wait_for_answer(answer.id)
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]
    # user, chat, rate limit, BEGIN, the lock, the parent's state, one insert, one update with
    # the event, COMMIT, the model's context, the pinned memory; a session read for a logged-in
    # user.
    assert counts[0] <= 12


def test_a_new_chats_send_writes_it_in_one_statement_and_makes_fewer_than_a_follow_up(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    scripts = [Script(text=["one"]), Script(text=["title"])]
    fake_llm.enqueue(*scripts, *scripts, Script(text=["two"]))
    send(alice_client, "warm-up", fake_model)  # the model registry's cache is filled
    warm_up = wait_for_answer(Message.objects.get(role="assistant").id)
    with CaptureQueriesContext(connection) as new_chat:
        response = send(alice_client, "first", fake_model)
    assert response.status_code == 302
    chat = Chat.objects.exclude(id=warm_up.chat_id).get()
    first_answer = wait_for_answer(chat.messages.get(role="assistant").id)
    chat.refresh_from_db()
    with CaptureQueriesContext(connection) as follow_up:
        send(
            alice_client, "next", fake_model, chat_id=chat.id, parent=str(first_answer.id),
            version=str(chat.tree_version),
        )  # fmt: skip
    wait_for_answer(Message.objects.get(chat=chat, role="assistant", seq=3).id)

    statements = [" ".join(query["sql"].split()) for query in new_chat.captured_queries]
    # session, user, rate limit, BEGIN, the chat with its branch, both messages and the event,
    # COMMIT, the model's context. A follow-up reads the chat, locks it in its own statement,
    # reads the parent, writes in two statements and reads the chat's pinned memory (a new
    # chat without staged pins has none, known without a statement).
    assert len(statements) == 7
    assert len(statements) == len(follow_up.captured_queries) - 5
    write = statements[statements.index("BEGIN") + 1 : statements.index("COMMIT")]
    assert len(write) == 1
    for table in ("chats_chat", "chats_branch", "chats_message"):
        assert f'INSERT INTO "{table}"' in write[0]
    assert "pg_notify" in write[0]

    # What the one statement wrote is the chat a send always made: one root branch whose
    # first message is the question, shown, with its answer after it.
    chat.refresh_from_db()
    assert chat.root_message_index == 0
    branch = chat.branches.get()
    assert (str(branch.path), branch.parent_branch_id, branch.fork_message_id) == (
        "0000",
        None,
        None,
    )
    question, answer = chat.messages.filter(branch=branch).order_by("seq")[:2]
    assert (question.seq, question.parent_id, question.selected_child_index) == (0, None, 0)
    assert (answer.seq, answer.parent_id, answer.role) == (1, question.id, "assistant")
    assert chat_tree_load(chat=chat).active_path()[:2] == [question.id, answer.id]


def test_the_long_chats_context_is_its_newest_messages_in_order(
    alice_client: Client, fake_model: str, fake_llm: Any, settings: SettingsWrapper
) -> None:
    settings.CONTEXT_MAX_MESSAGES = 5
    fake_llm.enqueue(Script(text=["one"]), Script(text=["title"]))
    send(alice_client, "first", fake_model)
    chat = Chat.objects.get()
    tip = _grow_chat(chat, 40)
    wait_for_answer(chat.messages.get(seq=1).id)
    fake_llm.enqueue(Script(text=["ok"]))
    send(alice_client, "last question", fake_model, chat_id=chat.id, parent=str(tip.id))
    wait_for_answer(Message.objects.get(chat=chat, role="assistant", seq=tip.seq + 2).id)
    sent = fake_llm.chat_requests[-1].json["messages"]
    assert sent[0]["role"] == "system"  # Alice's name: preferences come first, then the route
    assert [m["content"] for m in sent[1:]] == ["m37", "m38", "m39", "m40", "last question"]


def test_checkpoints_save_every_streaming_answer_in_one_statement_consistently(
    alice: User, alice_client: Client, fake_model: str, fake_llm: Any, settings: SettingsWrapper,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    settings.GENERATION_CHECKPOINT_SECONDS = 0.05
    saved_batches: list[list[uuid.UUID]] = []
    original = checkpoints.answers_checkpoint

    def recording(*, rows: list[tuple[uuid.UUID, str | None, int | None]]) -> None:
        saved_batches.append([row[0] for row in rows])
        original(rows=rows)

    monkeypatch.setattr(checkpoints, "answers_checkpoint", recording)
    scripts = [Script(text=TOKENS, delay=0.02, stall_after=20) for _ in range(2)]
    fake_llm.enqueue(scripts[0], scripts[1], Script(text=["t"]), Script(text=["t"]))
    send(alice_client, "one", fake_model)
    send(alice_client, "two", fake_model)
    assert all(script.wait_until_stalled() for script in scripts)
    time.sleep(0.3)  # a few intervals after the last delta

    answers = list(Message.objects.filter(role="assistant", status="streaming"))
    assert len(answers) == 2
    for answer in answers:
        # The saved text is exactly the first `stream_seq` deltas: a page rendered from it
        # follows the stream from there with no gap and no duplicate.
        assert answer.stream_seq == 20
        assert answer.text == "".join(TOKENS[:20])
        assert answer.heartbeat_at is not None
    both = {answer.id for answer in answers}
    assert any(set(batch) == both for batch in saved_batches)
    for script in scripts:
        script.release()
    for answer in answers:
        assert wait_for_answer(answer.id).text == "".join(TOKENS)


def test_a_silent_answer_still_gets_its_heartbeat(
    alice_client: Client, fake_model: str, fake_llm: Any, settings: SettingsWrapper,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    settings.GENERATION_CHECKPOINT_SECONDS = 0.05
    monkeypatch.setattr(checkpoints, "HEARTBEAT_SECONDS", 0.2)
    script = Script(text=["a ", "b"], stall_after=1)
    fake_llm.enqueue(script, Script(text=["t"]))
    send(alice_client, "one", fake_model)
    assert script.wait_until_stalled()
    time.sleep(0.2)
    answer = Message.objects.get(role="assistant")
    first_beat = answer.heartbeat_at
    time.sleep(0.5)
    answer.refresh_from_db()
    assert answer.heartbeat_at is not None and first_beat is not None
    assert answer.heartbeat_at > first_beat
    assert answer.stream_seq == 1  # nothing new: only the heartbeat moved
    script.release()
    wait_for_answer(answer.id)


def test_the_checkpoint_timer_ends_with_the_last_answer(
    alice_client: Client, fake_model: str, fake_llm: Any, settings: SettingsWrapper
) -> None:
    settings.GENERATION_CHECKPOINT_SECONDS = 30.0
    fake_llm.enqueue(Script(text=["one"]), Script(text=["t"]))
    send(alice_client, "one", fake_model)
    chat = Chat.objects.get()
    first = wait_for_answer(chat.messages.get(role="assistant").id)
    _wait_until_generated(first.id)
    assert checkpoints._checkpoints.task is None  # no timer idles out its 30 s

    # The next answer gets a timer of its own, with the interval in force now.
    settings.GENERATION_CHECKPOINT_SECONDS = 0.05
    script = Script(text=["a ", "b"], stall_after=1)
    fake_llm.enqueue(script)
    send(alice_client, "two", fake_model, chat_id=chat.id, parent=str(first.id))
    assert script.wait_until_stalled()
    time.sleep(0.3)
    answer = Message.objects.get(chat=chat, status="streaming")
    assert (answer.stream_seq, answer.text) == (1, "a ")
    script.release()
    wait_for_answer(answer.id)


def test_the_end_of_an_answer_that_is_no_longer_streaming_writes_nothing(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    script = Script(text=["a ", "b"], stall_after=1)
    fake_llm.enqueue(script, Script(text=["t"]))
    send(alice_client, "one", fake_model)
    assert script.wait_until_stalled()
    answer = Message.objects.get(role="assistant")
    # Another process (the reaper) decided meanwhile.
    Message.objects.filter(id=answer.id).update(status="interrupted", error="gone")
    script.release()
    _wait_until_generated(answer.id)
    answer.refresh_from_db()
    assert (answer.status, answer.error) == ("interrupted", "gone")
    assert not TokenUsage.objects.filter(message_id=answer.id).exists()


@pytest.mark.asyncio
async def test_a_live_answer_streams_to_its_owner_only(
    alice: User, bob: User, alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    script = Script(text=["a ", "b ", "c"], stall_after=1)
    fake_llm.enqueue(script, Script(text=["t"]))
    await sync_to_async(send)(alice_client, "one", fake_model)
    answer = await Message.objects.aget(role="assistant")
    assert await sync_to_async(script.wait_until_stalled)()
    assert live.live_answer_get(answer.id) is not None

    bobs = AsyncClient()
    await bobs.aforce_login(bob)
    response = await bobs.get(f"/c/{answer.chat_id}/m/{answer.id}/stream?after=0")
    assert response.status_code == 404
    guest = await AsyncClient().get(f"/c/{answer.chat_id}/m/{answer.id}/stream?after=0")
    assert guest.status_code == 404
    alices = AsyncClient()
    await alices.aforce_login(alice)
    wrong_chat = await alices.get(f"/c/{uuid.uuid4()}/m/{answer.id}/stream?after=0")
    assert wrong_chat.status_code == 404

    response = await alices.get(f"/c/{answer.chat_id}/m/{answer.id}/stream?after=0")
    assert response.status_code == 200
    script.release()
    body = b"".join([chunk async for chunk in response.streaming_content])  # type: ignore[attr-defined]
    texts = [data for _, kind, data in sse_events(body) if kind == "text"]
    assert "".join(texts) == "a b c"


def test_a_guests_row_comes_with_their_chat_in_one_query(
    client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=["one"]), Script(text=["title"]), Script(text=["two"]))
    send(client, "first", fake_model)
    chat = Chat.objects.get()
    answer = wait_for_answer(chat.messages.get(role="assistant").id)
    with CaptureQueriesContext(connection) as captured:
        response = send(client, "next", fake_model, chat_id=chat.id, parent=str(answer.id))
    assert response.status_code == 302
    reads_of_users = [q["sql"] for q in captured.captured_queries if "accounts_user" in q["sql"]]
    assert len(reads_of_users) == 1
    assert reads_of_users[0].startswith('SELECT "chats_chat"')
    assert 'INNER JOIN "accounts_user"' in reads_of_users[0]
    wait_for_answer(Message.objects.get(chat=chat, status="streaming").id)


def test_the_answer_length_cap_is_the_tiers_and_a_models_lower_maximum_wins(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    from models_registry.models import Model, Tier
    from models_registry.services import model_set_enabled

    tier = Tier.objects.get(slug=Tier.REGULAR)
    tier.max_output_tokens = 300
    tier.save()  # as the admin saves it: this process's registry cache forgets the old row
    fake_llm.enqueue(Script(text=["one"]), Script(text=["title"]))
    send(alice_client, "first", fake_model)
    chat = Chat.objects.get()
    answer = wait_for_answer(chat.messages.get(role="assistant").id)
    assert fake_llm.chat_requests[0].json["max_tokens"] == 300

    Model.objects.filter(id=fake_model).update(max_output_tokens=120)
    model_set_enabled(model_ids=[fake_model], enabled=True)  # a registry write: cache cleared
    fake_llm.enqueue(Script(text=["two"]))
    send(alice_client, "again", fake_model, chat_id=chat.id, parent=str(answer.id))
    # The answer may already be complete here: find it by its parent, not by its status.
    second = Message.objects.get(chat=chat, role="assistant", parent__parent=answer)
    wait_for_answer(second.id)
    assert fake_llm.chat_requests[-1].json["max_tokens"] == 120


def test_an_answer_cut_at_the_length_limit_says_so(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(
        Script(text=["a ", "long ", "answ"], finish_reason="length", completion_tokens=3),
        Script(text=["title"]),
    )
    send(alice_client, "tell me everything", fake_model)
    chat = Chat.objects.get()
    answer = wait_for_answer(chat.messages.get(role="assistant").id)
    assert answer.status == "complete"
    assert answer.usage is not None and answer.usage["finish_reason"] == "length"
    page = alice_client.get(f"/c/{chat.id}/").content.decode()
    assert "Cut off at the answer length limit (3 tokens)." in page
