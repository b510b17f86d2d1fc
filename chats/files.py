"""What an uploaded file is, told from its bytes alone, and whether Vero may keep it.

The type is sniffed from the first bytes with the magic numbers of the short list the contract
accepts (docs/attachments.md), never from the name or the browser's word. Our own table, not a
sniffing library: the list is a dozen fixed signatures, and what matters is refusing everything
else (HTML, SVG, scripts, archives), which a table that knows only what we accept does by
construction. Then each kind is checked for what it claims: images are decoded with Pillow under
the decompression-bomb limit, PDFs must open and count their pages (pypdf reads the page tree,
not the page contents), and a WAV's duration is read from its header.
"""

from __future__ import annotations

import re
import struct
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from django.conf import settings

from vero.errors import ErrorKind, VeroError

SNIFF_BYTES = 64  # every signature below is decided within the first 64 bytes
NAME_MAX_CHARS = 120  # shown in chips and headers; a longer stem is cut


class AttachmentRefused(VeroError):
    code: ClassVar[str] = "attachment_refused"
    kind: ClassVar[ErrorKind] = ErrorKind.INVALID
    default_message: ClassVar[str] = "This file cannot be attached."


class AttachmentTooLarge(VeroError):
    code: ClassVar[str] = "attachment_too_large"
    kind: ClassVar[ErrorKind] = ErrorKind.TOO_LARGE
    default_message: ClassVar[str] = "This file is too large."


@dataclass(frozen=True)
class FileType:
    kind: str  # the registry's modality name: image, file, audio
    content_type: str
    extensions: tuple[str, ...]  # the first is the one a name gets when its own does not fit


JPEG = FileType("image", "image/jpeg", ("jpg", "jpeg"))
PNG = FileType("image", "image/png", ("png",))
GIF = FileType("image", "image/gif", ("gif",))
WEBP = FileType("image", "image/webp", ("webp",))
PDF = FileType("file", "application/pdf", ("pdf",))
WAV = FileType("audio", "audio/wav", ("wav",))
MP3 = FileType("audio", "audio/mpeg", ("mp3",))
OGG = FileType("audio", "audio/ogg", ("ogg", "opus", "oga"))
WEBM = FileType("audio", "audio/webm", ("webm",))
MP4 = FileType("audio", "audio/mp4", ("m4a", "mp4"))
FLAC = FileType("audio", "audio/flac", ("flac",))

_PILLOW_FORMATS = {JPEG: "JPEG", PNG: "PNG", GIF: "GIF", WEBP: "WEBP"}


def _is_mp3_frame(head: bytes) -> bool:
    # An MPEG audio frame header: 11 sync bits, a version other than "reserved", and a layer
    # other than 00 (ADTS AAC uses 00; it is not MP3).
    if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    return (head[1] >> 3) & 0b11 != 0b01 and (head[1] >> 1) & 0b11 != 0


def file_type_sniff(head: bytes) -> FileType | None:
    """The accepted type these first bytes begin, or None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"ID3") or _is_mp3_frame(head):
        return MP3
    if head.startswith(b"OggS"):
        return OGG
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head[:SNIFF_BYTES]:
        return WEBM
    if head[4:8] == b"ftyp":
        return MP4
    if head.startswith(b"fLaC"):
        return FLAC
    return None


@dataclass(frozen=True)
class FileFacts:
    """What the checks learnt: what the context budget counts."""

    width: int | None = None
    height: int | None = None
    pages: int | None = None
    duration_seconds: float | None = None


def file_check(*, path: Path, file_type: FileType) -> FileFacts:
    """Check that the file at `path` is the `file_type` it begins as; raise AttachmentRefused."""
    if file_type.kind == "image":
        return _image_check(path=path, file_type=file_type)
    if file_type is PDF:
        return FileFacts(pages=_pdf_pages(path=path))
    if file_type is WAV:
        return FileFacts(duration_seconds=_wav_duration(path=path))
    return FileFacts()  # other audio: the provider decodes it; its duration stays unknown


def _image_check(*, path: Path, file_type: FileType) -> FileFacts:
    from PIL import Image, ImageFile

    limit = settings.ATTACHMENT_MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit  # Pillow warns past it and refuses past twice it
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.format != _PILLOW_FORMATS[file_type]:
                    raise AttachmentRefused("This image is not what its first bytes say.")
                width, height = image.size
                if width * height > limit:
                    raise AttachmentRefused("This image has too many pixels.")
                image.verify()  # the structure: chunks, checksums
            with Image.open(path) as image:
                # Decoding is what finds a truncated or corrupt image. A JPEG decodes at 1/8
                # scale: every byte of its scan is still read, at a fraction of the cost.
                image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                image.load()
    except AttachmentRefused:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise AttachmentRefused("This image has too many pixels.") from None
    except Exception:
        # Pillow raises many kinds (OSError, SyntaxError, ValueError, struct.error...).
        raise AttachmentRefused("This image is damaged or cannot be read.") from None
    return FileFacts(width=width, height=height)


def _pdf_pages(*, path: Path) -> int:
    from pypdf import PdfReader

    try:
        with path.open("rb") as stream:
            reader = PdfReader(stream, strict=False)
            if reader.is_encrypted:
                raise AttachmentRefused("This PDF is encrypted.")
            pages = len(reader.pages)
    except AttachmentRefused:
        raise
    except Exception:
        raise AttachmentRefused("This PDF is damaged or cannot be read.") from None
    if pages < 1:
        raise AttachmentRefused("This PDF has no pages.")
    return pages


def _wav_duration(*, path: Path) -> float | None:
    """Seconds of audio from the RIFF chunks (`fmt ` gives bytes per second, `data` the size)."""
    byte_rate = data_size = None
    with path.open("rb") as stream:
        stream.seek(12)
        while (header := stream.read(8)) and len(header) == 8:
            chunk_id, size = struct.unpack("<4sI", header)
            if chunk_id == b"fmt ":
                fmt = stream.read(min(size, 16))
                if len(fmt) >= 12:
                    byte_rate = struct.unpack("<I", fmt[8:12])[0]
                stream.seek(size - len(fmt) + (size & 1), 1)
            elif chunk_id == b"data":
                data_size = size
                break
            else:
                stream.seek(size + (size & 1), 1)
    if not byte_rate or data_size is None:
        raise AttachmentRefused("This WAV file is damaged or cannot be read.")
    return round(data_size / byte_rate, 3)


_UNSAFE_NAME_CHARS = re.compile(r'[<>:"|?*]')


def filename_sanitise(raw: str, *, file_type: FileType) -> str:
    """A name safe to show and to put in a header: no folders, no control characters, a
    bounded length, and an extension of the sniffed type (kept when the given one fits)."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = _UNSAFE_NAME_CHARS.sub("_", name).strip(" .")
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    stem = stem.strip(" .")[:NAME_MAX_CHARS].rstrip(" .")
    if not stem:
        raise AttachmentRefused("This file has no usable name.")
    extension = extension.lower()
    if extension not in file_type.extensions:
        extension = file_type.extensions[0]
    return f"{stem}.{extension}"
