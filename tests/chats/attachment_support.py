"""Files to upload, made on the spot, and the storage the tests look into."""

from __future__ import annotations

import io
from pathlib import Path

from django.test import Client

from accounts.models import User
from chats.models import Attachment


def png_bytes(*, size: tuple[int, int] = (32, 24), color: str = "red") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes(*, size: tuple[int, int] = (64, 48), quality: int = 90) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def bomb_png_bytes() -> bytes:
    """100 megapixels of one colour: a few kilobytes on disk, far past the pixel limit."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def pdf_bytes(*, pages: int = 2) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def wav_bytes(*, seconds: float = 0.5, rate: int = 8000) -> bytes:
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def upload(client: Client, data: bytes, name: str) -> tuple[int, dict[str, object]]:
    response = client.post(
        "/attachments",
        data=data,
        content_type="application/octet-stream",
        headers={"X-Filename": name},
    )
    return response.status_code, response.json()


def stored_files(media_root: Path) -> list[Path]:
    return sorted(path for path in media_root.rglob("*") if path.is_file())


def attachments_of(user: User) -> list[Attachment]:
    return list(Attachment.objects.filter(owner=user))
