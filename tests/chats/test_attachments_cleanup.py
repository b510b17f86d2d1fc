"""Removal: an attachment nothing refers to goes at once once sent, after a day unsent; a chat
delete removes its files; a guest's attachments follow them to their account."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from accounts.models import User
from accounts.services import guest_upgrade
from chats.attachment_services import attachments_prune
from chats.delete_services import message_delete_single, message_delete_turn
from chats.models import Attachment, Message, MessageAttachment
from chats.services import Turn, chat_delete, message_send
from tests.chats.attachment_support import png_bytes, stored_files, upload
from tests.helpers import client_for_guest


@pytest.fixture(autouse=True)
def media_root(settings: SettingsWrapper, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


def _stored(client: Client, *, color: str = "red") -> Attachment:
    status, body = upload(client, png_bytes(color=color), f"{color}.png")
    assert status in (200, 201)
    return Attachment.objects.get(id=str(body["id"]))


def _sent_with(*, user: User, attachment: Attachment, turn: Turn | None = None) -> Turn:
    """A question that carries the attachment, as the send path records it."""
    turn = message_send(
        user_id=user.id, chat=turn.chat if turn else None, text="look", model_id="fake:model",
        parent_id=turn.answer.id if turn else None,
    )  # fmt: skip
    Message.objects.filter(id=turn.question.id).update(
        parts=[{"type": "text", "text": "look"}, {
            "type": "file", "attachment_id": str(attachment.id), "name": attachment.name,
            "kind": attachment.kind, "content_type": attachment.content_type,
            "size": attachment.size,
        }],
    )  # fmt: skip
    Message.objects.filter(id=turn.answer.id).update(status=Message.Status.COMPLETE)
    MessageAttachment.objects.create(message_id=turn.question.id, attachment=attachment)
    Attachment.objects.filter(id=attachment.id, first_sent_at__isnull=True).update(
        first_sent_at=timezone.now()
    )
    return turn


def test_an_unsent_upload_stays_for_a_day_then_goes(
    settings: SettingsWrapper, alice_client: Client, media_root: Path
) -> None:
    settings.ATTACHMENT_UNSENT_HOURS = 24
    attachment = _stored(alice_client)

    with_its_file = stored_files(media_root)
    kept = attachments_prune(now=timezone.now() + timedelta(hours=23))
    assert (kept, Attachment.objects.filter(id=attachment.id).exists()) == (0, True)

    pruned = attachments_prune(now=timezone.now() + timedelta(hours=25))
    assert pruned == 1
    assert not Attachment.objects.filter(id=attachment.id).exists()
    assert len(with_its_file) == 1


def test_an_unsent_uploads_file_is_deleted_once_the_prune_commits(
    alice_client: Client, media_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    _stored(alice_client)

    with django_capture_on_commit_callbacks(execute=True):
        attachments_prune(now=timezone.now() + timedelta(days=2))

    assert stored_files(media_root) == []


def test_a_sent_attachment_goes_at_once_when_its_message_is_deleted(
    alice: User, alice_client: Client, media_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    first = _sent_with(user=alice, attachment=_stored(alice_client, color="blue"))
    attachment = _stored(alice_client)
    second = _sent_with(user=alice, attachment=attachment, turn=first)

    with django_capture_on_commit_callbacks(execute=True):
        message_delete_turn(chat=second.chat, message=second.question)

    assert not Attachment.objects.filter(id=attachment.id).exists()
    assert MessageAttachment.objects.filter(attachment_id=attachment.id).count() == 0
    assert len(stored_files(media_root)) == 1  # the first turn's image stays


def test_an_attachment_another_message_still_refers_to_stays(
    alice: User, alice_client: Client, media_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    attachment = _stored(alice_client)
    first = _sent_with(user=alice, attachment=attachment)
    second = _sent_with(user=alice, attachment=attachment, turn=first)

    with django_capture_on_commit_callbacks(execute=True):
        message_delete_single(chat=second.chat, message=second.question)

    assert Attachment.objects.filter(id=attachment.id).exists()
    assert len(stored_files(media_root)) == 1


def test_deleting_a_chat_removes_the_files_it_sent(
    alice: User, alice_client: Client, media_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    turn = _sent_with(user=alice, attachment=_stored(alice_client))
    unsent = _stored(alice_client, color="green")  # still in a composer, maybe

    with django_capture_on_commit_callbacks(execute=True):
        chat_delete(chat=turn.chat)

    assert list(Attachment.objects.filter(owner=alice)) == [unsent]
    assert len(stored_files(media_root)) == 1


def test_bobs_sent_files_stay_when_alice_deletes_a_chat(
    alice: User, bob: User, alice_client: Client, bob_client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    bob_turn = _sent_with(user=bob, attachment=_stored(bob_client))
    alice_turn = _sent_with(user=alice, attachment=_stored(alice_client))
    MessageAttachment.objects.filter(message_id=bob_turn.question.id).delete()  # orphaned, sent

    with django_capture_on_commit_callbacks(execute=True):
        chat_delete(chat=alice_turn.chat)

    assert Attachment.objects.filter(owner=bob).count() == 1


def test_a_guests_attachments_move_to_the_account_sharing_what_it_has(
    guest: User, alice: User, alice_client: Client, media_root: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    guest_client = client_for_guest(guest)
    shared_by_alice = _stored(alice_client)
    shared_by_guest = _stored(guest_client)
    only_the_guests = _stored(guest_client, color="yellow")
    turn = _sent_with(user=guest, attachment=shared_by_guest)
    assert len(stored_files(media_root)) == 3

    with django_capture_on_commit_callbacks(execute=True):
        assert guest_upgrade(guest_id=guest.id, account=alice)

    owned = set(Attachment.objects.filter(owner=alice).values_list("id", flat=True))
    assert owned == {shared_by_alice.id, only_the_guests.id}
    assert list(
        MessageAttachment.objects.filter(message_id=turn.question.id).values_list(
            "attachment_id", flat=True
        )
    ) == [shared_by_alice.id]
    question = Message.objects.get(id=turn.question.id)
    assert question.parts[1]["attachment_id"] == str(shared_by_alice.id)
    assert question.parts[0] == {"type": "text", "text": "look"}
    assert Attachment.objects.get(id=shared_by_alice.id).first_sent_at is not None
    assert len(stored_files(media_root)) == 2  # the guest's copy of the shared bytes went
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM chats_attachment WHERE owner_id = %s", [guest.id])
        assert cursor.fetchone()[0] == 0
