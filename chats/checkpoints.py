"""Checkpoints: the growing content and the heartbeat of every answer this process generates.

A page rendered from the database mid-answer shows the content saved here and follows the
stream from exactly there; a reader elsewhere tells an answer somebody still generates from
an abandoned one by its heartbeat. However many answers stream, that is one statement per
`GENERATION_CHECKPOINT_SECONDS` on one timer (`chats.answer_services.answers_checkpoint`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field

import orjson
from django.conf import settings

from chats.answer_services import CheckpointRow, answers_checkpoint, db_off_loop
from chats.live import LiveAnswer
from chats.parts import AnswerParts

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0  # at most; a third of STREAM_STALE_SECONDS when that is shorter


def heartbeat_seconds() -> float:
    """How often a silent answer's heartbeat is saved.

    It must stay well inside the stale limit, or a reader would take the answer for one
    nobody generates.
    """
    return min(HEARTBEAT_SECONDS, float(settings.STREAM_STALE_SECONDS) / 3)


@dataclass
class _Checkpoint:
    live: LiveAnswer
    parts: AnswerParts
    saved_seq: int = 0
    saved_at: float = field(default_factory=time.monotonic)

    def row(self) -> CheckpointRow:
        """The content so far and the sequence number it reaches (read together on the loop)."""
        return (self.live.message_id, orjson.dumps(self.parts.parts).decode(), self.live.seq)


class _Checkpoints:
    """Saves the growing content of every answer this process generates, on one timer.

    Each interval, one statement stores the answers that grew (their parts and the sequence
    number those parts reach, read together on the generation loop, so a page rendered from
    them follows the stream from exactly there) and refreshes the heartbeat of answers that
    were silent for HEARTBEAT_SECONDS. However many answers stream, that is one database
    round trip per interval, and no stream holds a connection.
    """

    def __init__(self) -> None:
        self.answers: dict[uuid.UUID, _Checkpoint] = {}
        self.task: asyncio.Task[None] | None = None
        self.saving = False

    def add(self, live: LiveAnswer, parts: AnswerParts) -> None:
        self.answers[live.message_id] = _Checkpoint(live=live, parts=parts)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, message_id: uuid.UUID) -> None:
        self.answers.pop(message_id, None)
        # No answer left: the timer goes now rather than at the end of its interval, and the
        # next answer starts a fresh one (with the interval in force then). A save under way
        # finishes, and the timer then ends by itself.
        if not self.answers and self.task is not None and not self.saving:
            self.task.cancel()
            self.task = None

    def _due(self) -> list[CheckpointRow]:
        now = time.monotonic()
        rows: list[CheckpointRow] = []
        for message_id, entry in self.answers.items():
            seq = entry.live.seq
            if seq != entry.saved_seq:
                rows.append(entry.row())
            elif now - entry.saved_at >= heartbeat_seconds():
                rows.append((message_id, None, None))
            else:
                continue
            entry.saved_seq, entry.saved_at = seq, now
        return rows

    async def _run(self) -> None:
        while self.answers:
            await asyncio.sleep(settings.GENERATION_CHECKPOINT_SECONDS)
            rows = self._due()
            if not rows:
                continue
            self.saving = True
            try:
                await db_off_loop(answers_checkpoint)(rows=rows)
            except Exception:  # the next interval saves again; the final save is separate
                logger.exception("checkpoint of %d answer(s) failed", len(rows))
            finally:
                self.saving = False


_checkpoints = _Checkpoints()


def checkpoints_track(live: LiveAnswer, parts: AnswerParts) -> None:
    """Save `live`'s content (folded into `parts`) on the timer until it is untracked (call on
    the generation loop)."""
    _checkpoints.add(live, parts)


def checkpoints_untrack(message_id: uuid.UUID) -> None:
    """The answer ends: its end is saved by itself (`answer_finish`)."""
    _checkpoints.remove(message_id)


def checkpoints_now() -> list[CheckpointRow]:
    """The content so far of every answer tracked, to save as the process stops."""
    return [entry.row() for entry in _checkpoints.answers.values()]
