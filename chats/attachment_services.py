"""Attachments stored and removed: the upload's checks, quotas, deduplication and cleanup.

An upload is copied to a temporary file while it is hashed (constant memory), sniffed and
checked (`chats.files`), then stored once per owner and content in Django's default storage.
Rows go in the database's transactions; files are deleted from storage only after the
transaction that deleted their rows commits, so a rollback never leaves a row without its file.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from chats.files import (
    SNIFF_BYTES,
    AttachmentRefused,
    AttachmentTooLarge,
    file_check,
    file_type_sniff,
    filename_sanitise,
)
from chats.models import Attachment, attachment_path

COPY_CHUNK_BYTES = 256 * 1024
PRUNE_EVERY_SECONDS = 3600


def _spool(source: IO[bytes], target: IO[bytes]) -> tuple[str, int, bytes]:
    """Copy `source` into `target`, hashing; return (sha256, size, first bytes)."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    while chunk := source.read(COPY_CHUNK_BYTES):
        size += len(chunk)
        if size > settings.ATTACHMENT_MAX_BYTES:
            raise AttachmentTooLarge(
                f"A file may be {settings.ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB at most."
            )
        if len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
        digest.update(chunk)
        target.write(chunk)
    target.flush()
    return digest.hexdigest(), size, head


def storage_quota_bytes(*, owner: User | None) -> int:
    """What `owner` may keep stored: guests the smallest quota, accounts their tier's."""
    if owner is None or owner.is_guest:
        return settings.GUEST_STORAGE_QUOTA_BYTES
    from models_registry.selectors import tier_for_user

    tier = tier_for_user(user=owner)
    if tier is not None and tier.storage_quota_bytes is not None:
        return int(tier.storage_quota_bytes)
    return settings.USER_STORAGE_QUOTA_BYTES


def _stored_bytes(*, owner_id: uuid.UUID) -> int:
    total = Attachment.objects.filter(owner_id=owner_id).aggregate(total=Sum("size"))["total"]
    return int(total or 0)


def attachment_upload(
    *,
    owner: User | None,
    source: IO[bytes],
    name: str,
    owner_ensure: Callable[[], User] | None = None,
) -> tuple[Attachment, bool]:
    """Check and store an upload; return (the attachment, whether it is new).

    `owner` None is a guest without a row yet: `owner_ensure` creates it once the file has
    passed every check, so a refused file creates nothing. The same bytes uploaded again by
    the same owner return the stored row.
    """
    with tempfile.NamedTemporaryFile(
        prefix="vero-upload-", dir=settings.FILE_UPLOAD_TEMP_DIR
    ) as spooled:
        sha256, size, head = _spool(source, spooled)
        if size == 0:
            raise AttachmentRefused("This file is empty.")
        file_type = file_type_sniff(head)
        if file_type is None:
            raise AttachmentRefused(
                "This type of file cannot be attached: images (JPEG, PNG, GIF, WebP), PDF "
                "and audio (WAV, MP3, OGG, WebM, M4A, FLAC) can."
            )
        clean_name = filename_sanitise(name, file_type=file_type)
        facts = file_check(path=Path(spooled.name), file_type=file_type)
        if owner is None:
            if size > storage_quota_bytes(owner=None):
                raise AttachmentTooLarge("This file is over your storage quota.")
            if owner_ensure is None:
                raise AttachmentRefused("Nobody to store this file for.")
            owner = owner_ensure()
        with transaction.atomic():
            # One upload at a time per owner: the quota and the duplicate check hold.
            User.objects.select_for_update().filter(id=owner.id).values_list("id").first()
            existing = Attachment.objects.filter(owner_id=owner.id, sha256=sha256).first()
            if existing is not None:
                return existing, False
            if _stored_bytes(owner_id=owner.id) + size > storage_quota_bytes(owner=owner):
                raise AttachmentTooLarge("This file is over your storage quota.")
            attachment = Attachment(
                owner_id=owner.id,
                sha256=sha256,
                kind=file_type.kind,
                content_type=file_type.content_type,
                size=size,
                name=clean_name,
                width=facts.width,
                height=facts.height,
                pages=facts.pages,
                duration_seconds=facts.duration_seconds,
            )
            path = attachment_path(attachment, clean_name)
            if default_storage.exists(path):
                default_storage.delete(path)  # left by a crash: the name is the content's
            spooled.seek(0)
            attachment.file.name = default_storage.save(path, File(spooled, name=path))
            try:
                with transaction.atomic():
                    attachment.save(force_insert=True)
            except IntegrityError:
                # Another process stored the same bytes for this owner meanwhile.
                default_storage.delete(attachment.file.name)
                return Attachment.objects.get(owner_id=owner.id, sha256=sha256), False
            except BaseException:
                default_storage.delete(attachment.file.name)
                raise
        return attachment, True


def attachment_get_for_user(*, user: User | None, attachment_id: uuid.UUID) -> Attachment:
    """The attachment, if `user` owns it; else Attachment.DoesNotExist (answered as 404)."""
    if user is None:
        raise Attachment.DoesNotExist
    return Attachment.objects.get(id=attachment_id, owner_id=user.id)


def _files_delete_after_commit(names: list[tuple[uuid.UUID, str, str]]) -> None:
    def delete() -> None:
        for owner_id, sha256, name in names:
            # Uploaded again since the prune: the new row owns the file now.
            if not Attachment.objects.filter(owner_id=owner_id, sha256=sha256).exists():
                default_storage.delete(name)

    if names:
        transaction.on_commit(delete)


_PRUNE_SQL = """
DELETE FROM chats_attachment a
WHERE NOT EXISTS (SELECT 1 FROM chats_messageattachment l WHERE l.attachment_id = a.id)
  AND (a.first_sent_at IS NOT NULL OR a.created_at < %(unsent_before)s)
  {owner_filter}
RETURNING a.owner_id, a.sha256, a.file
"""


def attachments_prune(*, now: datetime | None = None, owner_id: uuid.UUID | None = None) -> int:
    """Delete the attachments no message refers to: at once when they were sent, else after
    ATTACHMENT_UNSENT_HOURS. Only `owner_id`'s when given. Return how many."""
    now = now or timezone.now()
    unsent_before = now - timedelta(hours=settings.ATTACHMENT_UNSENT_HOURS)
    statement = _PRUNE_SQL.format(
        owner_filter="AND a.owner_id = %(owner)s" if owner_id is not None else ""
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, {"unsent_before": unsent_before, "owner": owner_id})
        gone = [(row[0], row[1], row[2]) for row in cursor.fetchall()]
        _files_delete_after_commit(gone)
    return len(gone)


def attachments_prune_after_commit(*, owner_id: uuid.UUID) -> None:
    """Once the current transaction (a delete of messages) commits, prune `owner_id`'s
    attachments that were sent and that nothing refers to any more."""
    transaction.on_commit(lambda: attachments_prune(owner_id=owner_id))


_last_pruned: float | None = None


def attachments_prune_if_due() -> int:
    """Prune when this process has not for PRUNE_EVERY_SECONDS (the reaper calls it each round)."""
    global _last_pruned
    now = time.monotonic()
    if _last_pruned is not None and now - _last_pruned < PRUNE_EVERY_SECONDS:
        return 0
    _last_pruned = now
    return attachments_prune()


_MOVE_SQL = """
WITH dup AS (
    SELECT g.id AS old_id, a.id AS new_id, g.first_sent_at
    FROM chats_attachment g
    JOIN chats_attachment a ON a.sha256 = g.sha256 AND a.owner_id = %(account)s
    WHERE g.owner_id = %(guest)s
), touched AS (
    SELECT DISTINCT l.message_id
    FROM chats_messageattachment l JOIN dup ON l.attachment_id = dup.old_id
), relinked AS (
    UPDATE chats_messageattachment l SET attachment_id = dup.new_id
    FROM dup WHERE l.attachment_id = dup.old_id
    RETURNING 1
), rewritten AS (
    -- The parts name the attachment too (for rendering and the model): the same rewrite.
    UPDATE chats_message m SET parts = (
        SELECT coalesce(jsonb_agg(
            CASE WHEN part ? 'attachment_id' THEN jsonb_set(part, '{attachment_id}', to_jsonb(
                coalesce((SELECT d.new_id::text FROM dup d
                          WHERE d.old_id::text = part->>'attachment_id'),
                         part->>'attachment_id')))
            ELSE part END ORDER BY position), '[]'::jsonb)
        FROM jsonb_array_elements(m.parts) WITH ORDINALITY AS e(part, position)
    )
    WHERE m.id IN (SELECT message_id FROM touched) AND jsonb_typeof(m.parts) = 'array'
    RETURNING 1
), sent AS (
    UPDATE chats_attachment a SET first_sent_at = coalesce(a.first_sent_at, dup.first_sent_at)
    FROM dup WHERE a.id = dup.new_id
    RETURNING 1
), moved AS (
    UPDATE chats_attachment SET owner_id = %(account)s
    WHERE owner_id = %(guest)s AND id NOT IN (SELECT old_id FROM dup)
    RETURNING 1
), gone AS (
    DELETE FROM chats_attachment WHERE id IN (SELECT old_id FROM dup)
    RETURNING owner_id, sha256, file
)
-- Every statement above runs to completion whether or not this reads it (PostgreSQL).
SELECT owner_id, sha256, file FROM gone
"""


def attachments_move_to_account(*, guest_id: uuid.UUID, account_id: uuid.UUID) -> None:
    """Guest upgrade: the guest's attachments become the account's. Where the account has the
    same bytes already, the guest's messages are pointed at the account's row and the guest's
    copy goes (its file once the move commits). Moved files keep their storage name."""
    with connection.cursor() as cursor:
        cursor.execute(_MOVE_SQL, {"guest": guest_id, "account": account_id})
        gone = [(row[0], row[1], row[2]) for row in cursor.fetchall()]
    _files_delete_after_commit(gone)
