"""A message's files in the transcript: each file part renders as its kind reads best (an image
thumbnail, a PDF chip, an audio player), linking to its owner-only download."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client

from chats.models import Chat, Message
from tests.chats.helpers import wait_for_answer
from tests.fake_provider import Script

pytestmark = pytest.mark.django_db(transaction=True)


def _file_part(kind: str, name: str, content_type: str, size: int) -> dict[str, Any]:
    return {"type": "file", "attachment_id": str(uuid.uuid4()), "name": name, "kind": kind,
            "content_type": content_type, "size": size}  # fmt: skip


def test_a_messages_image_pdf_and_audio_render_linked_to_their_downloads(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text=["Seen."]), Script(text=["A title"]))
    alice_client.post("/c/send", {"text": "What are these?", "model": fake_model})
    chat = Chat.objects.get()
    wait_for_answer(Message.objects.get(chat=chat, role="assistant").id)
    question = Message.objects.get(chat=chat, role="user")
    image = _file_part("image", "map.png", "image/png", 2048)
    pdf = _file_part("file", "report <1>.pdf", "application/pdf", 3 * 1024 * 1024)
    audio = _file_part("audio", "voice.webm", "audio/webm", 9000)
    question.parts = [image, pdf, audio, *question.parts]
    question.save(update_fields=["parts"])

    html = alice_client.get(f"/c/{chat.id}/").content.decode()

    image_url = f"/attachments/{image['attachment_id']}"
    assert f'<a href="{image_url}"' in html
    assert f'<img class="message-file-thumb" src="{image_url}" alt="map.png"' in html
    assert f'class="message-file-chip" href="/attachments/{pdf["attachment_id"]}"' in html
    assert "report &lt;1&gt;.pdf" in html  # the name escaped, never markup
    assert "3.0\xa0MB" in html
    audio_url = f"/attachments/{audio['attachment_id']}"
    assert f'<audio class="message-file-audio" controls preload="none" src="{audio_url}"' in html
    assert html.index("message-file-thumb") < html.index("What are these?")
