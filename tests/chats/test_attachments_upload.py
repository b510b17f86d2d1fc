"""Uploads: the type comes from the bytes, damaged and oversized files are refused, quotas hold,
the same bytes are stored once, and nothing is stored for a refused file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from accounts.models import User
from chats.attachment_services import attachment_upload
from chats.models import Attachment
from models_registry.models import Tier
from tests.chats.attachment_support import (
    attachments_of,
    bomb_png_bytes,
    jpeg_bytes,
    pdf_bytes,
    png_bytes,
    stored_files,
    upload,
    wav_bytes,
)
from tests.helpers import client_for_guest
from tests.live_http import HttpSession
from tests.live_server import LiveServer, live_server_start


@pytest.fixture(autouse=True)
def media_root(settings: SettingsWrapper, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


def test_a_png_renamed_pdf_is_stored_as_a_png(
    alice: User, alice_client: Client, media_root: Path
) -> None:
    status, body = upload(alice_client, png_bytes(), "report.pdf")

    assert status == 201
    assert body["content_type"] == "image/png"
    assert body["kind"] == "image"
    assert body["name"] == "report.png"
    assert (body["width"], body["height"]) == (32, 24)
    attachment = Attachment.objects.get(id=str(body["id"]))
    assert (
        attachment.file.name
        == f"attachments/{alice.id}/{attachment.sha256[:2]}/{attachment.sha256}"
    )
    assert len(stored_files(media_root)) == 1


def test_a_pdf_counts_its_pages_and_a_wav_its_seconds(alice_client: Client) -> None:
    _, pdf = upload(alice_client, pdf_bytes(pages=3), "paper.pdf")
    _, wav = upload(alice_client, wav_bytes(seconds=0.5), "voice.wav")

    assert (pdf["kind"], pdf["content_type"], pdf["pages"]) == ("file", "application/pdf", 3)
    assert (wav["kind"], wav["content_type"], wav["duration_seconds"]) == (
        "audio",
        "audio/wav",
        0.5,
    )


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"<!doctype html><html><script>alert(1)</script></html>", "cat.png"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "logo.svg",
        ),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "logo.png"),
        (b"PK\x03\x04" + b"\x00" * 100, "archive.pdf"),
        (b"#!/bin/sh\nrm -rf /\n", "run.mp3"),
    ],
    ids=["html-named-png", "svg-with-script", "svg-named-png", "zip", "script"],
)
def test_a_file_of_a_type_not_accepted_is_refused_whatever_its_name(
    alice: User, alice_client: Client, media_root: Path, data: bytes, name: str
) -> None:
    status, body = upload(alice_client, data, name)

    assert status == 400
    assert "cannot be attached" in str(body["error"])
    assert attachments_of(alice) == []
    assert stored_files(media_root) == []


def test_a_truncated_jpeg_is_refused(alice: User, alice_client: Client, media_root: Path) -> None:
    whole = jpeg_bytes(size=(256, 256))

    status, body = upload(alice_client, whole[: len(whole) // 2], "half.jpg")

    assert status == 400
    assert "damaged" in str(body["error"])
    assert attachments_of(alice) == []
    assert stored_files(media_root) == []


def test_a_decompression_bomb_is_refused(
    alice: User, alice_client: Client, media_root: Path
) -> None:
    bomb = bomb_png_bytes()
    assert len(bomb) < 100_000

    status, body = upload(alice_client, bomb, "tiny.png")

    assert status == 400
    assert "too many pixels" in str(body["error"])
    assert attachments_of(alice) == []
    assert stored_files(media_root) == []


def test_a_file_over_the_size_limit_is_refused(
    settings: SettingsWrapper, alice: User, alice_client: Client, media_root: Path
) -> None:
    settings.ATTACHMENT_MAX_BYTES = 1000

    status, _ = upload(alice_client, pdf_bytes() + b"\n" * 1000, "big.pdf")

    assert status == 413
    assert attachments_of(alice) == [] and stored_files(media_root) == []


def test_a_name_with_folders_and_control_characters_is_cleaned(alice_client: Client) -> None:
    _, body = upload(
        alice_client, png_bytes(), "..%2F..%2Fetc%2Fev%00i%1Bl%0A" + "x" * 300 + ".exe"
    )

    assert body["name"] == "evil" + "x" * 116 + ".png"


def test_an_upload_without_a_name_is_refused(alice: User, alice_client: Client) -> None:
    status, body = upload(alice_client, png_bytes(), "")

    assert status == 400
    assert "name" in str(body["error"])
    assert attachments_of(alice) == []


def test_the_same_bytes_twice_are_stored_once(
    alice: User, alice_client: Client, media_root: Path
) -> None:
    first_status, first = upload(alice_client, png_bytes(), "a.png")
    second_status, second = upload(alice_client, png_bytes(), "b.png")

    assert (first_status, second_status) == (201, 200)
    assert first["id"] == second["id"]
    assert len(attachments_of(alice)) == 1
    assert len(stored_files(media_root)) == 1


def test_alice_and_bob_each_keep_their_own_copy(
    alice_client: Client, bob_client: Client, media_root: Path
) -> None:
    _, mine = upload(alice_client, png_bytes(), "a.png")
    _, theirs = upload(bob_client, png_bytes(), "a.png")

    assert mine["id"] != theirs["id"]
    assert len(stored_files(media_root)) == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_of_the_same_bytes_end_with_one_row(media_root: Path) -> None:
    alice = User.objects.create_user("alice@example.com", "pw-alice-123", name="Alice")
    data = jpeg_bytes(size=(512, 512))
    results: list[tuple[str, bool]] = []
    start = threading.Barrier(4)

    def one() -> None:
        import io

        from django.db import connection

        try:
            start.wait()
            attachment, created = attachment_upload(
                owner=alice, source=io.BytesIO(data), name="same.jpg"
            )
            results.append((str(attachment.id), created))
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({attachment_id for attachment_id, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert Attachment.objects.filter(owner=alice).count() == 1
    assert len(stored_files(media_root)) == 1


def test_a_guest_is_held_to_the_smallest_quota_and_gets_no_row_for_a_refused_file(
    db: None, settings: SettingsWrapper, media_root: Path
) -> None:
    settings.GUEST_STORAGE_QUOTA_BYTES = 1000
    client = Client()
    guests_before = User.objects.filter(is_guest=True).count()

    status, body = upload(client, pdf_bytes() + b"\n" * 1000, "big.pdf")

    assert status == 413
    assert "quota" in str(body["error"])
    assert User.objects.filter(is_guest=True).count() == guests_before
    assert stored_files(media_root) == []


def test_a_guest_row_is_created_when_the_file_is_stored(db: None) -> None:
    client = Client()

    status, body = upload(client, png_bytes(), "a.png")

    assert status == 201
    attachment = Attachment.objects.select_related("owner").get(id=str(body["id"]))
    assert attachment.owner.is_guest


def test_a_guest_over_quota_with_earlier_files_is_refused(
    settings: SettingsWrapper, guest: User, media_root: Path
) -> None:
    client = client_for_guest(guest)
    first = png_bytes()
    settings.GUEST_STORAGE_QUOTA_BYTES = len(first) + 10
    assert upload(client, first, "a.png")[0] == 201

    status, _ = upload(client, png_bytes(color="blue"), "b.png")

    assert status == 413
    assert len(attachments_of(guest)) == 1
    assert len(stored_files(media_root)) == 1


def test_a_tier_sets_its_own_quota(
    settings: SettingsWrapper, alice: User, alice_client: Client, media_root: Path
) -> None:
    settings.USER_STORAGE_QUOTA_BYTES = 10**9
    tier = Tier.objects.create(slug="tiny", name="Tiny", storage_quota_bytes=len(png_bytes()) + 10)
    User.objects.filter(id=alice.id).update(tier=tier)

    assert upload(alice_client, png_bytes(), "a.png")[0] == 201
    status, body = upload(alice_client, png_bytes(color="blue"), "b.png")

    assert status == 413
    assert "quota" in str(body["error"])
    assert len(attachments_of(alice)) == 1


def test_an_account_without_a_tier_quota_gets_the_user_quota(
    settings: SettingsWrapper, alice: User, alice_client: Client
) -> None:
    settings.USER_STORAGE_QUOTA_BYTES = 10

    status, _ = upload(alice_client, png_bytes(), "a.png")

    assert status == 413
    assert attachments_of(alice) == []


def test_the_s3_settings_select_the_s3_backend() -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "ATTACHMENT_S3_BUCKET": "vero-files",
        "ATTACHMENT_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "ATTACHMENT_S3_REGION": "eu-west-1",
        "ATTACHMENT_S3_ACCESS_KEY_ID": "id",
        "ATTACHMENT_S3_SECRET_ACCESS_KEY": "secret",
    }
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'vero.settings');"
        "django.setup(); from django.core.files.storage import default_storage as s;"
        "s.bucket_name;"
        "print(type(s._wrapped).__name__, s.bucket_name, s.endpoint_url, s.region_name,"
        " s.default_acl, s.querystring_auth, s.file_overwrite)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )

    assert result.stdout.split() == [
        "S3Storage",
        "vero-files",
        "http://127.0.0.1:9",
        "eu-west-1",
        "private",
        "True",
        "True",
    ]


# Over real HTTP, through Daphne: the body of an oversized upload is never read


def _raw_request(url: str, head: bytes, body_chunks: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    """Send `head` (and then the chunks, while the server reads) and return what it answers."""
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the server refused and closed: what the test wants to see
        received = b""
        while data := sock.recv(65536):
            received += data
        return received


@pytest.fixture
def upload_server(transactional_db: None, tmp_path: Path) -> Iterator[LiveServer]:
    server = live_server_start(
        extra_env={"ATTACHMENT_MAX_BYTES": "200000", "MEDIA_ROOT": str(tmp_path / "media")}
    )
    try:
        yield server
    finally:
        server.stop()


def test_a_declared_length_over_the_limit_is_refused_before_any_body_is_sent(
    upload_server: LiveServer, tmp_path: Path
) -> None:
    head = (
        b"POST /attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/octet-stream\r\nX-Filename: big.png\r\n"
        b"Content-Length: 26214400\r\n\r\n"
    )

    answer = _raw_request(upload_server.url, head)  # not one byte of the body is sent

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"at most" in answer
    assert Attachment.objects.count() == 0
    assert stored_files(tmp_path / "media") == []


def test_a_chunked_body_is_refused_once_it_passes_the_limit(
    upload_server: LiveServer, tmp_path: Path
) -> None:
    head = (
        b"POST /attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/octet-stream\r\nX-Filename: big.png\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (50_000, b"\0" * 50_000)

    answer = _raw_request(upload_server.url, head, [chunk] * 10)  # 500 kB, never ended

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert Attachment.objects.count() == 0
    assert stored_files(tmp_path / "media") == []


def test_an_upload_within_the_limit_is_stored_through_the_live_server(
    upload_server: LiveServer, tmp_path: Path
) -> None:
    visitor = HttpSession(upload_server.url)
    visitor.get("/")
    image = jpeg_bytes(size=(200, 150))

    page = visitor.post_raw(
        "/attachments", image, "application/octet-stream", {"X-Filename": "photo%20%C3%A9.jpg"}
    )

    assert page.status == 201, page.text
    attachment = Attachment.objects.get()
    assert (attachment.name, attachment.size, attachment.width) == ("photo é.jpg", len(image), 200)
    assert [path.read_bytes() for path in stored_files(tmp_path / "media")] == [image]
