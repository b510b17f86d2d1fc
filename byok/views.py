"""The Keys & endpoints page: a user's own provider keys, endpoints and models.

Every action answers with the whole panel (one partial), so the page never shows a stale row;
without htmx, writes redirect back to the page and errors render it with the message.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.selectors import actor_get
from accounts.services import actor_ensure
from byok import probes
from byok.forms import EndpointForm, KeyForm, ModelAddForm
from byok.models import PLATFORM_KIND_CHOICES, PLATFORM_KINDS, UserCustomProvider, UserProviderKey
from byok.selectors import (
    byok_endpoint_get_for_user,
    byok_endpoints_for_user,
    byok_key_get_for_user,
    byok_keys_for_user,
    byok_model_get_for_user,
    byok_models_for_user,
    registry_capabilities,
)
from byok.services import (
    ByokInputError,
    byok_endpoint_create,
    byok_endpoint_delete,
    byok_key_delete,
    byok_key_set,
    byok_model_add,
    byok_model_delete,
)
from models_registry.calls import LLMError, RemoteModel
from vero.errors import http_status
from vero.forms import form_first_error
from vero.http import VeroRequest

TEMPLATE = "byok/keys.html"


def _context(user: User | None, **extra: Any) -> dict[str, Any]:
    keys = {key.provider: key for key in byok_keys_for_user(user=user)}
    return {
        "providers": [
            {"kind": kind, "label": label, "key": keys.get(kind)}
            for kind, label in PLATFORM_KIND_CHOICES
        ],
        "endpoints": byok_endpoints_for_user(user=user),
        "byok_models": byok_models_for_user(user=user),
        "endpoint_form": EndpointForm(),
        **extra,
    }


def _panel(
    request: VeroRequest, *, status: int = 200, notice: str = "", error: str = "", **extra: Any
) -> HttpResponse:
    """Render the panel (htmx) or the whole page, showing `notice` or `error`."""
    template = TEMPLATE + ("#byok-panel" if request.htmx else "")
    context = _context(actor_get(request), notice=notice, error=error, **extra)
    return render(request, template, context, status=status)


def _done(request: VeroRequest, notice: str) -> HttpResponse:
    """Answer a successful write: the fresh panel for htmx, else back to the page."""
    if request.htmx:
        return _panel(request, notice=notice)
    messages.success(request, notice)
    return redirect("byok_settings")


def _platform_kind(provider: str) -> str:
    if provider not in PLATFORM_KINDS:
        raise Http404("No such provider.")
    return provider


def _label(provider: str) -> str:
    return dict(PLATFORM_KIND_CHOICES)[provider]


@require_GET
def byok_settings(request: VeroRequest) -> HttpResponse:
    return _panel(request)


# -- platform keys ------------------------------------------------------------------------------


@require_POST
def key_set(request: VeroRequest) -> HttpResponse:
    form = KeyForm(request.POST)
    if not form.is_valid():
        return _panel(request, status=400, error=form_first_error(form))
    provider = form.cleaned_data["provider"]
    try:
        byok_key_set(
            user=actor_ensure(request), provider=provider, api_key=form.cleaned_data["api_key"]
        )
    except ByokInputError as error:
        return _panel(request, status=http_status(error), error=error.message)
    return _done(request, f"Your {_label(provider)} key is saved.")


@require_POST
def key_delete(request: VeroRequest, provider: str) -> HttpResponse:
    key = byok_key_get_for_user(user=actor_get(request), provider=_platform_kind(provider))
    byok_key_delete(key=key)
    return _done(request, f"Your {_label(provider)} key and its models are deleted.")


@require_POST
def key_test(request: VeroRequest, provider: str) -> HttpResponse:
    key = byok_key_get_for_user(user=actor_get(request), provider=_platform_kind(provider))
    try:
        report = probes.key_test(key=key)
    except LLMError as error:
        return _panel(request, error=f"{_label(provider)}: {error.message}")
    return _panel(request, notice=f"{_label(provider)}: {report}")


def _listing(
    *, remote: list[RemoteModel], key: UserProviderKey | None = None, endpoint: Any = None
) -> dict[str, Any]:
    capabilities = {}
    if key is not None:
        capabilities = registry_capabilities(
            kind=key.provider, provider_model_ids=[model.id for model in remote]
        )
    return {
        "source_key": key,
        "source_endpoint": endpoint,
        "remote": [
            {"model": model, "capabilities": capabilities.get(model.id)} for model in remote
        ],
        "model_form": ModelAddForm(),
    }


def _model_add(
    request: VeroRequest,
    *,
    key: UserProviderKey | None = None,
    endpoint: UserCustomProvider | None = None,
) -> HttpResponse:
    form = ModelAddForm(request.POST)
    if not form.is_valid():
        return _panel(request, status=400, error=form_first_error(form))
    data = form.cleaned_data
    try:
        model = byok_model_add(
            user=actor_ensure(request),
            key=key,
            endpoint=endpoint,
            provider_model_id=data["provider_model_id"],
            display_name=data["display_name"],
            input_modalities=data["input_modalities"],
            supports_tools=data["supports_tools"],
            supports_reasoning=data["supports_reasoning"],
            context_window=data["context_window"],
            max_output_tokens=data["max_output_tokens"],
        )
    except ByokInputError as error:
        return _panel(request, status=http_status(error), error=error.message)
    return _done(request, f"{model.display_name} is added to your models.")


@require_http_methods(["GET", "POST"])
def key_models(request: VeroRequest, provider: str) -> HttpResponse:
    """GET: the models the provider lists for the key; POST: add one of them (or any id)."""
    key = byok_key_get_for_user(user=actor_get(request), provider=_platform_kind(provider))
    if request.method == "POST":
        return _model_add(request, key=key)
    try:
        remote = probes.key_models_list(key=key)
    except LLMError as error:
        return _panel(request, error=error.message, **_listing(remote=[], key=key))
    return _panel(request, **_listing(remote=remote, key=key))


# -- custom endpoints ---------------------------------------------------------------------------


@require_POST
def endpoint_create(request: VeroRequest) -> HttpResponse:
    form = EndpointForm(request.POST)
    if not form.is_valid():
        return _panel(request, status=400, error=form_first_error(form), endpoint_form=form)
    data = form.cleaned_data
    try:
        endpoint = byok_endpoint_create(
            user=actor_ensure(request),
            name=data["name"],
            slug=data["slug"],
            base_url=data["base_url"],
            api_key=data["api_key"],
        )
    except ByokInputError as error:
        # The form comes back filled in (but for the key, never rendered back) to be fixed.
        return _panel(request, status=http_status(error), error=error.message, endpoint_form=form)
    return _done(request, f"{endpoint.name} is added; list its models to use them.")


@require_POST
def endpoint_delete(request: VeroRequest, slug: str) -> HttpResponse:
    endpoint = byok_endpoint_get_for_user(user=actor_get(request), slug=slug)
    byok_endpoint_delete(endpoint=endpoint)
    return _done(request, f"{endpoint.name} and its models are deleted.")


@require_POST
def endpoint_test(request: VeroRequest, slug: str) -> HttpResponse:
    endpoint = byok_endpoint_get_for_user(user=actor_get(request), slug=slug)
    try:
        report = probes.endpoint_test(endpoint=endpoint)
    except LLMError as error:
        return _panel(request, error=f"{endpoint.name}: {error.message}")
    return _panel(request, notice=report)


@require_http_methods(["GET", "POST"])
def endpoint_models(request: VeroRequest, slug: str) -> HttpResponse:
    """GET: the models the endpoint lists (through the URL guard); POST: add one."""
    endpoint = byok_endpoint_get_for_user(user=actor_get(request), slug=slug)
    if request.method == "POST":
        return _model_add(request, endpoint=endpoint)
    try:
        remote = probes.endpoint_models_list(endpoint=endpoint)
    except LLMError as error:
        return _panel(
            request,
            error=f"{endpoint.name}: {error.message}",
            **_listing(remote=[], endpoint=endpoint),
        )
    return _panel(request, **_listing(remote=remote, endpoint=endpoint))


# -- models -------------------------------------------------------------------------------------


@require_POST
def model_delete(request: VeroRequest, model_pk: int) -> HttpResponse:
    model = byok_model_get_for_user(user=actor_get(request), model_pk=model_pk)
    byok_model_delete(model=model)
    return _done(request, f"{model.display_name} is removed from your models.")
