"""Attachments for tests: real files (an image made with Pillow, a tiny PDF, a WAV) stored
through Django's default storage, and models that read them or not.

The upload endpoint is another piece's (`chats.attachment_views`); the send only needs the
rows and the stored bytes, made here as the upload makes them.
"""

from __future__ import annotations

import hashlib
import io
import wave
from typing import Any

from django.core.files.base import ContentFile
from PIL import Image

from accounts.models import User
from chats.models import Attachment
from models_registry.cache import registry_cache_clear
from models_registry.models import Creator, Model, ModelProvider, Provider

TEXT_MODEL_ID = "fake:text-only"
ALL_KINDS = ["text", "image", "file", "audio"]


def png_bytes(
    width: int = 4, height: int = 3, color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def pdf_bytes(text: str = "Hello") -> bytes:
    """A one-page PDF with a line of text (hand-written: offsets computed)."""
    stream = f"BT /F1 12 Tf 20 50 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref,
    )  # fmt: skip
    return bytes(out)


def wav_bytes(seconds: float = 0.1, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x00\x01" * int(seconds * rate))
    return buffer.getvalue()


def attachment_store(
    *, owner: User, data: bytes, kind: str, content_type: str, name: str, **measures: Any
) -> Attachment:
    """An attachment row with its bytes in the default storage, as an upload leaves it."""
    sha = hashlib.sha256(data).hexdigest()
    attachment = Attachment(
        owner=owner, sha256=sha, kind=kind, content_type=content_type, size=len(data),
        name=name, **measures,
    )  # fmt: skip
    attachment.file.save(name, ContentFile(data), save=True)
    return attachment


def image_of(owner: User, *, name: str = "red.png", width: int = 4, height: int = 3) -> Attachment:
    return attachment_store(
        owner=owner, data=png_bytes(width, height), kind="image", content_type="image/png",
        name=name, width=width, height=height,
    )  # fmt: skip


def pdf_of(owner: User, *, name: str = "hello.pdf") -> Attachment:
    return attachment_store(
        owner=owner, data=pdf_bytes(), kind="file", content_type="application/pdf", name=name,
        pages=1,
    )  # fmt: skip


def wav_of(owner: User, *, name: str = "beep.wav") -> Attachment:
    return attachment_store(
        owner=owner, data=wav_bytes(), kind="audio", content_type="audio/wav", name=name,
        duration_seconds=0.1,
    )  # fmt: skip


def model_reads(model_id: str, modalities: list[str]) -> None:
    """Record what `model_id` reads (as an admin would), for the next resolution."""
    Model.objects.filter(id=model_id).update(input_modalities=modalities)
    registry_cache_clear()


def text_only_model_register() -> str:
    """A second model on the fake provider that reads text only."""
    model, _ = Model.objects.get_or_create(
        id=TEXT_MODEL_ID,
        defaults={"creator": Creator.objects.get(slug="fake"), "display_name": "Text Only",
                  "input_modalities": ["text"]},
    )  # fmt: skip
    ModelProvider.objects.get_or_create(
        model=model, provider=Provider.objects.get(slug="fake-provider"),
        defaults={"provider_model_id": "text-only", "is_default": True,
                  "price_input_per_million": 1, "price_output_per_million": 2},
    )  # fmt: skip
    registry_cache_clear()
    return TEXT_MODEL_ID
