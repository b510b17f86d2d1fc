"""What attachments add to a send (issue 15): statements on the request, time to the provider.

- `send_extra_statements_3_attachments` (target <= 2): the SQL statements a send with three
  attachments runs on the request's connection, minus those of the same send without files
  (CaptureQueriesContext; both follow-ups in the same chat, through `turn_send` as the view
  calls it). The extra ones: the attachments' check, and one statement linking the question
  (`MessageAttachment` rows and `first_sent_at`).
- `first_byte_5mb_image_vs_none` (target <= 1.3): from the send's start to the fake provider
  receiving the chat request, with one 5 MB image (random pixels: a PNG that does not
  compress) against none; the file is read and encoded by the generation task, off the
  request. Medians over ROUNDS alternating rounds; the two absolute times are reported too.

In one process, against the fake provider (a thread of this process), on a scratch database,
the files in a temporary MEDIA_ROOT.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import statistics
import sys
import tempfile
import time

from _harness import Setup, bench_main, comment, report

ROUNDS = 7


def _noise_png(size_bytes: int) -> bytes:
    from PIL import Image

    side = int((size_bytes / 3) ** 0.5)
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def body(setup: Setup) -> None:
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from chats.models import Attachment
    from chats.turn_services import Outgoing, turn_send
    from chats.worker import TITLE_PROMPT
    from models_registry.cache import registry_cache_clear
    from models_registry.models import Model
    from tests.chats.helpers import wait_for_answer
    from tests.helpers import FAKE_MODEL_ID

    settings.MEDIA_ROOT = tempfile.mkdtemp(prefix="vero-bench-media-")
    fake = setup.fake
    Model.objects.filter(id=FAKE_MODEL_ID).update(input_modalities=["text", "image"])
    registry_cache_clear()
    user = User.objects.create_user("bench-attachments@example.com", "x")

    def stored(data: bytes, name: str, side: int) -> Attachment:
        attachment = Attachment(
            owner=user, sha256=hashlib.sha256(data).hexdigest(), kind="image",
            content_type="image/png", size=len(data), name=name, width=side, height=side,
        )  # fmt: skip
        attachment.file.save(name, ContentFile(data), save=True)
        return attachment

    def sent(chat: object, ids: tuple[object, ...]) -> tuple[object, float]:
        """Send, wait for the answer; the chat and the seconds until the provider saw it."""
        count = len(fake.chat_requests)
        began = time.time()
        turn = turn_send(
            actor=user,
            actor_ensure=lambda: user,
            chat=chat,  # type: ignore[arg-type]
            outgoing=Outgoing("Describe it.", FAKE_MODEL_ID, attachment_ids=ids),  # type: ignore[arg-type]
        ).turn
        answer = wait_for_answer(turn.answer.id, timeout=60)
        if answer.status != "complete":
            raise SystemExit(f"an answer failed: {answer.error}")
        # The chat's answer, not a title's (generated after a new chat's first answer).
        request = next(
            r for r in fake.chat_requests[count:]
            if r.messages and r.messages[0].get("content") != TITLE_PROMPT
        )  # fmt: skip
        return turn.chat, request.received_at - began

    small = [stored(_noise_png(3000 + n), f"{n}.png", 30) for n in range(3)]
    chat, _ = sent(None, ())  # a chat to follow up in; warms imports and connections
    sent(chat, tuple(a.id for a in small))

    counts: dict[str, int] = {}
    for label, ids in (("none", ()), ("three", tuple(a.id for a in small))):
        with CaptureQueriesContext(connection) as queries:
            sent(chat, ids)
        counts[label] = len(queries.captured_queries)
    extra = counts["three"] - counts["none"]
    comment(f"a follow-up send runs {counts['none']} statements without files, "
            f"{counts['three']} with 3 attachments")  # fmt: skip
    report("send_extra_statements_3_attachments", extra, "statements", "<= 2", extra <= 2)

    big_bytes = _noise_png(5 * 1024 * 1024)
    big = stored(big_bytes, "big.png", int((5 * 1024 * 1024 / 3) ** 0.5))
    comment(f"the image: {len(big_bytes) / 1e6:.1f} MB PNG")
    with_image: list[float] = []
    without: list[float] = []
    for _ in range(ROUNDS):
        chat, seconds = sent(None, (big.id,))
        with_image.append(seconds)
        chat, seconds = sent(None, ())
        without.append(seconds)
    image_ms = statistics.median(with_image) * 1000
    none_ms = statistics.median(without) * 1000
    report("first_byte_5mb_image_ms", image_ms, "ms")
    report("first_byte_no_file_ms", none_ms, "ms")
    ratio = image_ms / none_ms
    report("first_byte_5mb_image_vs_none", ratio, "ratio", "<= 1.3", ratio <= 1.3)
    from chats.worker import _worker
    from models_registry.llm import llm_close

    asyncio.run_coroutine_threadsafe(llm_close(), _worker.loop).result(10)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(bench_main(body, prefix="vero_bench_attach", fake_bucket=100_000))
