"""Chat pages and their htmx partials: new chat, a chat, sending, stop, retry, rename, delete."""

from __future__ import annotations

import uuid
from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.selectors import administrator_exists
from accounts.services import actor_ensure, actor_get
from chats.branching import TreeError, message_regenerate
from chats.forms import RenameForm, SendForm
from chats.generation import (
    GenerationPlan,
    context_build,
    generation_start,
    generation_stop,
    system_prompt,
)
from chats.models import Chat, Message
from chats.relay import enabled as relay_enabled
from chats.relay import remote_stop
from chats.selectors import (
    ChatWindow,
    chat_get_for_request,
    chat_get_for_user,
    chat_list_page,
    chat_title_awaited,
    chat_window,
    message_get_for_chat,
)
from chats.services import (
    RETRYABLE,
    SendRefusedError,
    chat_delete,
    chat_rename,
    message_send,
    message_stop_orphan,
)
from chats.tree import chat_forks, chat_lineage
from chats.versions import message_versions
from models_registry.calls import CallTarget
from models_registry.resolver import ResolutionError, resolve
from models_registry.selectors import (
    model_default_id,
    models_grouped_by_creator,
    models_usable_for_user,
    tier_for_user,
)
from ratelimit.meters import meters_update_append
from ratelimit.services import Decision, request_admit
from vero.http import VeroRequest


def picker_context(user: User | None, selected: str | None = None) -> dict[str, Any]:
    options = models_usable_for_user(user=user)
    return {
        "model_groups": models_grouped_by_creator(options=options),
        "selected_model": selected if selected in {o.id for o in options} else None,
        "default_model": model_default_id(options=options),
        # Without a model the composer says who can add one; nobody, on a fresh install.
        "administrator_exists": administrator_exists() if not options else True,
    }


def error_response(
    request: VeroRequest, message: str, *, status: int, **headers: str
) -> HttpResponse:
    """An error the user reads: a small partial for htmx, the same text otherwise."""
    response = render(request, "chats/_error.html", {"error": message}, status=status)
    for name, value in headers.items():
        response[name] = value
    if request.htmx:  # type: ignore[attr-defined]
        # Show it in the composer's error slot whatever the request's own target was.
        response["HX-Retarget"] = "#composer-error"
        response["HX-Reswap"] = "innerHTML"
    return response


def form_error_response(request: VeroRequest, form: forms.Form) -> HttpResponse:
    """A refused form: its first error, 400; nothing was written or sent."""
    return error_response(request, str(next(iter(form.errors.values()))[0]), status=400)


@require_GET
def chat_new(request: VeroRequest) -> HttpResponse:
    return render(request, "chats/new.html", picker_context(actor_get(request)))


@require_GET
def chat_detail(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    return _chat_page(request, chat_get_for_request(request, chat_id=chat_id))


def _chat_page(request: VeroRequest, chat: Chat) -> HttpResponse:
    template = "chats/chat.html"
    if request.htmx:  # type: ignore[attr-defined]
        part = "chat-body" if request.GET.get("part") == "body" else "chat-main"
        template += f"#{part}"
    return render(request, template, chat_context(request, chat))


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
        **picker_context(actor_get(request), chat.settings.get("model")),
    }


def chat_body_response(request: VeroRequest, chat: Chat) -> HttpResponse:
    """The chat's whole body (its latest messages), in place of whatever the page showed."""
    response = render(request, "chats/chat.html#chat-body", chat_context(request, chat))
    response["HX-Retarget"] = "#chat-body"
    response["HX-Reswap"] = "outerHTML"
    response["HX-Trigger"] = "chats-changed, tree-changed"
    return response


@require_GET
def chat_messages(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    """More of the route: `before=<id>` the messages above it, `after=<id>` those below it.

    `version`: the tree version of the page that asks. When the chat changed since (another
    tab), or that message is no longer on the shown route, the whole body comes instead.
    """
    chat = chat_get_for_request(request, chat_id=chat_id)
    key = "before" if "before" in request.GET else "after"
    try:
        anchor_id = uuid.UUID(request.GET.get(key, ""))
    except ValueError:
        return error_response(request, "Say which message to read from.", status=400)
    anchor = message_get_for_chat(chat=chat, message_id=anchor_id)
    if request.GET.get("version") != str(chat.tree_version):  # the chat changed since
        return chat_body_response(request, chat)
    if key == "before":
        window = chat_window(chat=chat, before=anchor)
    else:
        window = chat_window(chat=chat, after=anchor)
    if window is None:
        return chat_body_response(request, chat)
    context = window_context(chat, window)
    # The page has what lies on the other side already: no loader for it.
    context["has_after" if key == "before" else "has_before"] = False
    return render(request, "chats/_window.html", context)


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


def _bucket(target: CallTarget) -> str:
    return "byok" if target.model_id.startswith("byok:") else "platform"


def answer_start(
    *,
    user: User,
    chat: Chat,
    answer: Message,
    target: CallTarget,
    reasoning_effort: str | None = None,
    with_title: bool = False,
) -> None:
    """Start generating into a `streaming` placeholder that was just saved.

    The model's input is read here, on the request's connection, so the generation task
    calls the provider at once.
    """
    max_tokens = _max_tokens(user, target)
    messages = context_build(
        answer_id=answer.id, chat_id=chat.id, target=target, max_tokens=max_tokens,
        system=system_prompt(user=user),
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
        )
    )


def admission_decide(
    request: VeroRequest, user: User, target: CallTarget
) -> Decision | HttpResponse:
    """Consume one request from the user's bucket: the decision, or the 429 when it is empty.

    The 429 carries the meters' update too: the page then shows the empty bucket and when the
    next message comes. An admitted request's view adds it to its own response
    (`meters_update_append`).
    """
    decision = request_admit(user=user, bucket=_bucket(target))
    if decision.allowed:
        return decision
    retry_after = decision.retry_after_seconds
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    refused = error_response(request, decision.message, status=429, **headers)
    return meters_update_append(request=request, response=refused, decision=decision)


def call_target_admitted(
    request: VeroRequest, *, user: User, model_id: str
) -> tuple[CallTarget, Decision] | HttpResponse:
    """Resolve the model for the user and take one request from their bucket.

    Returns the call target and the admission decision (for the meters), or the response that
    says why not (nothing was written).
    """
    try:
        target = resolve(user, model_id)
    except ResolutionError as error:
        return error_response(request, str(error), status=400)
    admitted = admission_decide(request, user, target)
    return admitted if isinstance(admitted, HttpResponse) else (target, admitted)


@require_POST
def message_send_view(request: VeroRequest, chat_id: uuid.UUID | None = None) -> HttpResponse:
    """Check everything first (a refused send creates nothing), then save and start answering."""
    chat: Chat | None = None
    if chat_id is not None:  # someone else's chat is not found, whatever was posted
        chat = chat_get_for_request(request, chat_id=chat_id)
    form = SendForm(request.POST)
    if not form.is_valid():
        return form_error_response(request, form)
    model_id = form.cleaned_data["model"]
    try:
        target = resolve(actor_get(request), model_id)
    except ResolutionError as error:
        return error_response(request, str(error), status=400)
    user = actor_ensure(request)
    admitted = admission_decide(request, user, target)
    if isinstance(admitted, HttpResponse):
        return admitted
    try:
        turn = message_send(
            user_id=user.id,
            chat=chat,
            text=form.cleaned_data["text"],
            model_id=model_id,
            parent_id=form.cleaned_data["parent"],
            reasoning_effort=form.cleaned_data["reasoning_effort"] or None,
            seen_version=form.cleaned_data["version"],
        )
    except SendRefusedError as error:
        return error_response(request, error.message, status=error.status)
    except TreeError as error:  # e.g. the parent was deleted meanwhile (from another tab)
        return error_response(request, str(error), status=409)
    answer_start(
        user=user,
        chat=turn.chat,
        answer=turn.answer,
        target=target,
        reasoning_effort=form.cleaned_data["reasoning_effort"] or None,
        with_title=turn.chat_created,
    )
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect("chat_detail", turn.chat.id)
    context: dict[str, Any] = {"chat": turn.chat, "question": turn.question, "answer": turn.answer}
    if turn.reshow:  # the page did not show the chat as it is: it shows it again, with the turn
        response = chat_body_response(request, turn.chat)
        return meters_update_append(request=request, response=response, decision=admitted)
    if not turn.chat_created:
        response = render(request, "chats/_turn.html", context)
        return meters_update_append(request=request, response=response, decision=admitted)
    # A new chat answers like a follow-up (the turn, whose stream the page opens at once); the
    # page becomes the chat's (header, URL, composer's target, sidebar) in chat.js once the
    # answer's first text is shown. Its header polls for the title being generated, as the
    # chat's page would (chat_title_awaited, known here).
    context["title_awaited"] = True
    response = render(request, "chats/new.html#chat-started", context)
    return meters_update_append(request=request, response=response, decision=admitted)


@require_POST
def message_stop_view(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    chat = chat_get_for_request(request, chat_id=chat_id)
    message = message_get_for_chat(chat=chat, message_id=message_id)
    generated_elsewhere = message.status == Message.Status.STREAMING and not generation_stop(
        message.id
    )
    # Not generated here: ask the other processes; when none answers, nobody generates it.
    if generated_elsewhere and (
        not relay_enabled() or not async_to_sync(remote_stop)(message_id=message.id)
    ):
        message_stop_orphan(message=message)
    return HttpResponse(status=204)


@require_POST
def message_retry_view(
    request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID
) -> HttpResponse:
    user = actor_get(request)
    chat = chat_get_for_user(user=user, chat_id=chat_id)
    failed = message_get_for_chat(chat=chat, message_id=message_id)
    if failed.status not in RETRYABLE:
        return error_response(
            request, "Only a stopped or failed answer can be retried.", status=409
        )
    assert user is not None
    admitted = call_target_admitted(request, user=user, model_id=failed.model_id)
    if isinstance(admitted, HttpResponse):
        return admitted
    target, decision = admitted
    try:
        answer = message_regenerate(chat=chat, message=failed, model_id=target.model_id)
    except TreeError as error:
        response = error_response(request, str(error), status=409)
    else:
        answer_start(user=user, chat=chat, answer=answer, target=target)
        if not request.htmx:  # type: ignore[attr-defined]
            return redirect("chat_detail", chat.id)
        response = _message_response(request, chat, answer)
        # The page's tree version and composer parent follow the new version.
        state = {"chat": chat, "leaf_id": answer.id, "oob": True}
        response.content += render_to_string("chats/_tree_state.html", state).encode()
    # The bucket was spent from either way: the meters follow.
    return meters_update_append(request=request, response=response, decision=decision)


def _message_response(request: VeroRequest, chat: Chat, message: Message) -> HttpResponse:
    """One message, as the conversation shows it (with its place among its versions)."""
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
    return render(request, "chats/_message.html", context)


@require_GET
def message_detail(request: VeroRequest, chat_id: uuid.UUID, message_id: uuid.UUID) -> HttpResponse:
    chat = chat_get_for_request(request, chat_id=chat_id)
    return _message_response(request, chat, message_get_for_chat(chat=chat, message_id=message_id))


@require_http_methods(["POST"])
def chat_rename_view(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    chat = chat_get_for_request(request, chat_id=chat_id)
    form = RenameForm(request.POST)
    if not form.is_valid():
        return form_error_response(request, form)
    chat_rename(chat=chat, title=form.cleaned_data["title"])
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect("chat_detail", chat.id)
    response = render(request, "chats/chat.html#chat-title-update", {"chat": chat})
    response["HX-Trigger"] = "chats-changed"
    return response


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
    if request.htmx:  # type: ignore[attr-defined]
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
