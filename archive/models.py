"""The archive: notes a user and the model both keep, linked to each other and pinned to chats.

An entry is named by a slug unique per user (a taken slug gets `-1`, `-2`, …), so the model
and the user can refer to it in words. Its search vector is a generated column (title weighted
A, body B, English stemming): PostgreSQL keeps it right on every write, whatever writes, and
a GIN index on (user, search) serves `websearch_to_tsquery` within one user's entries.
docs/tools.md ("The archive") is the contract; `archive.selectors` reads, `archive.services`
writes.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import F, Q

SEARCH_CONFIG = "english"
SLUG_MAX_LENGTH = 120
TITLE_MAX_LENGTH = 200
TAG_MAX_LENGTH = 50


class ArchiveEntry(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="archive_entries"
    )
    slug = models.SlugField(max_length=SLUG_MAX_LENGTH)
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    tags = ArrayField(models.CharField(max_length=TAG_MAX_LENGTH), default=list, blank=True)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    search = models.GeneratedField(
        expression=SearchVector("title", weight="A", config=SEARCH_CONFIG)
        + SearchVector("body", weight="B", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "slug"], name="archive_entry_user_slug_unique")
        ]
        indexes = [
            # With the user's id in the GIN (btree_gin): a query reads that user's matches
            # only, not every user's entries that contain the word.
            GinIndex(fields=["user", "search"], name="archive_entry_search_idx"),
            GinIndex(fields=["user", "tags"], name="archive_entry_tags_idx"),
            # Browsing pages on (created_at, id), newest first: a key no edit changes.
            models.Index(
                fields=["user", "-created_at", "-id"], name="archive_entry_user_created_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.slug})"


class ArchiveLink(models.Model):
    """A named relation from one entry to another; `bidirectional` shows it from both sides."""

    source = models.ForeignKey(ArchiveEntry, on_delete=models.CASCADE, related_name="links_out")
    target = models.ForeignKey(ArchiveEntry, on_delete=models.CASCADE, related_name="links_in")
    kind = models.CharField(max_length=50, default="related")
    bidirectional = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "target", "kind"], name="archive_link_unique"
            ),
            models.CheckConstraint(
                condition=~Q(source=F("target")), name="archive_link_not_to_itself"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_id} -{self.kind}-> {self.target_id}"


class ChatPin(models.Model):
    """An entry pinned to a chat: its body goes into the chat's system prompt, oldest first.

    The chat is named by string: the archive sits below `chats` and never imports it. A chat's
    delete takes its pins with it in the database.
    """

    # Also ON DELETE CASCADE in the database (migration 0001): chats deletes a chat with
    # set-based SQL, not Django's collector, and knows nothing of pins.
    chat = models.ForeignKey("chats.Chat", on_delete=models.CASCADE, related_name="pins")
    entry = models.ForeignKey(ArchiveEntry, on_delete=models.CASCADE, related_name="pins")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chat", "entry"], name="archive_chat_pin_unique")
        ]
        indexes = [models.Index(fields=["chat", "created_at", "id"], name="archive_pin_chat_idx")]

    def __str__(self) -> str:
        return f"{self.entry_id} pinned to {self.chat_id}"
