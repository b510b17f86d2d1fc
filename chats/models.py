"""Conversations: a chat is a tree of messages whose branches are named by ltree paths.

A branch is a chain of messages, each the parent of the next. Appending under a branch's last
message continues the branch; an alternative (edit, regenerate) under a message that already
has a child starts a new branch forked at that message. Nothing that exists ever moves.
docs/architecture.md describes the data model; docs/chats.md the measurements behind it.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

import django_ltree.lookups  # noqa: F401  (registers the ltree lookups on PathField)
from django.conf import settings
from django.db import models
from django_ltree.fields import PathField

from models_registry.calls import parts_text
from vero.lib.db import TransactionNow
from vero.process import process_id


class Chat(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chats"
    )
    title = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # model, reasoning_effort, allowed tools: what new messages in this chat default to.
    settings = models.JSONField(default=dict, blank=True)
    # Which root branch is shown (a position among the chat's first messages, oldest first).
    root_message_index = models.IntegerField(null=True, blank=True)
    parent_chat = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks"
    )
    forked_from_message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fork_depth = models.PositiveIntegerField(default=0)
    # Bumped by every write that changes the tree or what it shows (a send, a version, a
    # selection, a delete): a page posts the version it shows, so a request from a tab that
    # has not seen another tab's change is told apart and its result made visible.
    tree_version = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["user", "-updated_at", "id"], name="chat_user_updated_idx")]

    def __str__(self) -> str:
        return self.title or "New chat"

    @property
    def display_title(self) -> str:
        return self.title or "New chat"


class Branch(models.Model):
    """A chain of messages; its path is the parent branch's path plus one base-36 label."""

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="branches")
    parent_branch = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    # The message of the parent branch after which this branch starts (null for root branches).
    fork_message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    path = PathField()
    created_at = models.DateTimeField(auto_now_add=True)

    LABEL_WIDTH: ClassVar[int] = 4  # 36**4 = 1,679,616 siblings per parent branch

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chat", "path"], name="branch_chat_path_unique"),
        ]

    def __str__(self) -> str:
        return str(self.path)


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        STREAMING = "streaming"
        COMPLETE = "complete"
        STOPPED = "stopped"
        ERROR = "error"
        INTERRUPTED = "interrupted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages")
    # No index of its own: message_branch_seq_unique (branch, seq) serves every lookup by
    # branch, and reads a branch backwards in order, which a branch-only index made the
    # planner skip (it sorted whole branches).
    branch = models.ForeignKey(
        Branch, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    seq = models.PositiveIntegerField()
    # Never changes when alternatives are added; null for the chat's first messages.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    # [{"type": "text"|"reasoning", "text": …}, {"type": "tool-call", "id", "name", "arguments"},
    #  {"type": "tool-result", "id", "result"}, {"type": "file", "attachment_id", …}]
    parts = models.JSONField(default=list, blank=True)
    model_id = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    error = models.TextField(blank=True)
    usage = models.JSONField(null=True, blank=True)
    # Position among this message's children (creation order) of the one shown.
    selected_child_index = models.IntegerField(null=True, blank=True)
    # Sanitized HTML of a finished message's text, rendered once.
    html = models.TextField(blank=True)
    # Number of stream deltas included in `parts` (the replay/resume cursor).
    stream_seq = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The server process that wrote the message: for a `streaming` answer, the one generating
    # it (the answer is generated by the request that saved it). Null for rows written before
    # processes were recorded, and for copies made in SQL.
    generator = models.UUIDField(null=True, blank=True, default=process_id, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # `seq` may have gaps: a delete moves nothing.
            models.UniqueConstraint(fields=["branch", "seq"], name="message_branch_seq_unique"),
        ]
        indexes = [
            models.Index(
                fields=["heartbeat_at"],
                name="message_streaming_idx",
                condition=models.Q(status="streaming"),
            ),
            # The cache sync reads what changed inside a chat since a client's last sync.
            models.Index(fields=["chat", "updated_at"], name="message_chat_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.id}"

    @property
    def text(self) -> str:
        return parts_text(self.parts)

    @property
    def reasoning(self) -> str:
        return "".join(
            part.get("text", "") for part in self.parts if part.get("type") == "reasoning"
        )


def attachment_path(instance: Attachment, filename: str) -> str:
    """Where an attachment's bytes live: by owner and content, never by the name given."""
    return f"attachments/{instance.owner_id}/{instance.sha256[:2]}/{instance.sha256}"


class Attachment(models.Model):
    """A file a user uploaded, stored once per owner and content (docs/attachments.md).

    Never at a public URL: `chats.attachment_views` streams it to its owner. A message refers
    to it from its parts (`{"type": "file", "attachment_id", ...}`) and through a
    `MessageAttachment` row; an attachment that no message refers to is removed a day after
    its upload (`ATTACHMENT_UNSENT_HOURS`), and at once when its last message is deleted
    (`first_sent_at` tells the two apart).
    """

    class Kind(models.TextChoices):
        IMAGE = "image"
        DOCUMENT = "file"  # the registry's modality name for documents
        AUDIO = "audio"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments"
    )
    sha256 = models.CharField(max_length=64)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    content_type = models.CharField(max_length=100)  # sniffed from the bytes, never the name
    size = models.BigIntegerField()
    name = models.CharField(max_length=255)  # sanitised; for display and downloads only
    file = models.FileField(upload_to=attachment_path, max_length=200)
    # What the context budget counts: pixels for images, pages for documents, seconds of audio.
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    pages = models.PositiveIntegerField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when a message first refers to it: once sent, it goes as soon as no message refers to
    # it any more; never sent, it waits ATTACHMENT_UNSENT_HOURS (it may be in a composer).
    first_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "sha256"], name="attachment_owner_sha_unique")
        ]
        indexes = [models.Index(fields=["created_at"], name="attachment_created_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.content_type}, {self.size} bytes)"


class MessageAttachment(models.Model):
    """A message refers to an attachment (its parts say how; this row makes cleanup a query)."""

    # Set-based message deletes (chats.delete_services, chat_delete) delete these rows too.
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    attachment = models.ForeignKey(
        Attachment, on_delete=models.CASCADE, related_name="message_links"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "attachment"], name="message_attachment_unique"
            )
        ]
        indexes = [models.Index(fields=["attachment"], name="message_attachment_att_idx")]

    def __str__(self) -> str:
        return f"{self.message_id} -> {self.attachment_id}"


class ChatDeletion(models.Model):
    """A tombstone, so other devices' caches learn a chat is gone; pruned after retention."""

    chat_id = models.UUIDField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_deletions"
    )
    # The database's clock, like every stamp the sync compares (docs/realtime.md).
    deleted_at = models.DateTimeField(db_default=TransactionNow())

    class Meta:
        indexes = [models.Index(fields=["user", "deleted_at"], name="chatdeletion_user_idx")]

    def __str__(self) -> str:
        return f"chat {self.chat_id} deleted {self.deleted_at:%Y-%m-%d}"


class MessageDeletion(models.Model):
    """A tombstone per deleted message of a chat that lives on, so a cache drops it too.

    A deleted chat leaves one `ChatDeletion` instead; both are pruned after the same retention.
    """

    chat_id = models.UUIDField()
    message_id = models.UUIDField()
    deleted_at = models.DateTimeField(db_default=TransactionNow())

    class Meta:
        indexes = [
            models.Index(fields=["chat_id", "deleted_at"], name="messagedeletion_chat_idx"),
            models.Index(fields=["deleted_at"], name="messagedeletion_prune_idx"),
        ]

    def __str__(self) -> str:
        return f"message {self.message_id} deleted {self.deleted_at:%Y-%m-%d}"


class TokenUsage(models.Model):
    """One row per generation, for analytics and cost."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="token_usage"
    )
    chat_id = models.UUIDField(null=True, blank=True)
    message_id = models.UUIDField(null=True, blank=True)
    model_id = models.CharField(max_length=200)
    provider = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="tokenusage_user_idx")]

    def __str__(self) -> str:
        return f"{self.model_id}: {self.input_tokens} in, {self.output_tokens} out"
