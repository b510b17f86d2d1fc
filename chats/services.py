"""Writes on chats: send, retry, stop, create, rename, settings (merged), delete (tombstone),
the guest move."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone

from archive.selectors import PinnedMemory
from archive.services import chat_pins_stage
from chats.attachment_services import attachments_prune_after_commit
from chats.errors import (
    ChatNotFound,
    SendChatGone,
    SendParentGone,
    SendWhileStreaming,
    SettingsInvalid,
)
from chats.message_files import message_files_link
from chats.models import Branch, Chat, ChatDeletion, Message, TokenUsage
from chats.structure import chat_structure_load
from chats.tree_services import (
    chat_lock,
    chats_touch_unlocked,
    first_branch_path,
    message_append,
)
from chats.version_services import route_select_locked
from realtime.events import (
    CHANNEL,
    NOTIFY_SQL,
    NOTIFY_SQL_POSITIONAL,
    event_payload,
    publish,
)
from tools.registry import TOOL_GROUPS
from vero.lib.db import TransactionNow, instances_insert, instances_insert_sql

TITLE_FALLBACK_LENGTH = 60
TITLE_MAX_LENGTH = 80
# How long generation waits for a title after the first answer (pages poll for it meanwhile).
TITLE_TIMEOUT_SECONDS = 30
# What a model that ignored "the title only, no quotes" tends to send: a label, quotes around
# the title, Markdown (headings, emphasis, code, lists, quotes).
_TITLE_LABEL = re.compile(r"^\W*title\s*:", re.IGNORECASE)
_TITLE_QUOTES = "\"'`“”\u2018\u2019«»„"
_TITLE_MARKDOWN = re.compile(r"^(#|>|[-*+] |\d+[.)] )|\*\*|__|`|\[.*\]\(")


def title_fallback(text: str) -> str:
    """Return the first line of `text`, cut at 60 characters on a word boundary if possible."""
    line = " ".join(text.split())
    if len(line) <= TITLE_FALLBACK_LENGTH:
        return line
    cut = line[:TITLE_FALLBACK_LENGTH].rsplit(" ", 1)[0] or line[:TITLE_FALLBACK_LENGTH]
    return cut.rstrip(",.;:") + "…"


def title_clean(raw: str) -> str | None:
    """Return a generated title fit to show, or None when the model ignored the instruction.

    A title is one line of at most 80 characters, without a "Title:" label, surrounding
    quotes or Markdown; a final full stop is dropped. Anything else keeps the fallback.
    """
    text = raw.strip()
    if not text or "\n" in text or "\r" in text:
        return None
    title = " ".join(text.split()).rstrip(".").rstrip()
    if (
        not title
        or len(title) > TITLE_MAX_LENGTH
        or _TITLE_LABEL.match(title)
        or title[0] in _TITLE_QUOTES
        or title[-1] in _TITLE_QUOTES
        or _TITLE_MARKDOWN.search(title)
    ):
        return None
    return title


def chat_rename(*, chat: Chat, title: str) -> Chat:
    title = " ".join(title.split())[:200]
    with transaction.atomic():
        chat.title = title
        chat.save(update_fields=["title", "updated_at"])  # stamped by the database (0006)
        publish(user_id=chat.user_id, kind="chat.updated", chat_id=chat.id)
    return chat


# The settings a page may change by themselves (a send changes the model and reasoning effort).
SETTINGS_CHANGEABLE = frozenset({"tools"})


def _settings_checked(patch: Any) -> dict[str, Any]:
    """`patch` if it is a change the chat's settings can take, else SettingsInvalid saying why."""
    if not isinstance(patch, dict):
        raise SettingsInvalid("Chat settings are changed with a JSON object.")
    if not patch:
        raise SettingsInvalid("Say which chat setting to change.")
    unknown = sorted(set(patch) - SETTINGS_CHANGEABLE)
    if unknown:
        raise SettingsInvalid(
            f"Unknown chat setting {unknown[0]!r}: only {', '.join(sorted(SETTINGS_CHANGEABLE))} "
            "can be changed here."
        )
    tools = patch["tools"]
    if not isinstance(tools, list) or not all(isinstance(group, str) for group in tools):
        raise SettingsInvalid("tools must be a list of tool groups.")
    strangers = [group for group in tools if group not in TOOL_GROUPS]
    if strangers:
        raise SettingsInvalid(
            f"Unknown tool group {strangers[0]!r}: the groups are {', '.join(TOOL_GROUPS)}."
        )
    # In the registry's order, once each: the same choice is always stored the same way.
    return {"tools": [group for group in TOOL_GROUPS if group in tools]}


def chat_settings_update(*, chat_id: uuid.UUID, user_id: uuid.UUID, patch: Any) -> dict[str, Any]:
    """Merge `patch` into the chat's settings and return them as they are now.

    The merge happens in SQL (`settings = settings || patch`), never by writing the whole
    object read earlier: two tabs changing different settings at once both win. A patch that
    is not a known change raises SettingsInvalid, a chat that is not the user's ChatNotFound;
    either way nothing changed.
    """
    checked = _settings_checked(patch)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE chats_chat SET settings = settings || %s::jsonb "
                "WHERE id = %s AND user_id = %s RETURNING settings",
                [orjson.dumps(checked).decode(), chat_id, user_id],
            )
            row = cursor.fetchone()
        if row is None:
            raise ChatNotFound()
        publish(user_id=user_id, kind="chat.updated", chat_id=chat_id)
    return _settings_read(row[0])


def chat_delete(*, chat: Chat) -> None:
    """Delete a chat and its whole tree with set-based statements, leaving a tombstone."""
    with transaction.atomic():
        chat_lock(chat_id=chat.id)
        with connection.cursor() as cursor:
            # Set-based deletes: Django's collector would load every message into Python.
            # The FK constraints are deferred, so the order only has to be right at commit.
            cursor.execute(
                "UPDATE chats_chat SET forked_from_message_id = NULL, parent_chat_id = NULL "
                "WHERE parent_chat_id = %s",
                [chat.id],
            )
            cursor.execute(
                "DELETE FROM chats_messageattachment WHERE message_id IN "
                "(SELECT id FROM chats_message WHERE chat_id = %s)",
                [chat.id],
            )
            cursor.execute("DELETE FROM chats_message WHERE chat_id = %s", [chat.id])
            cursor.execute("DELETE FROM chats_branch WHERE chat_id = %s", [chat.id])
            cursor.execute("DELETE FROM chats_chat WHERE id = %s", [chat.id])
        ChatDeletion.objects.create(chat_id=chat.id, user_id=chat.user_id)
        publish(user_id=chat.user_id, kind="chat.deleted", chat_id=chat.id)
        attachments_prune_after_commit(owner_id=chat.user_id)


def chats_move_to_account(*, guest_id: uuid.UUID, account_id: uuid.UUID) -> None:
    """Guest upgrade: the guest's chats, tombstones and usage become the account's."""
    moved = list(Chat.objects.filter(user_id=guest_id).values_list("id", flat=True))
    Chat.objects.filter(user_id=guest_id).update(user_id=account_id, updated_at=TransactionNow())
    # The account's other devices have synced before the move: the moved chats' messages
    # must look new to them, or their caches would get only what changes from now on.
    Message.objects.filter(chat_id__in=moved).update(updated_at=TransactionNow())
    ChatDeletion.objects.filter(user_id=guest_id).update(user_id=account_id)
    TokenUsage.objects.filter(user_id=guest_id).update(user_id=account_id)
    for chat_id in moved:
        publish(user_id=account_id, kind="chat.created", chat_id=chat_id)


@dataclass(frozen=True)
class Turn:
    chat: Chat
    question: Message
    answer: Message
    chat_created: bool
    # The turn does not simply follow what the sender's page showed (another tab changed the
    # chat, or the question starts a new branch): the page must show the chat again.
    reshow: bool = False
    # The chat's pinned memory, when the send read it (a new chat's staged pins); None: unread.
    pinned: PinnedMemory | None = None


# What a send needs to know of the parent, read after the chat's lock was taken (in its own
# statement): where it is, whether it is still being answered, whether its branch goes on
# after it (seq may have gaps) and how many branches fork at it. No row: not in the chat.
_PARENT_STATE_SQL = """
SELECT p.branch_id, p.seq, p.status,
       EXISTS (SELECT 1 FROM chats_message s WHERE s.branch_id = p.branch_id AND s.seq > p.seq),
       (SELECT count(*) FROM chats_branch f WHERE f.fork_message_id = p.id)
FROM chats_message p
WHERE p.id = %(parent)s AND p.chat_id = %(chat)s
"""

# The rest of a send after its two messages are inserted, in one statement: the parent now
# shows the new question, the chat remembers the model (merged into its settings: another
# tab's change to another setting stays) and has a new tree version, and the event is queued.
_SEND_FINISH_SQL = f"""
WITH parent AS (
    UPDATE chats_message SET selected_child_index = %(index)s
    WHERE id = %(parent)s AND selected_child_index IS DISTINCT FROM %(index)s
), chat AS (
    UPDATE chats_chat
    SET settings = settings || %(settings)s::jsonb, updated_at = now(),
        tree_version = tree_version + 1
    WHERE id = %(chat)s
    RETURNING tree_version, updated_at, settings
)
SELECT (SELECT tree_version FROM chat), (SELECT updated_at FROM chat),
       (SELECT settings FROM chat), {NOTIFY_SQL}
"""  # noqa: S608  (NOTIFY_SQL is a constant)


@dataclass(frozen=True)
class _ParentState:
    branch_id: int
    seq: int
    status: str
    has_successor: bool
    forks: int


def _parent_state(*, chat: Chat, parent_id: uuid.UUID) -> _ParentState:
    """Read the parent under the chat's lock (SendParentGone when it is gone)."""
    with connection.cursor() as cursor:
        cursor.execute(_PARENT_STATE_SQL, {"parent": parent_id, "chat": chat.id})
        row = cursor.fetchone()
    if row is None:
        raise SendParentGone()
    return _ParentState(*row)


def message_send(
    *,
    user_id: uuid.UUID,
    chat: Chat | None,
    text: str,
    model_id: str,
    parent_id: uuid.UUID | None = None,
    reasoning_effort: str | None = None,
    seen_version: int | None = None,
    pin_entry_ids: Sequence[uuid.UUID] = (),
    tools: list[str] | None = None,
    files: Sequence[dict[str, Any]] = (),
) -> Turn:
    """Save the user's message and a `streaming` answer placeholder in one transaction.

    A new chat is created when `chat` is None (titled from the text until a better title is
    generated): one statement writes the chat, its root branch, both messages and the event.
    Otherwise the parent defaults to the end of the chat's shown route. A send from a page
    that shows the chat as it is (`seen_version` is the chat's `tree_version`) under the last
    message of a branch is five statements whatever the chat's length: the lock, the parent's
    state, one insert of both messages, and one statement for the parent's selection, the
    chat and the event. Any other send (a stale page, a parent inside a branch) takes the
    general path, which also selects the whole route to the new turn, so it is shown.

    The chat's settings are merged with what the send changes (the model, the reasoning
    effort), never overwritten: another tab's change to another setting meanwhile stays.
    `tools` (the groups a new chat allows, as its composer staged them) is taken for a new chat
    only; an existing chat's tools change through `chat_settings_update`.

    `files`: the question's file parts, checked (`chats.message_files.attachments_check`);
    their `MessageAttachment` rows and `first_sent_at` take one more statement.
    """
    parts = [{"type": "text", "text": text}, *files]
    with transaction.atomic():
        turn = _message_send_locked(
            user_id=user_id, chat=chat, text=text, model_id=model_id, parts=parts,
            parent_id=parent_id, reasoning_effort=reasoning_effort, seen_version=seen_version,
            pin_entry_ids=pin_entry_ids, tools=tools,
        )  # fmt: skip
        if files:
            message_files_link(message_ids=[turn.question.id])
    return turn


def _message_send_locked(
    *,
    user_id: uuid.UUID,
    chat: Chat | None,
    text: str,
    model_id: str,
    parts: list[dict[str, Any]],
    parent_id: uuid.UUID | None,
    reasoning_effort: str | None,
    seen_version: int | None,
    pin_entry_ids: Sequence[uuid.UUID],
    tools: list[str] | None,
) -> Turn:
    """The send's writes, inside its transaction (`message_send`)."""
    changed = _settings_sent(model_id=model_id, reasoning_effort=reasoning_effort)
    staged = {} if tools is None or chat is not None else _settings_checked({"tools": tools})
    if chat is None:
        turn = _send_new_chat(
            user_id=user_id, title=title_fallback(text), settings={**changed, **staged},
            parts=parts, model_id=model_id,
        )  # fmt: skip
        # The pins staged on the new chat's page; their statement also reads the memory.
        pinned = chat_pins_stage(
            user_id=user_id, chat_id=turn.chat.id, entry_ids=pin_entry_ids,
            limit=django_settings.PINNED_MEMORY_CHAR_LIMIT,
        )  # fmt: skip
        return dataclasses.replace(turn, pinned=pinned)
    parent_id, current = _send_parent(chat=chat, parent_id=parent_id, seen_version=seen_version)
    if parent_id is None:  # an empty chat (its messages were deleted): start it again
        return _send_appending(
            chat=chat, user_id=user_id, parent_id=None, parts=parts, model_id=model_id,
            settings=changed,
        )  # fmt: skip
    state = _parent_state(chat=chat, parent_id=parent_id)
    if state.status == Message.Status.STREAMING:
        raise SendWhileStreaming()
    if state.has_successor or not current:
        return _send_appending(
            chat=chat, user_id=user_id, parent_id=parent_id, parts=parts, model_id=model_id,
            settings=changed,
        )  # fmt: skip
    return _send_continuing(
        chat=chat, user_id=user_id, parent_id=parent_id, state=state, parts=parts,
        model_id=model_id, settings=changed,
    )  # fmt: skip


def _send_parent(
    *, chat: Chat, parent_id: uuid.UUID | None, seen_version: int | None
) -> tuple[uuid.UUID | None, bool]:
    """Take the chat's lock; the message to answer (by default the shown route's end) and
    whether the sender's page showed the chat as it is."""
    locked = chat_lock(chat_id=chat.id)
    if locked is None:
        raise SendChatGone()
    chat.root_message_index = locked.root_message_index
    if parent_id is not None:
        return parent_id, seen_version == locked.tree_version
    leaf = chat_structure_load(chat=chat).route().leaf
    # The shown route's end is shown, whatever the page's version.
    return (uuid.UUID(leaf.id), True) if leaf is not None else (None, True)


def _send_continuing(
    *,
    chat: Chat,
    user_id: uuid.UUID,
    parent_id: uuid.UUID,
    state: _ParentState,
    parts: list[dict[str, Any]],
    model_id: str,
    settings: dict[str, Any],
) -> Turn:
    """The common send: both messages continue the parent's branch, in two statements.
    `settings`: what the send changes in the chat's settings (merged)."""
    now = timezone.now()
    question, answer = _turn_messages(
        chat=chat, branch_id=state.branch_id, seq=state.seq + 1, parent_id=parent_id,
        parts=parts, model_id=model_id, now=now,
    )  # fmt: skip
    instances_insert([question, answer])
    with connection.cursor() as cursor:
        cursor.execute(
            _SEND_FINISH_SQL,
            {
                # The new question is the parent's newest child: after every fork.
                "index": state.forks,
                "parent": parent_id,
                "settings": orjson.dumps(settings).decode(),
                "chat": chat.id,
                "channel": CHANNEL,
                "payload": event_payload(
                    user_id=user_id, kind="message.created", chat_id=chat.id,
                    message_id=answer.id,
                ),
            },
        )  # fmt: skip
        chat.tree_version, chat.updated_at, merged, _ = cursor.fetchone()
    chat.settings = _settings_read(merged)
    return Turn(chat=chat, question=question, answer=answer, chat_created=False)


def _turn_messages(
    *,
    chat: Chat,
    branch_id: int,
    seq: int,
    parent_id: uuid.UUID | None,
    parts: list[dict[str, Any]],
    model_id: str,
    now: datetime,
) -> tuple[Message, Message]:
    """A send's question at `seq` of the branch and its `streaming` answer after it, unsaved."""
    question = Message(
        id=uuid.uuid4(), chat=chat, branch_id=branch_id, seq=seq, parent_id=parent_id,
        role=Message.Role.USER, parts=parts, selected_child_index=0,
    )  # fmt: skip
    answer = Message(
        id=uuid.uuid4(), chat=chat, branch_id=branch_id, seq=seq + 1, parent=question,
        role=Message.Role.ASSISTANT, parts=[], model_id=model_id,
        status=Message.Status.STREAMING, heartbeat_at=now,
    )  # fmt: skip
    return question, answer


def _send_new_chat(
    *,
    user_id: uuid.UUID,
    title: str,
    settings: dict[str, Any],
    parts: list[dict[str, Any]],
    model_id: str,
) -> Turn:
    """A new chat with its first question and answer placeholder, in one statement.

    The chat, its root branch (whose serial key the messages take from the branch's insert),
    the two messages and the `chat.created` event: nothing is read, nothing written twice.
    """
    now = timezone.now()
    chat = Chat(id=uuid.uuid4(), user_id=user_id, title=title, settings=settings)
    chat.root_message_index = 0  # the chat's only first message
    branch = Branch(chat=chat, path=first_branch_path())
    # The branch's key is not known yet: the messages' insert takes it from the branch's.
    question, answer = _turn_messages(
        chat=chat, branch_id=0, seq=0, parent_id=None, parts=parts, model_id=model_id, now=now
    )
    chat_sql, chat_params = instances_insert_sql([chat])
    branch_sql, branch_params = instances_insert_sql([branch], expressions={"id": "DEFAULT"})
    messages_sql, messages_params = instances_insert_sql(
        [question, answer], expressions={"branch_id": "(SELECT id FROM branch)"}
    )
    payload = event_payload(
        user_id=user_id, kind="chat.created", chat_id=chat.id, message_id=answer.id
    )
    # Only the statements built from the models' metadata and placeholders go into the text.
    sql = (
        f"WITH chat AS ({chat_sql}), branch AS ({branch_sql} RETURNING id), "  # noqa: S608
        f"messages AS ({messages_sql}) SELECT id, {NOTIFY_SQL_POSITIONAL} FROM branch"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*chat_params, *branch_params, *messages_params, CHANNEL, payload])
        row = cursor.fetchone()
    branch.id = row[0]
    question.branch = answer.branch = branch
    return Turn(chat=chat, question=question, answer=answer, chat_created=True)


def _settings_read(value: Any) -> dict[str, Any]:
    """Settings as a raw cursor returns them (psycopg loads jsonb; text when it does not)."""
    loaded = orjson.loads(value) if isinstance(value, str | bytes) else value
    return loaded if isinstance(loaded, dict) else {}


def _settings_sent(*, model_id: str, reasoning_effort: str | None) -> dict[str, Any]:
    """The settings a send changes: the model (and reasoning effort) the chat remembers."""
    changed: dict[str, Any] = {"model": model_id}
    if reasoning_effort:
        changed["reasoning_effort"] = reasoning_effort
    return changed


def _send_appending(
    *,
    chat: Chat,
    user_id: uuid.UUID,
    parent_id: uuid.UUID | None,
    parts: list[dict[str, Any]],
    model_id: str,
    settings: dict[str, Any],
) -> Turn:
    """The general path, under the chat's lock, through `message_append`: a question that
    starts a new root (no parent), a new branch (under a message whose branch goes on), or
    answers a message a stale page showed. The whole route to the new turn is selected, so
    it is shown whatever another tab selected meanwhile."""
    parent = None if parent_id is None else Message(id=parent_id, chat_id=chat.id)
    question = message_append(chat=chat, parent=parent, role=Message.Role.USER, parts=parts)
    answer = message_append(
        chat=chat, parent=question, role=Message.Role.ASSISTANT, parts=[], model_id=model_id,
        status=Message.Status.STREAMING, parent_has_successor=False,
    )  # fmt: skip
    if parent is not None:
        route_select_locked(chat=chat, message=answer)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE chats_chat SET settings = settings || %s::jsonb, root_message_index = %s, "
            "updated_at = now(), tree_version = tree_version + 1 WHERE id = %s "
            "RETURNING tree_version, updated_at, settings",
            [orjson.dumps(settings).decode(), chat.root_message_index, chat.id],
        )
        chat.tree_version, chat.updated_at, merged = cursor.fetchone()
    chat.settings = _settings_read(merged)
    publish(
        user_id=user_id,
        kind="message.created",
        chat_id=chat.id,
        message_id=answer.id,
    )
    return Turn(chat=chat, question=question, answer=answer, chat_created=False, reshow=True)


RETRYABLE = (Message.Status.ERROR, Message.Status.STOPPED, Message.Status.INTERRUPTED)


def message_stop_orphan(*, message: Message) -> bool:
    """Mark an answer `stopped` when no process is generating it any more."""
    with transaction.atomic():
        stopped = Message.objects.filter(id=message.id, status=Message.Status.STREAMING).update(
            status=Message.Status.STOPPED, heartbeat_at=None
        )
        if stopped:
            chats_touch_unlocked(chat_ids=[message.chat_id])
            publish(
                user_id=message.chat.user_id,
                kind="message.updated",
                chat_id=message.chat_id,
                message_id=message.id,
            )
    return bool(stopped)
