"""The model's input, read from the database: the system prompt, the route to an answer, and
what a chat's title is generated from.

Read by the request that starts an answer (so the generation task calls the provider at
once), and by the generation loop for a chat's first title. Earlier answers are replayed with
their tool calls and results (`chats.parts.parts_messages`), as the loop itself sends them.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import orjson
from django.conf import settings
from django.db import connection

from accounts.models import User
from archive.selectors import PinnedMemory, pinned_memory
from chats.message_files import KIND_NAMES
from chats.models import Chat, Message
from chats.parts import parts_messages
from chats.structure import ROUTE_BRANCHES_CTE
from models_registry.calls import ENGINE_LITELLM, CallTarget, parts_text


def system_prompt(*, user: User, chat: Chat, pinned: PinnedMemory | None = None) -> str | None:
    """The system message: the user's preferences, then the chat's pinned memory; or None.

    `pinned` is the chat's pinned memory when the caller has it already (the send that created
    the chat read it as it pinned the staged entries); otherwise it is read here, in one
    statement (`archive.selectors.pinned_memory`).
    """
    lines = []
    if user.name:
        lines.append(f"The user's name is {user.name}.")
    if user.occupation:
        lines.append(f"The user's occupation: {user.occupation}.")
    if user.custom_instructions:
        lines.append(f"The user's instructions for you:\n{user.custom_instructions}")
    memory = pinned.text if pinned is not None else pinned_memory(chat_id=chat.id)
    preferences = "\n".join(lines)
    return "\n\n".join(section for section in (preferences, memory) if section) or None


# The route to an answer, newest first: the answer's branch up to it, then each ancestor
# branch up to the message the route forked at (ltree over branches). Each branch is read
# backwards on the (branch, seq) index and stops at `limit` rows, so the cost depends on the
# limit and the route's few branches, never on the chat's length.
_ROUTE_SQL = (
    ROUTE_BRANCHES_CTE  # noqa: S608  (constant text: no input goes into it)
    + """
SELECT m.role, m.parts::text
FROM route r
CROSS JOIN LATERAL (
    SELECT m.role, m.parts, m.seq
    FROM chats_message m
    WHERE m.branch_id = r.id AND m.seq <= r.last_seq
    ORDER BY m.seq DESC
    LIMIT %(limit)s
) m
ORDER BY r.depth DESC, m.seq DESC
LIMIT %(limit)s
"""
)

# A file's place in the model's input until the generation task reads it.
FILE_PLACEHOLDER = "vero-file"

# Characters per token, roughly, to keep the history within the model's context window.
_CHARS_PER_TOKEN = 3
_DEFAULT_CONTEXT_TOKENS = 128_000


def _route_backwards(*, answer_id: uuid.UUID, chat_id: uuid.UUID) -> list[tuple[str, str]]:
    """(role, parts as JSON text) of the messages before `answer_id` on its route, newest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            _ROUTE_SQL,
            {
                "message": answer_id,
                "chat": chat_id,
                "before": 1,  # the answer itself is not its own context
                "limit": settings.CONTEXT_MAX_MESSAGES,
            },
        )  # fmt: skip
        return cursor.fetchall()


# What the context budget counts for a file, in tokens (docs/attachments.md, "Sending"). An
# image: OpenAI's rule for detailed images (fit in 2048 x 2048, shortest side down to 768, then
# 85 + 170 per 512-pixel tile). A PDF: an estimate per page (text and the page's image, as
# providers that read PDFs charge about 1,500 tokens a page). Audio: per second (32, Gemini's
# published rate; OpenAI's audio models are in the same range).
_IMAGE_BASE_TOKENS = 85
_IMAGE_TILE_TOKENS = 170
_IMAGE_UNKNOWN_TOKENS = 765  # a 1024 x 1024 image: when the size is not known
PDF_PAGE_TOKENS = 1_500
AUDIO_SECOND_TOKENS = 32
_UNKNOWN_FILE_TOKENS = 1_500  # a document or audio whose length is not known: one page


def image_tokens(width: int, height: int) -> int:
    """OpenAI's count for a detailed image of `width` x `height` pixels."""
    if width <= 0 or height <= 0:
        return _IMAGE_UNKNOWN_TOKENS
    scale = min(1.0, 2048 / max(width, height))
    wide, high = width * scale, height * scale
    scale = min(1.0, 768 / min(wide, high))
    tiles = math.ceil(wide * scale / 512) * math.ceil(high * scale / 512)
    return _IMAGE_BASE_TOKENS + _IMAGE_TILE_TOKENS * tiles


def file_tokens(part: dict[str, Any]) -> int:
    """The tokens a file part (its placeholder) counts for in the context budget."""
    kind = part.get("kind")
    if kind == "image":
        return image_tokens(int(part.get("width") or 0), int(part.get("height") or 0))
    if kind == "file" and part.get("pages"):
        return PDF_PAGE_TOKENS * int(part["pages"])
    if kind == "audio" and part.get("duration_seconds"):
        return math.ceil(AUDIO_SECOND_TOKENS * float(part["duration_seconds"]))
    return _UNKNOWN_FILE_TOKENS


def _question_content(parts: list[dict[str, Any]], target: CallTarget) -> str | list[Any]:
    """A question as the provider reads it: its text, or with files its text and a placeholder
    per file (read and encoded by the generation task, off the request thread:
    `chats.attachment_encoding`). A file the model cannot read (an earlier turn's, sent to
    another model) becomes a line of text saying so."""
    text = parts_text(parts)
    files = [part for part in parts if part.get("type") == "file"]
    if not files:
        return text
    content: list[Any] = [{"type": "text", "text": text}] if text else []
    for part in files:
        if target.capabilities.accepts(part["kind"]):
            content.append({"type": FILE_PLACEHOLDER} | {key: part.get(key) for key in (
                "attachment_id", "name", "kind", "content_type", "width", "height", "pages",
                "duration_seconds")})  # fmt: skip
        else:
            unread = KIND_NAMES.get(part["kind"], part["kind"])
            content.append(
                {"type": "text", "text": f"[{part['name']}: this model cannot read {unread}]"}
            )
    return content


def _message_turn(
    role: str, parts: list[dict[str, Any]], *, with_state: bool, target: CallTarget
) -> list[Any]:
    """One stored message as the provider reads it: a question's text (and files), or an
    answer's steps."""
    if role == Message.Role.ASSISTANT:
        return parts_messages(parts, with_state=with_state)
    content = _question_content(parts, target)
    return [{"role": role, "content": content}] if content else []


def _turn_size(messages: list[dict[str, Any]]) -> int:
    """Characters, and a file as the characters of its tokens."""
    size = 0
    for message in messages:
        content = message.get("content") or ""
        if isinstance(content, str):
            size += len(content)
        else:
            for item in content:
                if item["type"] == FILE_PLACEHOLDER:
                    size += file_tokens(item) * _CHARS_PER_TOKEN
                else:
                    size += len(item.get("text") or "")
        for call in message.get("tool_calls") or ():
            size += len(call["function"]["arguments"])
    return size


def context_build(
    *,
    answer_id: uuid.UUID,
    chat_id: uuid.UUID,
    target: CallTarget,
    max_tokens: int,
    system: str | None,
) -> list[dict[str, Any]]:
    """Build the model's input: `system`, then the route to `answer_id`, each message once.

    One bounded query whatever the chat's length. The oldest messages are left out when the
    route exceeds CONTEXT_MAX_MESSAGES or the model's context window (with room kept for the
    answer). An earlier answer that called tools comes back as its steps (its calls and their
    results, docs/tools.md), whole or not at all: a tool message never goes without its call.
    """
    window = target.capabilities.context_window or _DEFAULT_CONTEXT_TOKENS
    budget = max(window - max_tokens, window // 2) * _CHARS_PER_TOKEN - len(system or "")
    with_state = target.engine == ENGINE_LITELLM  # the reasoning state is LiteLLM's to send
    history: list[dict[str, Any]] = []
    for role, parts in _route_backwards(answer_id=answer_id, chat_id=chat_id):  # newest first
        # Parsed from text: orjson decodes 500 rows in a third less than psycopg's jsonb.
        turn = _message_turn(role, orjson.loads(parts), with_state=with_state, target=target)
        if not turn:
            continue
        budget -= _turn_size(turn)
        if budget < 0 and history:
            break
        history.extend(reversed(turn))
    history.reverse()
    return ([{"role": "system", "content": system}] if system else []) + history


def chat_title_source(*, chat_id: uuid.UUID) -> tuple[str, str] | None:
    """The chat's current title and its first question, or None when either is gone."""
    chat = Chat.objects.filter(id=chat_id).values_list("title", flat=True).first()
    first = (
        Message.objects.filter(chat_id=chat_id, parent__isnull=True, role=Message.Role.USER)
        .order_by("created_at")
        .first()
    )
    if chat is None or first is None:
        return None
    return chat, first.text
