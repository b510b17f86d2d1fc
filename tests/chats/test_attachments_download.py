"""Downloads: the owner gets the bytes with safe headers; anyone else gets a 404."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from accounts.models import User
from tests.chats.attachment_support import pdf_bytes, png_bytes, upload, wav_bytes


@pytest.fixture(autouse=True)
def media_root(settings: SettingsWrapper, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


def test_alice_downloads_her_image_with_safe_headers(alice: User, alice_client: Client) -> None:
    image = png_bytes()
    _, body = upload(alice_client, image, "holiday photo.png")

    response = alice_client.get(str(body["url"]))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == image  # type: ignore[attr-defined]
    assert response["Content-Type"] == "image/png"
    assert response["Content-Length"] == str(len(image))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox"
    assert response["Content-Disposition"] == 'inline; filename="holiday photo.png"'


@pytest.mark.parametrize(
    ("data", "name", "content_type"),
    [(pdf_bytes(), "paper.pdf", "application/pdf"), (wav_bytes(), "voice.wav", "audio/wav")],
)
def test_documents_and_audio_are_shown_inline_with_their_sniffed_type(
    alice_client: Client, data: bytes, name: str, content_type: str
) -> None:
    _, body = upload(alice_client, data, name)

    response = alice_client.get(str(body["url"]))

    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'inline; filename="{name}"'


def test_a_name_outside_ascii_is_sent_encoded(alice_client: Client) -> None:
    _, body = upload(alice_client, png_bytes(), "%E6%97%85%E8%A1%8C.png")

    response = alice_client.get(str(body["url"]))

    assert response["Content-Disposition"] == "inline; filename*=utf-8''%E6%97%85%E8%A1%8C.png"


def test_bob_gets_a_404_for_alices_file(alice_client: Client, bob_client: Client) -> None:
    _, body = upload(alice_client, png_bytes(), "a.png")

    assert bob_client.get(str(body["url"])).status_code == 404


def test_a_visitor_without_a_row_gets_a_404(alice_client: Client) -> None:
    _, body = upload(alice_client, png_bytes(), "a.png")

    assert Client().get(str(body["url"])).status_code == 404


def test_an_unknown_id_is_a_404(alice_client: Client) -> None:
    response = alice_client.get("/attachments/00000000-0000-0000-0000-000000000000")

    assert response.status_code == 404


def test_an_upload_is_post_only_and_a_download_get_only(alice_client: Client) -> None:
    _, body = upload(alice_client, png_bytes(), "a.png")

    assert alice_client.get("/attachments").status_code == 405
    assert alice_client.post(str(body["url"])).status_code == 405


def test_an_upload_needs_the_csrf_token(alice: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post(
        "/attachments", data=png_bytes(), content_type="application/octet-stream",
        headers={"X-Filename": "a.png"},
    )  # fmt: skip

    assert response.status_code == 403
