"""Live answers: an answer being generated in this process, fanned out to its readers.

Every delta is kept in memory with a sequence number (`LiveAnswer.events`), so a reader can
join at any point without a gap or a duplicate. Readers on any event loop follow it
(`LiveAnswer.follow`); one pacer per loop wakes them, batching what arrived meanwhile into one
write and keeping silent streams alive.

This module knows nothing of the database, the provider or Redis: the relay (`chats.relay`)
builds on it to serve readers in other processes, and so it must not import the relay back.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

# A stream in this process writes at most this often: deltas that arrive meanwhile go out
# together in one write (each still its own event). One timer per loop paces every follower,
# and the first delta after a quiet spell goes out at once. (Batches sent through Redis to
# other processes have an interval of their own: `chats.relay.RELAY_BATCH_SECONDS`.)
STREAM_WRITE_INTERVAL_SECONDS = 0.04


@dataclass(frozen=True, slots=True)
class StreamEvent:
    seq: int
    # "step" | "reasoning" | "text" | "tool" | "tool-call" | "tool-result" | "notice" | "done"
    # (docs/tools.md, "Live events")
    kind: str
    data: Any


def keepalive_seconds() -> float:
    """The longest a stream may stay silent (`STREAM_KEEPALIVE_SECONDS`)."""
    return float(settings.STREAM_KEEPALIVE_SECONDS)


def keepalive_due_seconds() -> float:
    """After this much silence a stream writes a keep-alive comment: three quarters of the
    limit, so that timers late on a busy machine still keep it."""
    return keepalive_seconds() * 0.75


class _Pacer:
    """Wakes the followers on one event loop: those with news at most every
    `STREAM_WRITE_INTERVAL_SECONDS` (together, on one timer), the silent ones so that none stays
    silent longer than `keepalive_seconds()`.

    The keep-alive timer looks every quarter of `keepalive_seconds()` and wakes the followers
    silent for half of it or more: a follower is then silent for three quarters of it at most.
    (Once per interval, waking those silent for a whole one, left gaps of up to two.)
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.due: list[Follower] = []
        self.followers: set[Follower] = set()
        self.last = -STREAM_WRITE_INTERVAL_SECONDS
        self._tick: asyncio.Handle | None = None
        self._keepalive: asyncio.TimerHandle | None = None

    def add(self, follower: Follower) -> None:
        self.followers.add(follower)
        if self._keepalive is None:
            self._keepalive = self.loop.call_later(keepalive_seconds() / 4, self._keep_alive)

    def discard(self, follower: Follower) -> None:
        self.followers.discard(follower)
        if not self.followers and self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None

    def schedule(self, follower: Follower) -> None:
        """`follower` has news: wake it with the next tick (on this loop)."""
        self.due.append(follower)
        if self._tick is None:
            at = self.last + STREAM_WRITE_INTERVAL_SECONDS
            if at <= self.loop.time():
                self._tick = self.loop.call_soon(self._flush)
            else:
                self._tick = self.loop.call_at(at, self._flush)

    def _flush(self) -> None:
        self._tick = None
        self.last = self.loop.time()
        due, self.due = self.due, []
        for follower in due:
            follower.wake()

    def _keep_alive(self) -> None:
        self._keepalive = None
        quarter = keepalive_seconds() / 4
        quiet = self.loop.time() - 2 * quarter
        for follower in self.followers:
            if follower.woken_at <= quiet:
                follower.wake()
        if self.followers:
            self._keepalive = self.loop.call_later(quarter, self._keep_alive)


_pacers: dict[asyncio.AbstractEventLoop, _Pacer] = {}
_pacers_lock = threading.Lock()


def _pacer(loop: asyncio.AbstractEventLoop) -> _Pacer:
    with _pacers_lock:
        pacer = _pacers.get(loop)
        if pacer is None or pacer.loop.is_closed():
            for old in [key for key in _pacers if key.is_closed()]:
                del _pacers[old]
            pacer = _pacers[loop] = _Pacer(loop)
        return pacer


class Follower:
    """A reader of a live answer on some event loop: events wait here until it wakes up.

    A follower is woken at most once per batch and takes everything that accumulated
    meanwhile; on the generation loop itself that is a plain call, from another loop one
    thread-safe call per batch.
    """

    __slots__ = ("_waiter", "_woken", "loop", "pacer", "pending", "signalled", "woken_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pacer = _pacer(loop)
        self.pending: list[StreamEvent] = []
        self.signalled = False  # news is scheduled and not taken yet (under the answer's lock)
        self.woken_at = loop.time()
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        """Let `wait` return (on this follower's loop)."""
        self._woken = True
        self.woken_at = self.loop.time()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        """Until there is news, or it has been silent for too long (see `_Pacer`)."""
        if not self._woken:
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self._woken = False


class LiveAnswer:
    """An answer being generated in this process: its events so far and who follows them."""

    def __init__(
        self,
        *,
        message_id: uuid.UUID,
        chat_id: uuid.UUID,
        user_id: uuid.UUID,
    ) -> None:
        self.message_id = message_id
        self.chat_id = chat_id
        self.user_id = user_id  # whose answer: a stream of it needs no database to check
        self.events: list[StreamEvent] = []
        self.task: asyncio.Task[None] | None = None
        self.stop_requested = False
        self._lock = threading.Lock()
        self._followers: list[Follower] = []
        self._listeners: list[Callable[[StreamEvent], None]] = []

    @property
    def seq(self) -> int:
        return len(self.events)

    def emit(self, kind: str, data: Any) -> StreamEvent:
        with self._lock:
            event = StreamEvent(seq=len(self.events) + 1, kind=kind, data=data)
            self.events.append(event)
            here = asyncio.get_running_loop()
            for follower in self._followers:
                follower.pending.append(event)
                if not follower.signalled:
                    follower.signalled = True
                    if follower.loop is here:
                        follower.pacer.schedule(follower)
                    else:
                        follower.loop.call_soon_threadsafe(follower.pacer.schedule, follower)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)
        return event

    def follow(self, *, after: int) -> tuple[list[StreamEvent], Follower]:
        """Return the events after `after` and a follower for the next ones, nothing between."""
        follower = Follower(asyncio.get_running_loop())
        follower.pacer.add(follower)
        with self._lock:
            backlog = self.events[max(after, 0) :]
            self._followers.append(follower)
        return backlog, follower

    def take(self, follower: Follower) -> list[StreamEvent]:
        """Return what arrived for `follower` since it last took (call on its own loop)."""
        with self._lock:
            batch, follower.pending = follower.pending, []
            follower.signalled = False
        return batch

    def unfollow(self, follower: Follower) -> None:
        """Stop following (call on the follower's own loop)."""
        with self._lock:
            self._followers = [entry for entry in self._followers if entry is not follower]
        follower.pacer.discard(follower)

    def events_after(self, after: int) -> list[StreamEvent]:
        with self._lock:
            return self.events[max(after, 0) :]

    def listen(self, listener: Callable[[StreamEvent], None]) -> None:
        with self._lock:
            self._listeners.append(listener)


# -- the answers this process generates ---------------------------------------------------------

_live: dict[uuid.UUID, LiveAnswer] = {}
_live_lock = threading.Lock()


def live_answer_get(message_id: uuid.UUID) -> LiveAnswer | None:
    with _live_lock:
        return _live.get(message_id)


def live_answer_add(live: LiveAnswer) -> None:
    """`live` is generated in this process from now on."""
    with _live_lock:
        _live[live.message_id] = live


def live_answer_remove(message_id: uuid.UUID) -> None:
    """The answer's end is saved: readers from now on read it from the database."""
    with _live_lock:
        _live.pop(message_id, None)


def live_answer_ids() -> list[uuid.UUID]:
    """The answers this process generates now (the reaper must leave them alone)."""
    with _live_lock:
        return list(_live)


def generation_stop(message_id: uuid.UUID) -> bool:
    """Stop an answer generated by this process; False when it is not generating here."""
    live = live_answer_get(message_id)
    if live is None or live.stop_requested:
        return live is not None
    live.stop_requested = True
    if live.task is not None:
        # The task runs on the generation loop, maybe not this thread's.
        live.task.get_loop().call_soon_threadsafe(live.task.cancel)
    return True
