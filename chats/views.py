"""Chat pages and their htmx partials: new chat, a chat, its messages, sending, stop, retry,
rename, delete, the chat's settings (JSON). Each view reads the request, calls one service or
selector and renders; the flows are in `chats.turn_services`, the shared responses in
`chats.responses`."""

from __future__ import annotations

import uuid

import orjson
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import actor_get
from accounts.services import actor_ensure
from chats.forms import RenameForm, SendForm
from chats.responses import (
    admitted_response,
    chat_body_response,
    chat_context,
    error_response,
    form_error_response,
    message_response,
    picker_context,
    refusal_response,
    refusals_answered,
    window_context,
)
from chats.selectors import (
    chat_get_for_request,
    chat_list_page,
    chat_title_awaited,
    chat_window,
    message_get_for_chat,
)
from chats.services import Turn, chat_delete, chat_rename, chat_settings_update
from chats.turn_services import Outgoing, answer_retry, answer_stop, turn_send
from vero.errors import VeroError, http_status
from vero.http import VeroRequest

# A settings change is one small JSON object (`{"tools": [...]}`).
SETTINGS_BODY_MAX_BYTES = 4096


@require_GET
def chat_new(request: VeroRequest) -> HttpResponse:
    return render(request, "chats/new.html", picker_context(actor_get(request)))


@require_GET
def chat_detail(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    chat = chat_get_for_request(request, chat_id=chat_id)
    template = "chats/chat.html"
    if request.htmx:
        part = "chat-body" if request.GET.get("part") == "body" else "chat-main"
        template += f"#{part}"
    return render(request, template, chat_context(request, chat))


@require_GET
def chat_messages(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    """More of the route: `before=<id>` the messages above it, `after=<id>` those below it.

    `version`: the tree version of the page that asks. When the chat changed since (another
    tab), or that message is no longer on the shown route, the whole body comes instead.
    """
    chat = chat_get_for_request(request, chat_id=chat_id)
    key = "before" if "before" in request.GET else "after"
    try:
        anchor = message_get_for_chat(chat=chat, message_id=uuid.UUID(request.GET.get(key, "")))
    except ValueError:
        return error_response(request, "Say which message to read from.", status=400)
    window = None
    if request.GET.get("version") == str(chat.tree_version):  # else the chat changed since
        before, after = (anchor, None) if key == "before" else (None, anchor)
        window = chat_window(chat=chat, before=before, after=after)
    if window is None:
        return chat_body_response(request, chat)
    context = window_context(chat, window)
    # The page has what lies on the other side already: no loader for it.
    context["has_after" if key == "before" else "has_before"] = False
    return render(request, "chats/_window.html", context)


@require_POST
@refusals_answered
def message_send_view(request: VeroRequest, chat_id: uuid.UUID | None = None) -> HttpResponse:
    """Check everything first (a refused send creates nothing), then save and start answering."""
    # Someone else's chat is not found, whatever was posted.
    chat = chat_get_for_request(request, chat_id=chat_id) if chat_id is not None else None
    form = SendForm(request.POST)
    if not form.is_valid():
        return form_error_response(request, form)
    # A new chat's composer stages its tools choice; an existing chat saved it already.
    staged = chat is None and form.cleaned_data["tools_staged"]
    outgoing = Outgoing(
        text=form.cleaned_data["text"], model_id=form.cleaned_data["model"],
        parent_id=form.cleaned_data["parent"],
        reasoning_effort=form.cleaned_data["reasoning_effort"] or None,
        seen_version=form.cleaned_data["version"],
        pin_entry_ids=form.cleaned_data["pin"] if chat_id is None else (),
        tools=form.cleaned_data["tools"] if staged else None,
        attachment_ids=form.cleaned_data["attachments"],
    )  # fmt: skip
    sent = turn_send(
        actor=actor_get(request), actor_ensure=lambda: actor_ensure(request), chat=chat,
        outgoing=outgoing,
    )  # fmt: skip
    return admitted_response(request, _sent_response(request, sent.turn), decision=sent.decision)


def _sent_response(request: VeroRequest, turn: Turn) -> HttpResponse:
    if not request.htmx:
        return redirect("chat_detail", turn.chat.id)
    if turn.reshow:  # the page did not show the chat as it is: it shows it again, with the turn
        return chat_body_response(request, turn.chat)
    context = {"chat": turn.chat, "question": turn.question, "answer": turn.answer}
    if not turn.chat_created:
        return render(request, "chats/_turn.html", context)
    # A new chat answers like a follow-up (the turn, whose stream the page opens at once); the
    # page becomes the chat's (header, URL, composer's target, sidebar) in chat.js once the
    # answer's first text is shown. Its header polls for the title being generated, as the
    # chat's page would (chat_title_awaited, known here).
    return render(request, "chats/new.html#chat-started", {**context, "title_awaited": True})


@require_POST
def message_stop_view(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    chat = chat_get_for_request(request, chat_id=chat_id)
    answer_stop(message=message_get_for_chat(chat=chat, message_id=message_id))
    return HttpResponse(status=204)


@require_POST
@refusals_answered
def message_retry_view(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    chat = chat_get_for_request(request, chat_id=chat_id)
    failed = message_get_for_chat(chat=chat, message_id=message_id)
    user = actor_get(request)
    assert user is not None  # the chat lookup found the user's chat
    answered = answer_retry(user=user, chat=chat, message=failed)
    if answered.error is not None:
        response = refusal_response(request, answered.error)
    elif not request.htmx:
        return redirect("chat_detail", chat.id)
    else:
        assert answered.answer is not None
        response = message_response(request, chat, answered.answer, tree_state=True)
    # The bucket was spent from either way: the meters follow.
    return admitted_response(request, response, decision=answered.decision)


@require_GET
def message_detail(request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID) -> HttpResponse:
    chat = chat_get_for_request(request, chat_id=chat_id)
    return message_response(request, chat, message_get_for_chat(chat=chat, message_id=message_id))


@require_http_methods(["POST"])
def chat_rename_view(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    chat = chat_get_for_request(request, chat_id=chat_id)
    form = RenameForm(request.POST)
    if not form.is_valid():
        return form_error_response(request, form)
    chat_rename(chat=chat, title=form.cleaned_data["title"])
    if not request.htmx:
        return redirect("chat_detail", chat.id)
    response = render(request, "chats/chat.html#chat-title-update", {"chat": chat})
    response["HX-Trigger"] = "chats-changed"
    return response


@require_POST
def chat_settings_view(request: VeroRequest, chat_id: uuid.UUID) -> JsonResponse:
    """Merge a change (a JSON object, e.g. `{"tools": ["code"]}`) into the chat's settings;
    answer the settings as they are now, or 400 and the reason (nothing changed)."""
    chat = chat_get_for_request(request, chat_id=chat_id)  # someone else's chat: 404
    if len(request.body) > SETTINGS_BODY_MAX_BYTES:
        return JsonResponse({"error": "This change is too large."}, status=400)
    try:
        patch = orjson.loads(request.body)
        changed = chat_settings_update(chat_id=chat.id, user_id=chat.user_id, patch=patch)
    except orjson.JSONDecodeError:
        return JsonResponse({"error": "The change must be a JSON object."}, status=400)
    except VeroError as error:
        return JsonResponse({"error": error.message}, status=http_status(error))
    return JsonResponse({"settings": changed})


@require_GET
def chat_title_view(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    """The chat's header and document title, polled while a generated title may arrive."""
    chat = chat_get_for_request(request, chat_id=chat_id)
    awaited = chat_title_awaited(chat=chat)
    context = {"chat": chat, "title_awaited": awaited}
    response = render(request, "chats/chat.html#chat-title-update", context)
    if not awaited:  # the last poll: the sidebar shows the final title too
        response["HX-Trigger"] = "chats-changed"
    return response


@require_http_methods(["GET", "POST"])
def chat_delete_view(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    chat = chat_get_for_request(request, chat_id=chat_id)
    if request.method == "GET":
        return render(request, "chats/delete.html", {"chat": chat})
    chat_delete(chat=chat)
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = reverse("home")
        return response
    return redirect("home")


@require_GET
def chat_list(request: VeroRequest) -> HttpResponse:
    page = chat_list_page(
        user=actor_get(request),
        cursor=request.GET.get("cursor"),
        size=settings.CHAT_LIST_PAGE_SIZE,
    )
    return render(request, "chats/_chat_list.html", {"chat_page": page, "partial": True})
