"""The answer's stream: replay what was missed, follow live, survive disconnects and failures."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from accounts.models import User
from chats.models import Chat, Message
from tests.chats.helpers import send, sse_events, wait_for_answer
from tests.fake_provider import Script

pytestmark = pytest.mark.django_db(transaction=True)

TOKENS = [f"word{i} " for i in range(20)]


async def _read_stream(client: AsyncClient, url: str, *, stop_after: int | None = None) -> bytes:
    response = await client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    body = b""
    events = 0
    async for chunk in response.streaming_content:  # type: ignore[attr-defined]
        body += chunk
        events += chunk.count(b"\nevent: ")
        if stop_after is not None and events >= stop_after:
            await response.streaming_content.aclose()  # type: ignore[attr-defined]
            break
    return body


def _start(client: Client, model: str, text: str = "tell me something") -> tuple[Chat, Message]:
    send(client, text, model)
    chat = Chat.objects.get()
    return chat, chat.messages.get(role="assistant")


async def _async_client_for(user: User) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(user)
    return client


@pytest.mark.asyncio
async def test_the_stream_replays_everything_then_follows_live_deltas_exactly_once(
    alice: User, alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=TOKENS, delay=0.02))
    chat, answer = await sync_to_async(_start)(alice_client, fake_model)
    url = f"/c/{chat.id}/m/{answer.id}/stream?after=0"

    events = sse_events(await _read_stream(await _async_client_for(alice), url))

    texts = [(seq, data) for seq, kind, data in events if kind == "text"]
    assert [data for _, data in texts] == TOKENS
    assert [seq for seq, _ in texts] == list(range(1, 21))
    _seq, kind, data = events[-1]
    assert kind == "done"
    assert data["status"] == "complete"
    assert "word19" in data["html"]


@pytest.mark.asyncio
async def test_a_follower_that_reconnects_gets_only_what_it_missed(
    alice: User, alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=TOKENS, delay=0.02))
    chat, answer = await sync_to_async(_start)(alice_client, fake_model)
    client = await _async_client_for(alice)
    url = f"/c/{chat.id}/m/{answer.id}/stream"

    first = sse_events(await _read_stream(client, url + "?after=0", stop_after=5))
    seen = [data for _, kind, data in first if kind == "text"]
    last_id = max(seq or 0 for seq, kind, _ in first if kind == "text")
    response = await client.get(url, headers={"Last-Event-ID": str(last_id)})
    rest = b"".join([chunk async for chunk in response.streaming_content])  # type: ignore[attr-defined]

    again = [data for _, kind, data in sse_events(rest) if kind == "text"]
    assert "".join(seen + again) == "".join(TOKENS)


@pytest.mark.asyncio
async def test_a_finished_answer_streams_its_final_state_from_the_database(
    alice: User, alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=["All ", "done."]))
    chat, answer = await sync_to_async(_start)(alice_client, fake_model)
    await sync_to_async(wait_for_answer)(answer.id)

    events = sse_events(
        await _read_stream(await _async_client_for(alice), f"/c/{chat.id}/m/{answer.id}/stream")
    )

    assert [kind for _, kind, _ in events] == ["done"]
    assert events[0][2]["status"] == "complete"
    assert "All done." in events[0][2]["html"]


@pytest.mark.asyncio
async def test_the_answer_keeps_going_after_the_reader_disconnects(
    alice: User, alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=TOKENS, delay=0.02))
    chat, answer = await sync_to_async(_start)(alice_client, fake_model)
    url = f"/c/{chat.id}/m/{answer.id}/stream?after=0"
    await _read_stream(await _async_client_for(alice), url, stop_after=3)

    saved = await sync_to_async(wait_for_answer)(answer.id)

    assert saved.status == "complete"
    assert saved.text == "".join(TOKENS)
    assert saved.stream_seq == len(TOKENS)


@pytest.mark.asyncio
async def test_a_quiet_stream_sends_keep_alives_until_the_answer_starts(
    alice: User, alice_client: Client, fake_model: str, fake_llm: Any, settings: Any
) -> None:
    settings.STREAM_KEEPALIVE_SECONDS = 0.2
    fake_llm.enqueue(Script(text=["Late ", "answer."], initial_delay=1.0))
    chat, answer = await sync_to_async(_start)(alice_client, fake_model)

    body = await _read_stream(
        await _async_client_for(alice), f"/c/{chat.id}/m/{answer.id}/stream?after=0"
    )

    before_text = body.split(b"event: text")[0]
    assert before_text.count(b": keep-alive") >= 2
    texts = [data for _, kind, data in sse_events(body) if kind == "text"]
    assert texts == ["Late ", "answer."]


def test_the_answer_is_generated_with_nobody_reading_and_saved_whole(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=TOKENS, reasoning=["think ", "hard"], delay=0.005))
    _chat, answer = _start(alice_client, fake_model)
    saved = wait_for_answer(answer.id)
    assert saved.text == "".join(TOKENS)
    assert saved.reasoning == "think hard"
    assert [part["type"] for part in saved.parts] == ["reasoning", "text"]


def test_stop_ends_the_answer_and_keeps_the_partial_text(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    script = Script(text=TOKENS, stall_after=3)
    fake_llm.enqueue(script)
    chat, answer = _start(alice_client, fake_model)
    assert script.wait_until_stalled()

    response = alice_client.post(f"/c/{chat.id}/m/{answer.id}/stop")

    assert response.status_code == 204
    saved = wait_for_answer(answer.id)
    assert saved.status == "stopped"
    assert saved.text == "".join(TOKENS[:3])
    page = alice_client.get(f"/c/{chat.id}/").content.decode()
    assert "Stopped" in page
    assert "Retry" in page


@pytest.mark.parametrize(
    ("script", "partial", "reason"),
    [
        (Script(text=TOKENS, fail_after=2), "word0 word1 ", "broke off"),
        (Script(text=TOKENS, error_after=2), "word0 word1 ", "fake provider was told to fail"),
        (Script(text=TOKENS, malformed_after=2), "word0 word1 ", ""),
        (Script(http_status=500), "", ""),
        (Script(http_status=401), "", ""),
    ],
    ids=["dropped", "error-event", "malformed", "http-500", "http-401"],
)
def test_a_provider_failure_keeps_the_partial_text_and_explains_itself(
    alice_client: Client, fake_model: str, fake_llm: Any, script: Script, partial: str, reason: str
) -> None:
    fake_llm.enqueue(script)
    _chat, answer = _start(alice_client, fake_model)

    saved = wait_for_answer(answer.id)

    assert saved.status == "error"
    assert saved.text == partial
    assert saved.error
    assert reason.lower() in saved.error.lower()
    assert "Traceback" not in saved.error


def test_retry_answers_again_beside_the_failed_answer(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=TOKENS, fail_after=2), Script(text=["Second ", "try."]))
    chat, failed = _start(alice_client, fake_model)
    wait_for_answer(failed.id)

    response = alice_client.post(
        f"/c/{chat.id}/m/{failed.id}/retry", headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    retried = chat.messages.filter(role="assistant").exclude(id=failed.id).get()
    assert retried.parent_id == failed.parent_id
    assert wait_for_answer(retried.id).text == "Second try."
    assert Message.objects.get(id=failed.id).status == "error"  # nothing is lost
    page = alice_client.get(f"/c/{chat.id}/").content.decode()
    assert "Second try." in page
    assert "2/2" in page


def test_a_complete_answer_cannot_be_retried(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    chat, answer = _start(alice_client, fake_model)
    wait_for_answer(answer.id)
    response = alice_client.post(f"/c/{chat.id}/m/{answer.id}/retry")
    assert response.status_code == 409
    assert chat.messages.count() == 2


def test_stopping_an_answer_nobody_generates_marks_it_stopped(
    alice: User, alice_client: Client
) -> None:
    from chats.services import message_send

    turn = message_send(user_id=alice.id, chat=None, text="hi", model_id="fake:fake-model")
    response = alice_client.post(f"/c/{turn.chat.id}/m/{turn.answer.id}/stop")
    assert response.status_code == 204
    assert Message.objects.get(id=turn.answer.id).status == "stopped"


def test_the_reaper_interrupts_stale_answers_only(alice: User) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from chats.reaper import messages_reap
    from chats.services import message_send

    stale = message_send(user_id=alice.id, chat=None, text="old", model_id="fake:fake-model")
    fresh = message_send(user_id=alice.id, chat=None, text="new", model_id="fake:fake-model")
    Message.objects.filter(id=stale.answer.id).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5)
    )

    assert messages_reap() == 1

    reaped = Message.objects.get(id=stale.answer.id)
    assert reaped.status == "interrupted"
    assert "stopped before this answer was finished" in reaped.error
    assert Message.objects.get(id=fresh.answer.id).status == "streaming"
    assert messages_reap() == 0


def test_the_page_of_an_interrupted_answer_offers_retry(alice: User, alice_client: Client) -> None:
    from chats.services import message_send

    turn = message_send(user_id=alice.id, chat=None, text="hi", model_id="fake:fake-model")
    Message.objects.filter(id=turn.answer.id).update(status="interrupted", error="Server went away")
    page = alice_client.get(f"/c/{turn.chat.id}/").content.decode()
    assert "Interrupted: Server went away" in page
    assert f"/c/{turn.chat.id}/m/{turn.answer.id}/retry" in page


async def _chunk_times(client: AsyncClient, url: str) -> list[tuple[float, bytes]]:
    """Every chunk of a stream with the time it arrived, to its end."""
    response = await client.get(url)
    assert response.status_code == 200
    chunks = []
    async for chunk in response.streaming_content:  # type: ignore[attr-defined]
        chunks.append((time.monotonic(), chunk))
    return chunks


def _largest_silence(chunks: list[tuple[float, bytes]]) -> float:
    times = [at for at, _ in chunks]
    return max(later - earlier for earlier, later in itertools.pairwise(times))


@pytest.mark.asyncio
async def test_a_stream_is_never_silent_longer_than_the_keep_alive_interval(
    alice: User, alice_client: Client, fake_model: str, fake_llm: Any, settings: Any
) -> None:
    settings.STREAM_KEEPALIVE_SECONDS = 1.2
    fake_llm.enqueue(Script(text=TOKENS[:6], pause_after=3, pause=3.0))
    chat, answer = await sync_to_async(_start)(alice_client, fake_model)

    chunks = await _chunk_times(
        await _async_client_for(alice), f"/c/{chat.id}/m/{answer.id}/stream?after=0"
    )

    body = b"".join(chunk for _, chunk in chunks)
    assert [data for _, kind, data in sse_events(body) if kind == "text"] == TOKENS[:6]
    assert body.split(b"event: text")[3].count(b": keep-alive") >= 2  # during the pause
    # A check once per interval, as before, left up to two intervals between writes.
    assert _largest_silence(chunks) < 1.2


def _answer_left_by(alice: User, generator: uuid.UUID | None, **fields: Any) -> Message:
    """A `streaming` answer with saved text, as a process that stopped mid-answer leaves it."""
    from chats.services import message_send

    turn = message_send(user_id=alice.id, chat=None, text="hi", model_id="fake:fake-model")
    Message.objects.filter(id=turn.answer.id).update(
        generator=generator,
        parts=[{"type": "text", "text": "Half an ans"}],
        stream_seq=2,
        **fields,
    )
    return Message.objects.get(id=turn.answer.id)


async def _stream_of(alice: User, answer: Message) -> list[tuple[int | None, str, Any]]:
    client = await _async_client_for(alice)
    return sse_events(await _read_stream(client, f"/c/{answer.chat_id}/m/{answer.id}/stream"))


@pytest.mark.asyncio
@pytest.mark.parametrize("redis", [False, True], ids=["one-process", "redis"])
async def test_an_answer_whose_process_is_gone_is_served_as_interrupted_on_first_read(
    alice: User, alice_client: Client, settings: Any, redis: bool
) -> None:
    if not redis:
        settings.REDIS_URL = ""  # one process: any other process id is one that ran before
    # A process that no longer exists (restarted: this one has another id), heartbeat fresh.
    answer = await sync_to_async(_answer_left_by)(alice, uuid.uuid4())

    events = await _stream_of(alice, answer)

    assert [kind for _, kind, _ in events] == ["done"]
    assert events[0][2]["status"] == "interrupted"
    saved = await Message.objects.aget(id=answer.id)
    assert saved.status == "interrupted"
    assert saved.text == "Half an ans"  # the saved text stays
    page = (await sync_to_async(alice_client.get)(f"/c/{answer.chat_id}/")).content.decode()
    assert "Interrupted: The server stopped before this answer was finished." in page
    assert f"/c/{answer.chat_id}/m/{answer.id}/retry" in page


@pytest.mark.asyncio
async def test_an_answer_with_a_stale_heartbeat_is_served_as_interrupted_on_first_read(
    alice: User,
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    long_ago = timezone.now() - timedelta(minutes=5)
    answer = await sync_to_async(_answer_left_by)(alice, None, heartbeat_at=long_ago)

    events = await _stream_of(alice, answer)

    assert events[0][2]["status"] == "interrupted"
    assert (await Message.objects.aget(id=answer.id)).status == "interrupted"


@pytest.mark.asyncio
async def test_an_answer_whose_process_is_alive_is_left_streaming(
    alice: User, monkeypatch: Any
) -> None:
    from chats import relay

    monkeypatch.setattr(relay, "SNAPSHOT_TIMEOUT_SECONDS", 0.5)
    alive = uuid.uuid4()
    await relay.process_liveness_refresh(process=alive, ttl_ms=60_000)
    answer = await sync_to_async(_answer_left_by)(alice, alive)

    events = await _stream_of(alice, answer)

    # Nobody answered for it this time: the state to reconnect from, and nothing settled.
    assert [kind for _, kind, _ in events] == ["done"]
    assert events[0][2]["status"] == "streaming"
    assert (await Message.objects.aget(id=answer.id)).status == "streaming"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "error"),
    [
        ("receive", RedisTimeoutError("Timeout reading from 127.0.0.1:6379")),
        ("group_send", RedisConnectionError("Error 111 connecting to 127.0.0.1:6379.")),
    ],
    ids=["timeout", "connection"],
)
async def test_a_redis_failure_ends_the_stream_with_a_state_to_reconnect_from(
    alice: User, monkeypatch: Any, method: str, error: Exception
) -> None:
    from channels.layers import get_channel_layer

    from chats import relay

    alive = uuid.uuid4()
    await relay.process_liveness_refresh(process=alive, ttl_ms=60_000)
    answer = await sync_to_async(_answer_left_by)(alice, alive)

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise error

    # Only the relay's Redis calls fail: the one thing a test cannot make a real Redis do.
    monkeypatch.setattr(get_channel_layer(), method, failing)
    events = await _stream_of(alice, answer)

    assert [kind for _, kind, _ in events] == ["done"]
    assert events[0][2]["status"] == "streaming"
    assert events[0][0] == 2  # the client resumes after what the database has
    assert (await Message.objects.aget(id=answer.id)).status == "streaming"


def test_a_stopping_process_ends_its_answers_as_interrupted_with_their_text(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    import asyncio

    from chats import relay
    from chats.live import live_answer_get
    from chats.worker import _worker
    from vero.lifecycle import process_id, process_retire

    script = Script(text=TOKENS, stall_after=3)
    fake_llm.enqueue(script)
    _chat, answer = _start(alice_client, fake_model)
    assert script.wait_until_stalled()
    live = live_answer_get(answer.id)
    assert live is not None
    deadline = time.monotonic() + 10
    while live.seq < 3:  # the three deltas reached the answer
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert _worker.loop is not None

    async def retire_then_ask() -> bool | None:
        await process_retire()  # what `python -m vero.serve` does once Daphne stopped
        return await relay.process_alive(process_id())

    alive = asyncio.run_coroutine_threadsafe(retire_then_ask(), _worker.loop).result(10)

    saved = Message.objects.get(id=answer.id)
    assert saved.status == "interrupted"
    assert saved.text == "".join(TOKENS[:3])  # up to the last delta, not the last checkpoint
    assert alive is False  # readers elsewhere need not wait for its key to expire


def test_the_reaper_interrupts_answers_whose_process_is_gone_without_waiting(
    alice: User,
) -> None:
    from io import StringIO

    from asgiref.sync import async_to_sync
    from django.core.management import call_command

    from chats import relay

    alive = uuid.uuid4()
    async_to_sync(relay.process_liveness_refresh)(process=alive, ttl_ms=60_000)
    orphan = _answer_left_by(alice, uuid.uuid4())  # heartbeat fresh, its process gone
    live_elsewhere = _answer_left_by(alice, alive)
    out = StringIO()

    call_command("reap_streams", stdout=out)  # as `make run` does before serving

    assert out.getvalue().strip() == "reaper: 1 interrupted answer(s)"
    reaped = Message.objects.get(id=orphan.id)
    assert reaped.status == "interrupted"
    assert reaped.text == "Half an ans"
    assert Message.objects.get(id=live_elsewhere.id).status == "streaming"


def test_the_periodic_reaper_leaves_another_processs_answer_while_its_heartbeat_is_fresh(
    alice: User,
) -> None:
    from datetime import timedelta

    from asgiref.sync import async_to_sync
    from django.utils import timezone

    from chats.reaper import messages_reap_periodic

    # The generating process keeps no liveness key this process can see (this one without
    # Redis, or a server configured without it): only its heartbeats say that it is alive.
    written = _answer_left_by(alice, uuid.uuid4())  # heartbeat fresh
    quiet = _answer_left_by(
        alice, uuid.uuid4(), heartbeat_at=timezone.now() - timedelta(seconds=25)
    )  # two heartbeats missed (10 s apart), not yet stale (60 s)

    reaped = async_to_sync(messages_reap_periodic)()

    assert reaped == 1
    assert Message.objects.get(id=written.id).status == "streaming"
    assert Message.objects.get(id=quiet.id).status == "interrupted"
