"""What chat views answer with, shared by the pages (`views`) and the tree's endpoints
(`tree_views`): the conversation's contexts, the whole body, a window after a change, one
message, and refusals.

A refusal is any `VeroError`: its sentence in the composer's error slot, its status from
`vero.errors.http_status`. A view decorated with `refusals_answered` lets them propagate.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any, Concatenate

from django import forms
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string

from accounts.models import User
from accounts.selectors import actor_get, administrator_exists
from chats.models import Chat, Message
from chats.selectors import (
    ChatWindow,
    chat_forks,
    chat_lineage,
    chat_title_awaited,
    chat_window,
)
from chats.turn_services import RateLimitedError
from chats.versions import message_versions
from models_registry.selectors import (
    model_default_id,
    models_grouped_by_creator,
    models_usable_for_user,
)
from ratelimit.meters import meters_update_append
from ratelimit.services import Decision
from tools.registry import TOOL_GROUPS
from vero.errors import VeroError, http_status
from vero.forms import form_first_error
from vero.http import VeroRequest

# ---------------------------------------------------------------------------------------------
# Refusals


def error_response(
    request: VeroRequest, message: str, *, status: int, **headers: str
) -> HttpResponse:
    """An error the user reads: a small partial for htmx, the same text otherwise."""
    response = render(request, "chats/_error.html", {"error": message}, status=status)
    for name, value in headers.items():
        response[name] = value
    if request.htmx:
        # Show it in the composer's error slot whatever the request's own target was.
        response["HX-Retarget"] = "#composer-error"
        response["HX-Reswap"] = "innerHTML"
    return response


def form_error_response(request: VeroRequest, form: forms.Form) -> HttpResponse:
    """A refused form: its first error, 400; nothing was written or sent."""
    return error_response(request, form_first_error(form), status=400)


def refusal_response(request: VeroRequest, error: VeroError) -> HttpResponse:
    """A refused request: its sentence and status. An empty bucket (429) says when the next
    request is admitted, and the page's meters show the empty bucket."""
    if not isinstance(error, RateLimitedError):
        return error_response(request, error.message, status=http_status(error))
    retry_after = error.decision.retry_after_seconds
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    refused = error_response(request, error.message, status=http_status(error), **headers)
    return meters_update_append(request=request, response=refused, decision=error.decision)


def refusals_answered[**P](
    view: Callable[Concatenate[VeroRequest, P], HttpResponse],
) -> Callable[Concatenate[VeroRequest, P], HttpResponse]:
    """Answer a `VeroError` raised by the view (by the services it calls) as a refusal."""

    @functools.wraps(view)
    def wrapper(request: VeroRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except VeroError as error:
            return refusal_response(request, error)

    return wrapper


def admitted_response(
    request: VeroRequest, response: HttpResponse, *, decision: Decision | None
) -> HttpResponse:
    """A response to a request that spent from the bucket: the page's meters follow."""
    return meters_update_append(request=request, response=response, decision=decision)


# ---------------------------------------------------------------------------------------------
# The conversation


def picker_context(
    user: User | None, selected: str | None = None, tools: list[str] | None = None
) -> dict[str, Any]:
    """The composer's choices: the models, the one selected, the tool groups (`tools`: those the
    chat allows; None, every group)."""
    options = models_usable_for_user(user=user)
    return {
        "tool_groups": list(TOOL_GROUPS.items()),
        "tools_allowed": tools,
        "model_groups": models_grouped_by_creator(options=options),
        "selected_model": selected if selected in {o.id for o in options} else None,
        "default_model": model_default_id(options=options),
        # Without a model the composer says who can add one; nobody, on a fresh install.
        "administrator_exists": administrator_exists() if not options else True,
    }


def window_context(chat: Chat, window: ChatWindow) -> dict[str, Any]:
    """What a window of the conversation shows: its messages, and how the page goes on."""
    return {
        "chat": chat,
        "shown": window.shown,
        "has_before": window.has_before,
        "has_after": window.has_after,
        "leaf_id": window.leaf_id,
        "generating": window.generating,
        "branched": window.structure.is_branched(),
    }


def chat_context(request: VeroRequest, chat: Chat) -> dict[str, Any]:
    """Everything the chat page and its partials show: the route's latest messages, lineage."""
    window = chat_window(chat=chat)
    assert window is not None  # the default window always exists
    single_turn = (
        len(window.shown) == 2 and not window.has_before and len(window.structure.branches) == 1
    )
    return {
        **window_context(chat, window),
        "lineage": chat_lineage(chat=chat) if chat.parent_chat_id else [],
        "forks": chat_forks(chat=chat),
        # From the messages just loaded: a one-turn chat shows both, a longer one is not new.
        "title_awaited": chat_title_awaited(
            chat=chat, messages=[item.message for item in window.shown] if single_turn else []
        ),
        **picker_context(
            actor_get(request), chat.settings.get("model"), chat.settings.get("tools")
        ),
    }


def chat_body_response(request: VeroRequest, chat: Chat) -> HttpResponse:
    """The chat's whole body (its latest messages), in place of whatever the page showed."""
    response = render(request, "chats/chat.html#chat-body", chat_context(request, chat))
    response["HX-Retarget"] = "#chat-body"
    response["HX-Reswap"] = "outerHTML"
    response["HX-Trigger"] = "chats-changed, tree-changed"
    return response


def seen_version(request: VeroRequest) -> int | None:
    """The tree version of the page that posted (None: not said, or not a number)."""
    try:
        return int(request.POST.get("version", ""))
    except ValueError:
        return None


def changed_response(request: VeroRequest, chat: Chat, *, below: uuid.UUID | None) -> HttpResponse:
    """After a change: the conversation below message `below` (None: from the first message),
    which the page puts after that message in place of what followed it. A page that missed
    another change, or an anchor no longer shown, gets the whole body."""
    if not request.htmx:
        return redirect("chat_detail", chat.id)
    seen = seen_version(request)
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


def goto_response(request: VeroRequest, url: str) -> HttpResponse:
    """Go to another page: htmx follows `HX-Redirect`, a plain form the redirect."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def message_response(
    request: VeroRequest, chat: Chat, message: Message, *, tree_state: bool = False
) -> HttpResponse:
    """One message, as the conversation shows it (with its place among its versions).

    `tree_state`: the message is a new version; the page's tree version and composer parent
    follow it.
    """
    siblings = message_versions(chat=chat, message=message)
    at = siblings.index(message.id) if message.id in siblings else 0
    context = {
        "chat": chat,
        "message": message,
        "position": at + 1,
        "count": max(len(siblings), 1),
        "previous_id": siblings[at - 1] if at > 0 else None,
        "next_id": siblings[at + 1] if at + 1 < len(siblings) else None,
    }
    response = render(request, "chats/_message.html", context)
    if tree_state:
        state = {"chat": chat, "leaf_id": message.id, "oob": True}
        response.content += render_to_string("chats/_tree_state.html", state).encode()
    return response
