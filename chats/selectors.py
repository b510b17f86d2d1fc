"""Reads of chats: ownership checks, the sidebar's list, a chat's shown messages, its whole
tree (for tests and tools), its forks and lineage."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from accounts.selectors import actor_guest_remember, actor_known
from chats.models import Chat, Message
from chats.route_selectors import WindowSlice, route_window
from chats.services import TITLE_TIMEOUT_SECONDS, title_fallback
from chats.structure import ChatStructure, Route, chat_structure_load, node_of
from chats.tree import ChatTree, chat_tree_build
from chats.versions import message_versions
from vero.errors import VeroError
from vero.http import VeroRequest


def chat_get_for_user(*, user: User | None, chat_id: uuid.UUID) -> Chat:
    """Return the user's chat or raise 404 (also for other users' chats and guests with none)."""
    if user is None:
        raise Http404("No such chat.")
    chat = Chat.objects.filter(id=chat_id, user=user).first()
    if chat is None:
        raise Http404("No such chat.")
    return chat


def chat_get_for_request(request: VeroRequest, *, chat_id: uuid.UUID) -> Chat:
    """Return the actor's chat or raise 404, like `chat_get_for_user(actor_get(request))`.

    For a guest it is one query: their row comes with the chat (and is kept for the request).
    """
    known = actor_known(request)
    if known is not None or request.guest is None:
        return chat_get_for_user(user=known, chat_id=chat_id)
    chat = (
        Chat.objects.select_related("user")
        .filter(id=chat_id, user_id=request.guest.id, user__is_guest=True)
        .first()
    )
    if chat is None:
        raise Http404("No such chat.")
    actor_guest_remember(request, chat.user)
    return chat


def message_get_for_chat(*, chat: Chat, message_id: uuid.UUID) -> Message:
    message = Message.objects.filter(id=message_id, chat=chat).first()
    if message is None:
        raise Http404("No such message.")
    return message


@dataclass(frozen=True)
class ChatListPage:
    groups: list[tuple[str, list[Chat]]]
    next_cursor: str | None
    # The group the previous page ended in: a first group with this label continues it, and
    # shows no heading of its own.
    continues_label: str | None = None


def _group_label(updated: datetime, today: datetime) -> str:
    day = timezone.localtime(updated).date()
    if day == today.date():
        return "Today"
    if day == (today - timedelta(days=1)).date():
        return "Yesterday"
    if day > (today - timedelta(days=7)).date():
        return "Previous 7 days"
    if day.year == today.year:
        return updated.strftime("%B")
    return str(day.year)


def _cursor_parse(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not cursor:
        return None
    try:
        stamp, chat_id = cursor.split("_", 1)
        return datetime.fromisoformat(stamp), uuid.UUID(chat_id)
    except ValueError:
        return None


def chat_list_page(*, user: User | None, cursor: str | None = None, size: int = 50) -> ChatListPage:
    """Return one window of the user's chats, newest first, grouped by age.

    Keyset pagination on (updated_at, id): the cost of a page does not grow with the number
    of chats (the index chat_user_updated_idx serves it).
    """
    if user is None:
        return ChatListPage(groups=[], next_cursor=None)
    chats = Chat.objects.filter(user=user).only("id", "title", "updated_at")
    after = _cursor_parse(cursor)
    if after is not None:
        stamp, chat_id = after
        chats = chats.filter(updated_at__lt=stamp) | chats.filter(updated_at=stamp, id__lt=chat_id)
    window = list(chats.order_by("-updated_at", "-id")[: size + 1])
    next_cursor = None
    if len(window) > size:
        window = window[:size]
        last = window[-1]
        next_cursor = f"{last.updated_at.isoformat()}_{last.id}"
    today = timezone.localtime()
    groups: list[tuple[str, list[Chat]]] = []
    for chat in window:
        label = _group_label(chat.updated_at, today)
        if not groups or groups[-1][0] != label:
            groups.append((label, []))
        groups[-1][1].append(chat)
    continues = _group_label(after[0], today) if after is not None else None
    return ChatListPage(groups=groups, next_cursor=next_cursor, continues_label=continues)


@dataclass(frozen=True)
class ShownMessage:
    message: Message
    sibling_position: int  # 1-based, for the "2/3" version switcher
    sibling_count: int
    previous_id: uuid.UUID | None  # the sibling one to the left, if any
    next_id: uuid.UUID | None


@dataclass(frozen=True)
class ChatWindow:
    """What a chat page shows: a window of the active route, and where the route goes on."""

    structure: ChatStructure
    route: Route
    shown: list[ShownMessage]
    has_before: bool  # older messages of the route above the window
    has_after: bool  # newer ones below it (a window read from a changed message down)

    @property
    def leaf_id(self) -> uuid.UUID | None:
        leaf = self.route.leaf
        return uuid.UUID(leaf.id) if leaf is not None else None

    @property
    def generating(self) -> bool:
        return any(item.message.status == Message.Status.STREAMING for item in self.shown)


def chat_window(
    *,
    chat: Chat,
    limit: int | None = None,
    before: Message | None = None,
    after: Message | None = None,
    from_top: bool = False,
) -> ChatWindow | None:
    """Read the chat's structure (one query) and a window of its route (one query, usually).

    By default the latest `limit` messages (CHAT_WINDOW_MESSAGES); `before`: the ones above
    that message, `after`: the ones below it (read from a structure of what is below it only;
    the caller knows it is on the shown route: the page that asked was current), `from_top`:
    the route's first messages.
    None when that message is not on the route any more (the chat changed meanwhile).
    """
    limit = limit or settings.CHAT_WINDOW_MESSAGES
    if after is not None:
        # Only what is below `after` is read: the caller knows it is on the shown route.
        structure = chat_structure_load(chat=chat, below=after)
        route = structure.route(start=node_of(after))
        window = route_window(route=route, limit=limit, after=(after.branch_id, after.seq))
        window = WindowSlice(window.messages, window.segment_of, True, window.has_after)
    else:
        structure = chat_structure_load(chat=chat)
        route = structure.route()
        if from_top and route.first is not None:
            first = (route.first.branch_id, route.first.seq)
            window = route_window(route=route, limit=limit, start=first)
        elif before is not None:
            if route.segment_index(branch_id=before.branch_id, seq=before.seq) is None:
                return None
            window = route_window(route=route, limit=limit, before=(before.branch_id, before.seq))
        else:
            window = route_window(route=route, limit=limit)
    shown = [_shown(route, window, message) for message in window.messages]
    return ChatWindow(
        structure=structure,
        route=route,
        shown=shown,
        has_before=window.has_before,
        has_after=window.has_after,
    )


def _shown(route: Route, window: WindowSlice, message: Message) -> ShownMessage:
    """A message of the window with its place among its versions (only a run's first message
    has versions: the rest of a run has no choice)."""
    segment = window.segment_of[message.id]
    entry = str(message.id) == route.segments[segment].first.id
    choice = route.choices[segment] if entry else None
    if choice is None:
        return ShownMessage(message, 1, 1, None, None)
    index, options = choice.index, choice.options
    return ShownMessage(
        message=message,
        sibling_position=index + 1,
        sibling_count=len(options),
        previous_id=uuid.UUID(options[index - 1].id) if index > 0 else None,
        next_id=uuid.UUID(options[index + 1].id) if index + 1 < len(options) else None,
    )


def chat_is_generating(*, chat: Chat) -> bool:
    return Message.objects.filter(chat=chat, status=Message.Status.STREAMING).exists()


# The title task starts after the first answer and gives up after TITLE_TIMEOUT_SECONDS; a
# few seconds more cover its database visits.
TITLE_AWAIT_SLACK_SECONDS = 5


def chat_title_awaited(*, chat: Chat, messages: Sequence[Message] | None = None) -> bool:
    """Whether a generated title may still replace the chat's fallback title.

    True for a new chat (one question, one answer) still titled from its question while the
    answer is generating, or finished too recently for the title task to have given up.
    Pages poll the title while this holds. `messages`: the chat's messages when the caller
    has them all already (a page that loaded the tree); otherwise they are read.
    """
    # No ORDER BY: three rows at most, whatever the chat's size, tell a one-turn chat apart.
    first = (
        list(messages)
        if messages is not None
        else list(
            Message.objects.filter(chat=chat).only(
                "role", "parts", "status", "updated_at", "parent_id"
            )[:3]
        )
    )
    if len(first) != 2:
        return False
    question, answer = sorted(first, key=lambda message: message.parent_id is not None)
    if answer.parent_id != question.id or chat.title != title_fallback(question.text):
        return False
    if answer.status == Message.Status.STREAMING:
        return True
    window = timedelta(seconds=TITLE_TIMEOUT_SECONDS + TITLE_AWAIT_SLACK_SECONDS)
    return answer.status == Message.Status.COMPLETE and answer.updated_at > timezone.now() - window


def chat_tree_load(*, chat: Chat) -> ChatTree:
    """Load a chat's tree in one query (structure columns only), built without recursion."""
    rows = Message.objects.filter(chat_id=chat.id).values_list(
        "id", "parent_id", "created_at", "selected_child_index", "role", "status"
    )
    return chat_tree_build(rows, root_index=chat.root_message_index)


def chat_forks(*, chat: Chat) -> list[Chat]:
    """Return the chats forked from `chat`, oldest first."""
    return list(Chat.objects.filter(parent_chat_id=chat.id).order_by("created_at", "id"))


def chat_lineage(*, chat: Chat) -> list[Chat]:
    """Return the chats `chat` descends from by forks, the original first, in one query."""
    ancestors = Chat.objects.raw(
        """
        WITH RECURSIVE lineage(id, parent_chat_id, level) AS (
            SELECT id, parent_chat_id, 0 FROM chats_chat WHERE id = %s
            UNION ALL
            SELECT c.id, c.parent_chat_id, l.level + 1
            FROM chats_chat c JOIN lineage l ON c.id = l.parent_chat_id
            WHERE l.level < 1000
        )
        SELECT c.* FROM chats_chat c JOIN lineage l ON c.id = l.id
        WHERE l.level > 0 AND c.user_id = %s
        ORDER BY l.level DESC
        """,
        [chat.id, chat.user_id],
    )
    return list(ancestors)


class NotVersionsOfOneMessage(VeroError):
    code = "not_versions_of_one_message"
    default_message = "Only versions of the same message can be compared."


@dataclass(frozen=True)
class VersionPair:
    """Two versions of one message, and all of its versions in order (for their numbers)."""

    left: Message
    right: Message
    versions: list[uuid.UUID]

    @property
    def kind(self) -> str:
        roles = {self.left.role, self.right.role}
        return (
            "question" if roles == {"user"} else "answer" if roles == {"assistant"} else "message"
        )


def version_pair_get(*, chat: Chat, left_id: uuid.UUID, right_id: uuid.UUID) -> VersionPair:
    """Two messages of the chat with the same parent (or both without one): 404 for an id
    not in the chat, `NotVersionsOfOneMessage` for two that are not versions of each other."""
    left = message_get_for_chat(chat=chat, message_id=left_id)
    right = message_get_for_chat(chat=chat, message_id=right_id)
    versions = message_versions(chat=chat, message=left)
    if right.parent_id != left.parent_id or not {left.id, right.id} <= set(versions):
        raise NotVersionsOfOneMessage()
    return VersionPair(left=left, right=right, versions=versions)
