"""Answers nobody generates any more: found and settled as `interrupted`, with their content.

An answer stays `streaming` in the database while some process generates it. When that
process stops, it ends its own answers (`live_answers_interrupt`); when it dies, the answers
it left are found by their stale heartbeat or, with Redis, by the process's missing liveness
key (`answer_orphaned`), by a reader (`chats.streaming`), by the reaper that runs on every
process's generation loop (`reaper_forever`), or by `manage.py reap_streams` before a server
starts. The writes themselves are `chats.answer_services`'.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from chats import relay
from chats.answer_services import (
    db_off_loop,
    message_interrupt_orphan,
    messages_interrupt_stale,
    messages_interrupt_with_content,
)
from chats.attachment_services import attachments_prune_if_due
from chats.checkpoints import checkpoints_now, heartbeat_seconds
from chats.live import live_answer_get, live_answer_ids
from chats.models import Message
from chats.tombstone_services import tombstones_prune_if_due
from vero.process import process_id

logger = logging.getLogger(__name__)


def _stale_before() -> datetime:
    return timezone.now() - timedelta(seconds=settings.STREAM_STALE_SECONDS)


async def answer_orphaned(*, message: Message) -> bool:
    """Whether `message` is `streaming` with nobody generating it any more.

    True when its heartbeat is older than `STREAM_STALE_SECONDS`, or when the process that
    generates it (`Message.generator`) is gone: without Redis there is one process, so any
    other id is a process that ran before this one; with Redis, a process is alive while its
    liveness key is (`chats.relay.process_alive`). An answer generated here, or by an unknown
    process (older rows), is judged by its heartbeat alone, and so is any answer while Redis
    cannot be asked.
    """
    if message.status != Message.Status.STREAMING or live_answer_get(message.id) is not None:
        return False
    if message.heartbeat_at is not None and message.heartbeat_at < _stale_before():
        return True
    if message.generator is None or message.generator == process_id():
        return False
    if not relay.enabled():
        return True
    return await relay.process_alive(message.generator) is False


async def live_answers_interrupt() -> int:
    """Mark every answer this process generates `interrupted`, with its content so far: the
    process is stopping and they end with it. Returns how many."""
    checkpoints = checkpoints_now()
    ids = live_answer_ids()
    if not ids:
        return 0
    return await db_off_loop(messages_interrupt_with_content)(checkpoints=checkpoints, ids=ids)


def _streaming_elsewhere(*, quiet_since: datetime | None) -> list[Message]:
    answers = (
        Message.objects.filter(status=Message.Status.STREAMING, generator__isnull=False)
        .exclude(generator=process_id())
        .exclude(id__in=live_answer_ids())
    )
    if quiet_since is not None:
        answers = answers.filter(heartbeat_at__lt=quiet_since)
    return list(answers.only("id", "status", "heartbeat_at", "generator"))


async def messages_reap_orphans(*, quiet_since: datetime | None = None) -> int:
    """Mark `streaming` answers whose process is gone (`answer_orphaned`) as `interrupted`
    without waiting for their heartbeat to go stale, even when nobody reads them (their chat
    refuses sends meanwhile). Returns how many.

    With `quiet_since`, only answers whose heartbeat is older are looked at."""
    reaped = 0
    for message in await db_off_loop(_streaming_elsewhere)(quiet_since=quiet_since):
        if await answer_orphaned(message=message):
            reaped += bool(await db_off_loop(message_interrupt_orphan)(message_id=message.id))
    return reaped


def messages_reap(*, stale_after: timedelta | None = None) -> int:
    """Mark `streaming` answers whose heartbeat is stale as `interrupted`; return how many."""
    cutoff = timezone.now() - stale_after if stale_after is not None else _stale_before()
    return messages_interrupt_stale(before=cutoff, keep=set(live_answer_ids()))


def _missed_heartbeats_since() -> datetime:
    """Before this, an answer has missed two heartbeats: whoever generates it is not writing."""
    return timezone.now() - timedelta(seconds=2 * heartbeat_seconds())


async def messages_reap_periodic() -> int:
    """One round of the reaper: stale answers, and answers of gone processes.

    Another process's answer is settled only once it has also missed its heartbeats: a
    process that cannot see the generator's liveness (a test's or a bench's own process,
    configured without the server's Redis) must not end answers that are plainly being
    written."""
    return await db_off_loop(messages_reap)() + await messages_reap_orphans(
        quiet_since=_missed_heartbeats_since()
    )


async def reaper_forever() -> None:
    """Reap every `STREAM_REAPER_INTERVAL_SECONDS` while the generation loop runs, and prune
    the sync's old tombstones and unreferenced attachments once an hour."""
    while True:
        try:
            reaped = await messages_reap_periodic()
            if reaped:
                logger.info("reaper: %d interrupted answer(s)", reaped)
            await db_off_loop(tombstones_prune_if_due)()  # hourly at most
            await db_off_loop(attachments_prune_if_due)()  # hourly at most
        except Exception:
            logger.exception("reaper failed")
        await asyncio.sleep(settings.STREAM_REAPER_INTERVAL_SECONDS)
