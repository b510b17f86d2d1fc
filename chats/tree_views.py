"""The tree's HTML endpoints: switch versions, edit, regenerate, delete, fork, compare, map.

A change answers with the conversation from the changed message down (a window of it), which
the page puts in place of what it showed below the message above the change (chat.js, the
`Vero-Replace-After` header); the rest of the page stays. When the page did not show the chat
as it was (its tree version is not the one before this change), the whole body comes instead.
A refused change answers with a readable error and changes nothing.
"""

from __future__ import annotations

import uuid

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.services import actor_get
from chats.branching import (
    TreeError,
    chat_fork,
    message_delete_single,
    message_delete_subtree,
    message_delete_turn,
    message_edit_assistant,
    message_edit_in_place,
    message_edit_user,
    message_regenerate,
    message_select,
)
from chats.compare import versions_diff
from chats.forms import EditForm, RegenerateForm
from chats.models import Chat, Message
from chats.selectors import (
    chat_get_for_request,
    chat_is_generating,
    chat_window,
    message_get_for_chat,
)
from chats.structure import chat_map, chat_structure_load
from chats.versions import message_versions
from chats.views import (
    answer_start,
    call_target_admitted,
    chat_body_response,
    error_response,
    form_error_response,
    picker_context,
    window_context,
)
from models_registry.calls import CallTarget
from ratelimit.meters import meters_update_append
from ratelimit.services import Decision
from vero.http import VeroRequest

BUSY = "Wait for the answer to finish (or stop it) before changing versions."


def _seen_version(request: VeroRequest) -> int | None:
    try:
        return int(request.POST.get("version", ""))
    except ValueError:
        return None


def _changed(request: VeroRequest, chat: Chat, *, below: uuid.UUID | None) -> HttpResponse:
    """After a change: the conversation below message `below` (None: from the first message),
    which the page puts after that message in place of what followed it. A page that missed
    another change, or an anchor no longer shown, gets the whole body."""
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect("chat_detail", chat.id)
    seen = _seen_version(request)
    window = None
    if seen is not None and chat.tree_version == seen + 1:
        anchor = Message.objects.filter(id=below, chat_id=chat.id).first() if below else None
        if below is None or anchor is not None:
            window = chat_window(chat=chat, after=anchor, from_top=anchor is None)
    if window is None or (below is None and not window.shown):
        return chat_body_response(request, chat)
    context = {**window_context(chat, window), "splice": True}
    response = render(request, "chats/_window.html", context)
    response["Vero-Replace-After"] = str(below) if below else ""
    response["HX-Trigger"] = "chats-changed, tree-changed"
    return response


def _goto(request: VeroRequest, url: str) -> HttpResponse:
    if request.htmx:  # type: ignore[attr-defined]
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _lookup(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> tuple[Chat, Message]:
    chat = chat_get_for_request(request, chat_id=chat_id)
    return chat, message_get_for_chat(chat=chat, message_id=message_id)


def _model_for(chat: Chat, requested: str | None, message: Message | None = None) -> str:
    """The model asked for, else the answer's own, else the chat's."""
    return requested or (message.model_id if message else "") or str(chat.settings.get("model"))


@require_POST
def message_select_view(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    chat, message = _lookup(request, chat_id, message_id)
    if chat_is_generating(chat=chat):
        return error_response(request, BUSY, status=409)
    try:
        below = message_select(
            chat=chat,
            message=message,
            seen_version=_seen_version(request),
            sibling=request.POST.get("sibling") == "1",
        )
    except TreeError as error:  # deleted meanwhile (another tab): say so, change nothing
        return error_response(request, str(error), status=409)
    return _changed(request, chat, below=below)


@require_http_methods(["GET", "POST"])
def message_edit_view(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """GET: the edit form, loaded when the user opens it; POST: the edit."""
    chat, message = _lookup(request, chat_id, message_id)
    if request.method == "GET":
        return render(request, "chats/_edit_form.html", {"chat": chat, "message": message})
    form = EditForm(request.POST)
    if not form.is_valid():
        return form_error_response(request, form)
    text, mode = form.cleaned_data["text"], form.cleaned_data["mode"]
    user = actor_get(request)
    assert user is not None  # the chat lookup found the user's chat
    needs_answer = message.role == Message.Role.USER and mode != "in_place"
    target: CallTarget | None = None
    decision: Decision | None = None
    if needs_answer:
        admitted = call_target_admitted(
            request, user=user, model_id=_model_for(chat, form.cleaned_data["model"])
        )
        if isinstance(admitted, HttpResponse):
            return admitted
        target, decision = admitted
    elif chat_is_generating(chat=chat) and mode != "fork":
        return error_response(request, BUSY, status=409)
    response = _edit(
        request, user=user, chat=chat, message=message, text=text, mode=mode, target=target
    )
    # An answered edit spent from the bucket (even if the tree then refused it).
    return meters_update_append(request=request, response=response, decision=decision)


def _edit(
    request: VeroRequest,
    *,
    user: User,
    chat: Chat,
    message: Message,
    text: str,
    mode: str,
    target: CallTarget | None,
) -> HttpResponse:
    """Apply an edit; `target` (admitted already) answers an edited question."""
    try:
        if mode == "fork":
            fork = chat_fork(
                chat=chat,
                message=message,
                edited_text=text,
                model_id=target.model_id if target else "",
            )
            if fork.answer is not None and target is not None:
                answer_start(user=user, chat=fork.chat, answer=fork.answer, target=target)
            # The fork's page, loaded in full, shows the meters as this edit left them.
            return _goto(request, reverse("chat_detail", args=[fork.chat.id]))
        if message.role == Message.Role.USER and target is not None:
            edit = message_edit_user(
                chat=chat, message=message, text=text, model_id=target.model_id,
                seen_version=_seen_version(request),
            )  # fmt: skip
            answer_start(user=user, chat=chat, answer=edit.answer, target=target)
        elif mode == "in_place":
            message_edit_in_place(message=message, text=text)
            chat.refresh_from_db(fields=["tree_version"])
        else:
            message_edit_assistant(
                chat=chat, message=message, text=text, seen_version=_seen_version(request)
            )
    except TreeError as error:
        return error_response(request, str(error), status=409)
    # The new version (or the edited message) follows the same parent.
    return _changed(request, chat, below=message.parent_id)


@require_http_methods(["GET", "POST"])
def message_regenerate_view(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    """GET: the "answer again with" form and its model list, loaded when opened; POST: do it."""
    chat, message = _lookup(request, chat_id, message_id)
    user = actor_get(request)
    assert user is not None
    if request.method == "GET":
        context = {"chat": chat, "message": message, **picker_context(user, message.model_id)}
        return render(request, "chats/_regenerate_form.html", context)
    form = RegenerateForm(request.POST)
    if not form.is_valid():
        return form_error_response(request, form)
    if chat_is_generating(chat=chat):
        return error_response(request, BUSY, status=409)
    admitted = call_target_admitted(
        request, user=user, model_id=_model_for(chat, form.cleaned_data["model"], message)
    )
    if isinstance(admitted, HttpResponse):
        return admitted
    target, decision = admitted
    try:
        answer = message_regenerate(
            chat=chat,
            message=message,
            model_id=target.model_id,
            seen_version=_seen_version(request),
        )
    except TreeError as error:
        response = error_response(request, str(error), status=409)
    else:
        answer_start(user=user, chat=chat, answer=answer, target=target)
        response = _changed(request, chat, below=answer.parent_id)
    # The bucket was spent from either way: the meters follow.
    return meters_update_append(request=request, response=response, decision=decision)


_DELETES = {
    "version": message_delete_subtree,
    "turn": message_delete_turn,
    "single": message_delete_single,
}


@require_POST
def message_delete_view(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    chat, message = _lookup(request, chat_id, message_id)
    delete = _DELETES.get(request.POST.get("scope", ""))
    if delete is None:
        return error_response(request, "Choose what to delete.", status=400)
    if chat_is_generating(chat=chat):
        return error_response(request, BUSY, status=409)
    try:
        outcome = delete(chat=chat, message=message)
    except TreeError as error:
        return error_response(request, str(error), status=409)
    if outcome.chat_deleted:
        return _goto(request, reverse("home"))
    # Below the parent: another version now, or nothing.
    return _changed(request, chat, below=message.parent_id)


@require_POST
def message_fork_view(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    chat, message = _lookup(request, chat_id, message_id)
    try:
        fork = chat_fork(chat=chat, message=message)
    except TreeError as error:
        return error_response(request, str(error), status=409)
    return _goto(request, reverse("chat_detail", args=[fork.chat.id]))


@require_GET
def chat_map_view(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    """The conversation's map: its branch points and the runs between them, one node each."""
    chat = chat_get_for_request(request, chat_id=chat_id)
    return render(request, "chats/_map.html", {"nodes": map_nodes(chat=chat)})


def map_nodes(*, chat: Chat) -> SafeString:
    """The map's nodes as HTML, built here rather than by the template engine: a chat with a
    thousand branches has two thousand runs, and a template's tags per node cost ~0.1 ms."""
    structure = chat_structure_load(chat=chat)
    route = structure.route()
    leaf = route.leaf
    disabled = " disabled" if leaf is not None and leaf.status == Message.Status.STREAMING else ""
    base = reverse("chat_detail", args=[chat.id])
    items = []
    for run in chat_map(structure=structure, route=route):
        role = "user" if run.first.role == Message.Role.USER else "assistant"
        label = f"{run.length} messages" if run.length > 1 else role.capitalize()
        title = (
            (f"Version {run.version + 1}/{run.versions}, " if run.versions > 1 else "")
            + label
            + (" (shown)" if run.on_route else "")
        )
        classes = f"tree-node role-{role}" + (" on-path" if run.on_route else "")
        classes += " tree-run" if run.length > 1 else ""
        # Every piece is a number, a fixed word or a UUID: nothing to escape.
        items.append(
            f'<li style="--depth: {run.depth}; --column: {run.column}"><button type="button" '
            f'class="{classes}" title="{title}" hx-post="{base}m/{run.last.id}/select" '
            f'hx-target="#chat-body" hx-swap="outerHTML"{disabled}></button></li>'
        )
    return mark_safe("".join(items))  # noqa: S308


@require_GET
def chat_compare(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    """Side by side: two versions of a question or an answer, with their changes marked.

    `?a=<id>&b=<id>`: two messages of the chat with the same parent (or both without one).
    """
    chat = chat_get_for_request(request, chat_id=chat_id)
    try:
        left_id, right_id = uuid.UUID(request.GET["a"]), uuid.UUID(request.GET["b"])
    except (KeyError, ValueError):
        return error_response(request, "Choose two versions to compare.", status=400)
    left = message_get_for_chat(chat=chat, message_id=left_id)
    right = message_get_for_chat(chat=chat, message_id=right_id)
    versions = message_versions(chat=chat, message=left)
    if right.parent_id != left.parent_id or not {left.id, right.id} <= set(versions):
        return error_response(
            request, "Only versions of the same message can be compared.", status=400
        )
    roles = {left.role, right.role}
    kind = "question" if roles == {"user"} else "answer" if roles == {"assistant"} else "message"
    context = {
        "chat": chat,
        "kind": kind,
        "left": left,
        "right": right,
        "left_number": versions.index(left.id) + 1,
        "right_number": versions.index(right.id) + 1,
        "count": len(versions),
        "diff": versions_diff(left.text, right.text),
        "versions": list(enumerate(versions, 1)),
    }
    return render(request, "chats/compare.html", context)
