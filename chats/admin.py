"""Chats, their messages and token usage for operators: what happened in a chat, read-only.

The tree is changed only through the chats services (one lock, one event, `tree_version`), so
nothing here adds, edits or deletes: Django's forms and its delete collector know none of that,
and the collector would load a long chat's every message into memory. A chat's page shows how
many messages it has, its latest few, and a link to all of them in the message list, which
pages; it never lists a long chat inline.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin
from django.contrib.admin import ActionLocation
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from chats.models import Chat, Message, TokenUsage

# How many of a chat's latest messages its page shows; the rest are a link away.
RECENT_MESSAGES_SHOWN = 20
EXCERPT_LENGTH = 120


class _ReadOnlyAdmin[T: Chat | Message | TokenUsage](admin.ModelAdmin[T]):
    """Operators look; the services write."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(
        self, request: HttpRequest, action_location: ActionLocation = ActionLocation.CHANGE_LIST
    ) -> dict[str, Any]:
        return {}


class ChatModelFilter(admin.SimpleListFilter):
    """The model a chat's next message defaults to (`Chat.settings["model"]`)."""

    title = "model"
    parameter_name = "model"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        models = (
            Chat.objects.exclude(settings__model=None)
            .values_list("settings__model", flat=True)
            .distinct()
            .order_by("settings__model")
        )
        return [(str(model), str(model)) for model in models]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() is None:
            return queryset
        return queryset.filter(settings__model=self.value())


def _messages_url(chat_id: uuid.UUID) -> str:
    query = urlencode({"chat__id__exact": str(chat_id)})
    return f"{reverse('admin:chats_message_changelist')}?{query}"


@admin.register(Chat)
class ChatAdmin(_ReadOnlyAdmin[Chat]):
    list_display = ["display_title", "user", "chat_model", "updated_at", "tree_version"]
    list_filter = ["updated_at", "created_at", ChatModelFilter]
    search_fields = ["title", "user__email", "user__name", "=id"]
    list_select_related = ["user"]
    ordering = ["-updated_at"]
    show_full_result_count = False
    readonly_fields = (
        "id",
        "user",
        "title",
        "settings",
        "tree_version",
        "root_message_index",
        "parent_chat",
        "forked_from_message",
        "fork_depth",
        "created_at",
        "updated_at",
        "chat_messages",
    )
    fields = readonly_fields

    @admin.display(description="title", ordering="title")
    def display_title(self, chat: Chat) -> str:
        return chat.display_title

    @admin.display(description="model")
    def chat_model(self, chat: Chat) -> str:
        return str(chat.settings.get("model", ""))

    @admin.display(description="messages")
    def chat_messages(self, chat: Chat) -> SafeString:
        """How many messages the chat has, its latest few, and a link to all of them."""
        count = Message.objects.filter(chat_id=chat.id).count()
        recent = list(
            Message.objects.filter(chat_id=chat.id)
            .order_by("-created_at", "-id")
            .only("id", "role", "status", "model_id", "created_at", "parts")[:RECENT_MESSAGES_SHOWN]
        )
        rows = format_html_join(
            "",
            '<tr class="chat-message"><td><a href="{}">{}</a></td><td>{}</td><td>{}</td>'
            "<td>{}</td><td>{}</td></tr>",
            (
                (
                    reverse("admin:chats_message_change", args=[message.id]),
                    f"{message.created_at:%Y-%m-%d %H:%M:%S}",
                    message.role,
                    message.status,
                    message.model_id,
                    _excerpt(message.text),
                )
                for message in recent
            ),
        )
        return format_html(
            '<p><a href="{}">All {} messages of this chat</a> (newest first; the latest {} '
            "below)</p><table><thead><tr><th>created</th><th>role</th><th>status</th>"
            "<th>model</th><th>text</th></tr></thead><tbody>{}</tbody></table>",
            _messages_url(chat.id),
            count,
            min(count, RECENT_MESSAGES_SHOWN),
            rows,
        )


def _excerpt(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= EXCERPT_LENGTH else line[: EXCERPT_LENGTH - 1] + "…"


@admin.register(Message)
class MessageAdmin(_ReadOnlyAdmin[Message]):
    list_display = ["created_at", "chat", "role", "status", "model_id", "excerpt"]
    list_filter = ["status", "role", "model_id", "created_at"]
    search_fields = ["chat__title", "chat__user__email", "chat__user__name", "=chat__id", "=id"]
    list_select_related = ["chat"]
    ordering = ["-created_at", "-id"]
    # A chat may hold 100k messages: no second count of the whole table on every page.
    show_full_result_count = False
    readonly_fields = (
        "id",
        "chat",
        "branch",
        "seq",
        "parent",
        "role",
        "status",
        "model_id",
        "error",
        "text",
        "parts",
        "usage",
        "selected_child_index",
        "stream_seq",
        "heartbeat_at",
        "generator",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields

    @admin.display(description="text")
    def excerpt(self, message: Message) -> str:
        return _excerpt(message.text)


@admin.register(TokenUsage)
class TokenUsageAdmin(_ReadOnlyAdmin[TokenUsage]):
    list_display = [
        "created_at",
        "user",
        "model_id",
        "provider",
        "input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost_usd",
        "chat_link",
    ]
    list_filter = ["model_id", "provider", "created_at"]
    search_fields = ["user__email", "user__name", "=chat_id", "=message_id"]
    list_select_related = ["user"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    readonly_fields = (
        "user",
        "chat_link",
        "message_link",
        "model_id",
        "provider",
        "input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cached_input_tokens",
        "cost_usd",
        "created_at",
    )
    fields = readonly_fields

    @admin.display(description="chat")
    def chat_link(self, usage: TokenUsage) -> SafeString | str:
        return _change_link("chats_chat", usage.chat_id)

    @admin.display(description="message")
    def message_link(self, usage: TokenUsage) -> SafeString | str:
        return _change_link("chats_message", usage.message_id)


def _change_link(model: str, object_id: uuid.UUID | None) -> SafeString | str:
    """A link to a row's admin page, by id: usage rows keep ids, not foreign keys."""
    if object_id is None:
        return ""
    url = reverse(f"admin:{model}_change", args=[object_id])
    return format_html('<a href="{}">{}</a>', url, object_id)
