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
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import actor_get
from chats.compare import versions_diff
from chats.fork_services import chat_fork
from chats.forms import EditForm, RegenerateForm
from chats.models import Chat, Message
from chats.responses import (
    admitted_response,
    changed_response,
    error_response,
    form_error_response,
    goto_response,
    picker_context,
    refusal_response,
    refusals_answered,
    seen_version,
)
from chats.route_selectors import chat_map
from chats.selectors import chat_get_for_request, message_get_for_chat, version_pair_get
from chats.structure import chat_structure_load
from chats.turn_services import (
    Answered,
    answer_regenerate,
    message_delete,
    message_edit,
    version_show,
)
from vero.http import VeroRequest


def _lookup(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> tuple[Chat, Message]:
    chat = chat_get_for_request(request, chat_id=chat_id)
    return chat, message_get_for_chat(chat=chat, message_id=message_id)


def _answered_response(
    request: VeroRequest, chat: Chat, answered: Answered, *, below: uuid.UUID | None
) -> HttpResponse:
    """After an edit or a regeneration: the change (or the fork's page), or the refusal that
    came after admission; an admitted request's meters follow either way."""
    if answered.error is not None:
        response = refusal_response(request, answered.error)
    elif answered.fork is not None:
        # The fork's page, loaded in full, shows the meters as this edit left them.
        response = goto_response(request, reverse("chat_detail", args=[answered.fork.id]))
    else:
        response = changed_response(request, chat, below=below)
    return admitted_response(request, response, decision=answered.decision)


@require_POST
@refusals_answered
def message_select_view(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    chat, message = _lookup(request, chat_id, message_id)
    below = version_show(
        chat=chat, message=message, seen_version=seen_version(request),
        sibling=request.POST.get("sibling") == "1",
    )  # fmt: skip
    return changed_response(request, chat, below=below)


@require_http_methods(["GET", "POST"])
@refusals_answered
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
    user = actor_get(request)
    assert user is not None  # the chat lookup found the user's chat
    answered = message_edit(
        user=user, chat=chat, message=message, text=form.cleaned_data["text"],
        mode=form.cleaned_data["mode"], model_id=form.cleaned_data["model"],
        seen_version=seen_version(request), attachment_ids=form.cleaned_data["attachments"],
    )  # fmt: skip
    # The new version (or the edited message) follows the same parent.
    return _answered_response(request, chat, answered, below=message.parent_id)


@require_http_methods(["GET", "POST"])
@refusals_answered
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
    answered = answer_regenerate(
        user=user, chat=chat, message=message, model_id=form.cleaned_data["model"],
        seen_version=seen_version(request),
    )  # fmt: skip
    return _answered_response(request, chat, answered, below=message.parent_id)


@require_POST
@refusals_answered
def message_delete_view(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    chat, message = _lookup(request, chat_id, message_id)
    outcome = message_delete(chat=chat, message=message, scope=request.POST.get("scope", ""))
    if outcome.chat_deleted:
        return goto_response(request, reverse("home"))
    # Below the parent: another version now, or nothing.
    return changed_response(request, chat, below=message.parent_id)


@require_POST
@refusals_answered
def message_fork_view(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    chat, message = _lookup(request, chat_id, message_id)
    fork = chat_fork(chat=chat, message=message)
    return goto_response(request, reverse("chat_detail", args=[fork.chat.id]))


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
@refusals_answered
def chat_compare(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    """Side by side: two versions of a question or an answer, with their changes marked.

    `?a=<id>&b=<id>`: two messages of the chat with the same parent (or both without one).
    """
    chat = chat_get_for_request(request, chat_id=chat_id)
    try:
        left_id, right_id = uuid.UUID(request.GET["a"]), uuid.UUID(request.GET["b"])
    except (KeyError, ValueError):
        return error_response(request, "Choose two versions to compare.", status=400)
    pair = version_pair_get(chat=chat, left_id=left_id, right_id=right_id)
    context = {
        "chat": chat,
        "kind": pair.kind,
        "left": pair.left,
        "right": pair.right,
        "left_number": pair.versions.index(pair.left.id) + 1,
        "right_number": pair.versions.index(pair.right.id) + 1,
        "count": len(pair.versions),
        "diff": versions_diff(pair.left.text, pair.right.text),
        "versions": list(enumerate(pair.versions, 1)),
    }
    return render(request, "chats/compare.html", context)
