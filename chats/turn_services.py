"""The flows a user starts on a chat: send, edit, regenerate, retry, stop, switch and delete.

Each checks what it must (the model for this user, a free bucket, an idle chat), writes through
the tree services and starts the generation; a view, a management command or a test calls one
of them and shows what comes back, without a request. A refusal raised before admission spent
nothing. One that comes after admission (the tree refused, e.g. another tab deleted the
message) is returned beside the admission decision: the request spent from the bucket, and the
page's meters must say so.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings

from accounts.models import User
from archive.selectors import PinnedMemory
from chats.context_selectors import context_build, system_prompt
from chats.delete_services import (
    DeleteOutcome,
    message_delete_single,
    message_delete_subtree,
    message_delete_turn,
)
from chats.errors import ChatBusy, NotRetryable, TreeError
from chats.fork_services import chat_fork
from chats.live import generation_stop
from chats.message_files import attachments_check, file_parts_of, route_files_check
from chats.models import Chat, Message
from chats.relay import enabled as relay_enabled
from chats.relay import remote_stop
from chats.selectors import chat_is_generating
from chats.services import RETRYABLE, Turn, message_send, message_stop_orphan
from chats.version_services import (
    message_edit_assistant,
    message_edit_in_place,
    message_edit_user,
    message_regenerate,
    message_select,
)
from chats.worker import GenerationPlan, generation_start
from models_registry.calls import CallTarget
from models_registry.resolver import ResolutionError, resolve
from models_registry.selectors import tier_for_user
from ratelimit.services import Decision, request_admit
from tools.registry import tool_groups_allowed
from vero.errors import ErrorKind, VeroError


class RateLimitedError(VeroError):
    """The user's bucket is empty: the decision says when the next request is admitted."""

    code = "rate_limited"
    kind = ErrorKind.RATE_LIMITED

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.message)
        self.decision = decision


class UnknownDeleteScope(VeroError):
    code = "unknown_delete_scope"
    default_message = "Choose what to delete."


@dataclass(frozen=True)
class Admission:
    """How to call the model, and the bucket's decision that admitted the request."""

    target: CallTarget
    decision: Decision


@dataclass(frozen=True)
class SentTurn:
    turn: Turn
    decision: Decision


@dataclass(frozen=True)
class Answered:
    """An admitted flow's outcome: the new answer (for an edit: the fork, when it made one),
    or the refusal that came after admission."""

    decision: Decision | None
    answer: Message | None = None
    fork: Chat | None = None
    error: VeroError | None = None


# ---------------------------------------------------------------------------------------------
# Admission and the start of an answer


def _bucket(target: CallTarget) -> str:
    return "byok" if target.model_id.startswith("byok:") else "platform"


def _admit(*, user: User, target: CallTarget) -> Admission:
    decision = request_admit(user=user, bucket=_bucket(target))
    if not decision.allowed:
        raise RateLimitedError(decision)
    return Admission(target=target, decision=decision)


def model_admit(*, user: User, model_id: str) -> Admission:
    """Resolve the model for the user and take one request from their bucket (or raise why
    not: nothing was written)."""
    return _admit(user=user, target=resolve(user, model_id))


def _max_tokens(user: User, target: CallTarget) -> int:
    """The user's tier's cap on an answer (MAX_OUTPUT_TOKENS before any tier exists); a
    model's own lower maximum wins."""
    tier = tier_for_user(user=user)
    limit = tier.max_output_tokens if tier is not None else int(settings.MAX_OUTPUT_TOKENS)
    model_limit = target.capabilities.max_output_tokens
    return min(limit, model_limit) if model_limit else limit


def _title_target(user: User, fallback: CallTarget) -> CallTarget | None:
    if not settings.TITLE_MODEL:
        return fallback
    try:
        return resolve(user, settings.TITLE_MODEL)
    except ResolutionError:
        return fallback


def answer_start(
    *,
    user: User,
    chat: Chat,
    answer: Message,
    target: CallTarget,
    reasoning_effort: str | None = None,
    with_title: bool = False,
    pinned: PinnedMemory | None = None,
) -> None:
    """Start generating into a `streaming` placeholder that was just saved.

    The model's input is read here, on the caller's connection, so the generation task calls
    the provider at once. `pinned`: the chat's pinned memory, when the send already read it.
    """
    max_tokens = _max_tokens(user, target)
    messages = context_build(
        answer_id=answer.id, chat_id=chat.id, target=target, max_tokens=max_tokens,
        system=system_prompt(user=user, chat=chat, pinned=pinned),
    )  # fmt: skip
    generation_start(
        GenerationPlan(
            message_id=answer.id,
            chat_id=chat.id,
            user_id=user.id,
            target=target,
            max_tokens=max_tokens,
            messages=messages,
            reasoning_effort=reasoning_effort or chat.settings.get("reasoning_effort"),
            title_target=_title_target(user, target) if with_title else None,
            tool_groups=frozenset(tool_groups_allowed(chat.settings)),
            chat_settings=dict(chat.settings),
        )
    )


def _model_for(chat: Chat, requested: str | None, message: Message | None = None) -> str:
    """The model asked for, else the answer's own, else the chat's."""
    return requested or (message.model_id if message else "") or str(chat.settings.get("model"))


def _idle_check(chat: Chat) -> None:
    if chat_is_generating(chat=chat):
        raise ChatBusy()


# ---------------------------------------------------------------------------------------------
# The flows


@dataclass(frozen=True)
class Outgoing:
    """A message as the composer sends it: its text and model, the message it answers (None:
    the end of the shown route), the reasoning effort, the tree version the page showed, and
    for a new chat the tool groups its composer staged."""

    text: str
    model_id: str
    parent_id: uuid.UUID | None = None
    reasoning_effort: str | None = None
    seen_version: int | None = None
    # Archive entries staged on a new chat's page, pinned by the send that creates the chat.
    pin_entry_ids: tuple[uuid.UUID, ...] = ()
    tools: list[str] | None = None  # a new chat's tool groups (None: all)
    attachment_ids: tuple[uuid.UUID, ...] = ()  # the question's files (docs/attachments.md)


def turn_send(
    *, actor: User | None, actor_ensure: Callable[[], User], chat: Chat | None, outgoing: Outgoing
) -> SentTurn:
    """Send a message (into a new chat when `chat` is None) and start its answer.

    `actor` is who sends, None for a guest without a row yet; the model is resolved for them
    before `actor_ensure` creates that row, so a refused model creates nothing; so are the
    attachments checked (theirs, within the limits, read by the model).
    """
    target = resolve(actor, outgoing.model_id)
    files = attachments_check(
        user_id=actor.id if actor else None, ids=outgoing.attachment_ids, target=target
    )
    user = actor_ensure()
    admission = _admit(user=user, target=target)
    fields = dataclasses.asdict(outgoing)
    del fields["attachment_ids"]
    turn = message_send(user_id=user.id, chat=chat, files=files, **fields)
    answer_start(
        user=user, chat=turn.chat, answer=turn.answer, target=target,
        reasoning_effort=outgoing.reasoning_effort, with_title=turn.chat_created,
        pinned=turn.pinned,
    )  # fmt: skip
    return SentTurn(turn=turn, decision=admission.decision)


def answer_retry(*, user: User, chat: Chat, message: Message) -> Answered:
    """Answer a stopped or failed answer's question again, as a new version beside it."""
    if message.status not in RETRYABLE:
        raise NotRetryable()
    return _answer_again(user=user, chat=chat, message=message, model_id=message.model_id)


def answer_regenerate(
    *,
    user: User,
    chat: Chat,
    message: Message,
    model_id: str | None = None,
    seen_version: int | None = None,
) -> Answered:
    """A new answer beside `message`, by `model_id` (by default the answer's own model)."""
    _idle_check(chat)
    return _answer_again(
        user=user, chat=chat, message=message, model_id=_model_for(chat, model_id, message),
        seen_version=seen_version,
    )  # fmt: skip


def _answer_again(
    *, user: User, chat: Chat, message: Message, model_id: str, seen_version: int | None = None
) -> Answered:
    target = resolve(user, model_id)
    # The new answer reads the route's files: the model must read every kind of them.
    route_files_check(message=message, target=target, inclusive=message.role == Message.Role.USER)
    admission = _admit(user=user, target=target)
    try:
        answer = message_regenerate(
            chat=chat, message=message, model_id=admission.target.model_id,
            seen_version=seen_version,
        )  # fmt: skip
    except TreeError as error:
        return Answered(decision=admission.decision, error=error)
    answer_start(user=user, chat=chat, answer=answer, target=admission.target)
    return Answered(decision=admission.decision, answer=answer)


def message_edit(
    *,
    user: User,
    chat: Chat,
    message: Message,
    text: str,
    mode: str,
    model_id: str | None = None,
    seen_version: int | None = None,
    attachment_ids: Sequence[uuid.UUID] = (),
) -> Answered:
    """Edit a message: into a new version (`version`), in place, or into a new chat (`fork`).

    An edited question is answered (not in place), which is admitted against the rate limit;
    other edits wait for a generating chat to finish, except a fork (a new chat). An answered
    edit keeps the question's files and adds `attachment_ids`; before admission, they and the
    files of the earlier turns are checked against the model (other edits ignore the ids).
    """
    admission: Admission | None = None
    files: list[dict[str, Any]] | None = None
    if message.role == Message.Role.USER and mode != "in_place":
        wanted = resolve(user, _model_for(chat, model_id))
        files = attachments_check(
            user_id=user.id, ids=attachment_ids, target=wanted, kept=file_parts_of(message.parts)
        )
        route_files_check(message=message, target=wanted, inclusive=False)
        admission = _admit(user=user, target=wanted)
    elif mode != "fork":
        _idle_check(chat)
    decision = admission.decision if admission else None
    target = admission.target if admission else None
    try:
        if mode == "fork":
            fork = chat_fork(
                chat=chat, message=message, edited_text=text,
                model_id=target.model_id if target else "", files=files,
            )  # fmt: skip
            if fork.answer is not None and target is not None:
                answer_start(user=user, chat=fork.chat, answer=fork.answer, target=target)
            return Answered(decision=decision, fork=fork.chat, answer=fork.answer)
        return Answered(
            decision=decision,
            answer=_version_edit(
                user=user, chat=chat, message=message, text=text, mode=mode, target=target,
                seen_version=seen_version, files=files,
            ),
        )  # fmt: skip
    except TreeError as error:
        return Answered(decision=decision, error=error)


def _version_edit(
    *,
    user: User,
    chat: Chat,
    message: Message,
    text: str,
    mode: str,
    target: CallTarget | None,
    seen_version: int | None,
    files: list[dict[str, Any]] | None = None,
) -> Message | None:
    """An edit in this chat: a question's new version (answered), an answer's new version,
    or the same message changed in place. Returns the answer started, if any."""
    if message.role == Message.Role.USER and target is not None:
        edit = message_edit_user(
            chat=chat, message=message, text=text, model_id=target.model_id,
            seen_version=seen_version, files=files,
        )  # fmt: skip
        answer_start(user=user, chat=chat, answer=edit.answer, target=target)
        return edit.answer
    if mode == "in_place":
        message_edit_in_place(message=message, text=text)
        chat.refresh_from_db(fields=["tree_version"])
    else:
        message_edit_assistant(chat=chat, message=message, text=text, seen_version=seen_version)
    return None


def version_show(
    *, chat: Chat, message: Message, seen_version: int | None = None, sibling: bool = False
) -> uuid.UUID | None:
    """Show `message` (switch to that version); returns the message below which the shown
    route changed (None: from the first message)."""
    _idle_check(chat)
    return message_select(chat=chat, message=message, seen_version=seen_version, sibling=sibling)


_DELETES = {
    "version": message_delete_subtree,
    "turn": message_delete_turn,
    "single": message_delete_single,
}


def message_delete(*, chat: Chat, message: Message, scope: str) -> DeleteOutcome:
    """Delete this version with what follows it (`version`), every version of its turn
    (`turn`), or only this message (`single`)."""
    delete = _DELETES.get(scope)
    if delete is None:
        raise UnknownDeleteScope()
    _idle_check(chat)
    return delete(chat=chat, message=message)


def answer_stop(*, message: Message) -> None:
    """Stop an answer wherever it is generated: here, in another process (through Redis), or
    nowhere any more (then it is marked stopped)."""
    generated_elsewhere = message.status == Message.Status.STREAMING and not generation_stop(
        message.id
    )
    if generated_elsewhere and (
        not relay_enabled() or not async_to_sync(remote_stop)(message_id=message.id)
    ):
        message_stop_orphan(message=message)
