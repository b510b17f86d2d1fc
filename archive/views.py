"""The archive's pages: browse and search, an entry with its links, create, edit, delete, link
and unlink; and the pin control of a chat's header (a chat's pins, the search-as-you-type
picker, a staged pin on a new chat's page).

Each view reads the request, calls one service or selector and renders. Another user's entry
or chat is 404; a refused input answers 400 (or the error's own status) with the form and its
message, and nothing changed.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import actor_get
from accounts.services import actor_ensure
from archive.errors import ArchiveError
from archive.forms import EntryForm, LinkForm, PinForm
from archive.models import ArchiveEntry
from archive.selectors import (
    chat_pins_for_user,
    entries_search,
    entry_find,
    entry_get_for_user,
    entry_links,
    tags_clean,
    tags_for_user,
)
from archive.services import (
    chat_pin_add,
    chat_pin_remove,
    entry_create,
    entry_delete,
    entry_update,
    link_add,
    link_remove_by_id,
)
from vero.errors import ErrorKind, http_status
from vero.forms import form_first_error
from vero.http import VeroRequest

PICKER_SIZE = 8


def _search_params(request: VeroRequest) -> dict[str, Any]:
    mode = request.GET.get("mode", "any")
    return {
        "query": request.GET.get("q", "").strip()[:500],
        "tags": request.GET.getlist("tag")[:20],
        "tags_mode": mode if mode in ("any", "all") else "any",
    }


@require_GET
def archive_index(request: VeroRequest) -> HttpResponse:
    """Browse (newest first) or search; htmx asks for the results only, or the next rows."""
    user = actor_get(request)
    params = _search_params(request)
    try:
        page = entries_search(user=user, after=request.GET.get("after") or None, **params)
    except ArchiveError as error:
        return render(
            request,
            "archive/index.html",
            {"error": error.message, **params},
            status=http_status(error),
        )
    offered = tags_for_user(user=user)
    chosen = tags_clean(params["tags"])
    context = {
        **params,
        "page": page,
        "after": request.GET.get("after", ""),
        "chosen_tags": chosen,
        # The tags chosen stay offered even when the newest entries do not have them.
        "all_tags": offered + [tag for tag in chosen if tag not in offered],
        "more_query": _more_query(request, page.next_cursor),
    }
    template = "archive/index.html"
    if request.htmx and request.GET.get("after"):
        template += "#entry-rows"
    elif request.htmx and request.htmx.target == "archive-results":
        template += "#results"
    return render(request, template, context)


def _more_query(request: VeroRequest, cursor: str | None) -> str:
    if cursor is None:
        return ""
    query = request.GET.copy()
    query["after"] = cursor
    return query.urlencode()


def _entry_form_response(
    request: VeroRequest, form: EntryForm, *, entry: ArchiveEntry | None, error: str, status: int
) -> HttpResponse:
    return render(
        request, "archive/form.html", {"form": form, "entry": entry, "error": error}, status=status
    )


@require_http_methods(["GET", "POST"])
def entry_new(request: VeroRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "archive/form.html", {"form": EntryForm(), "entry": None})
    form = EntryForm(request.POST)
    if not form.is_valid():
        return _entry_form_response(
            request, form, entry=None, error=form_first_error(form), status=400
        )
    try:
        entry = entry_create(user_id=actor_ensure(request).id, **form.cleaned_data)
    except ArchiveError as error:
        return _entry_form_response(
            request, form, entry=None, error=error.message, status=http_status(error)
        )
    return redirect("archive_entry", entry.id)


@require_GET
def entry_detail(request: VeroRequest, entry_id: uuid.UUID) -> HttpResponse:
    entry = entry_get_for_user(user=actor_get(request), entry_id=entry_id)
    return _detail_response(request, entry, LinkForm())


def _detail_response(
    request: VeroRequest,
    entry: ArchiveEntry,
    link_form: LinkForm,
    *,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        "entry": entry,
        "links": entry_links(entry=entry),
        "link_form": link_form,
        "error": error,
    }
    return render(request, "archive/entry.html", context, status=status)


@require_http_methods(["GET", "POST"])
def entry_edit(request: VeroRequest, entry_id: uuid.UUID) -> HttpResponse:
    entry = entry_get_for_user(user=actor_get(request), entry_id=entry_id)
    if request.method == "GET":
        initial = {"title": entry.title, "body": entry.body, "tags": ", ".join(entry.tags)}
        return render(
            request, "archive/form.html", {"form": EntryForm(initial=initial), "entry": entry}
        )
    form = EntryForm(request.POST)
    if not form.is_valid():
        return _entry_form_response(
            request, form, entry=entry, error=form_first_error(form), status=400
        )
    try:
        entry_update(entry=entry, **form.cleaned_data)
    except ArchiveError as error:
        return _entry_form_response(
            request, form, entry=entry, error=error.message, status=http_status(error)
        )
    return redirect("archive_entry", entry.id)


@require_http_methods(["GET", "POST"])
def entry_delete_view(request: VeroRequest, entry_id: uuid.UUID) -> HttpResponse:
    entry = entry_get_for_user(user=actor_get(request), entry_id=entry_id)
    if request.method == "GET":
        return render(request, "archive/delete.html", {"entry": entry})
    entry_delete(entry=entry)
    return redirect("archive_index")


@require_POST
def link_add_view(request: VeroRequest, entry_id: uuid.UUID) -> HttpResponse:
    user = actor_get(request)
    entry = entry_get_for_user(user=user, entry_id=entry_id)
    form = LinkForm(request.POST)
    if not form.is_valid():
        return _detail_response(request, entry, form, error=form_first_error(form), status=400)
    try:
        target = entry_find(user_id=entry.user_id, slug=form.cleaned_data["target"])
        link_add(
            user_id=entry.user_id,
            source_id=entry.id,
            target_id=target.id,
            kind=form.cleaned_data["kind"] or "related",
            bidirectional=form.cleaned_data["bidirectional"],
        )
    except ArchiveError as error:
        # A target that is not the user's is simply not found: the form says so, on this page.
        status = 400 if error.kind == ErrorKind.NOT_FOUND else http_status(error)
        return _detail_response(request, entry, form, error=error.message, status=status)
    return redirect("archive_entry", entry.id)


@require_POST
def link_remove_view(request: VeroRequest, entry_id: uuid.UUID, link_id: int) -> HttpResponse:
    entry = entry_get_for_user(user=actor_get(request), entry_id=entry_id)
    try:
        link_remove_by_id(user_id=entry.user_id, entry_id=entry.id, link_id=link_id)
    except ArchiveError as error:
        raise Http404(error.message) from error
    return redirect("archive_entry", entry.id)


# ---------------------------------------------------------------------------------------------
# The pin control


def _pins_response(
    request: VeroRequest,
    chat_id: uuid.UUID,
    *,
    error: str = "",
    status: int = 200,
    is_open: bool = True,
) -> HttpResponse:
    """The chat's pin control (a page of its own without htmx, so every link is real)."""
    try:
        pins = chat_pins_for_user(user=actor_get(request), chat_id=chat_id)
    except ArchiveError as missing:
        raise Http404(missing.message) from missing
    template = "archive/_pins.html" if request.htmx else "archive/pins_page.html"
    context = {"chat_id": chat_id, "pins": pins, "error": error, "open": is_open}
    return render(request, template, context, status=status)


@require_GET
def chat_pins(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    return _pins_response(request, chat_id, is_open=False)


@require_POST
def chat_pin_add_view(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    user = actor_get(request)
    form = PinForm(request.POST)
    if user is None:
        raise Http404("No such chat.")
    if not form.is_valid():
        return _pins_response(request, chat_id, error=form_first_error(form), status=400)
    try:
        chat_pin_add(user_id=user.id, chat_id=chat_id, entry_id=form.cleaned_data["entry"])
    except ArchiveError as error:
        raise Http404(error.message) from error
    return _after_pin(request, chat_id)


@require_POST
def chat_pin_remove_view(
    request: VeroRequest, chat_id: uuid.UUID, entry_id: uuid.UUID
) -> HttpResponse:
    user = actor_get(request)
    if user is None:
        raise Http404("No such chat.")
    try:
        chat_pin_remove(user_id=user.id, chat_id=chat_id, entry_id=entry_id)
    except ArchiveError as error:
        raise Http404(error.message) from error
    return _after_pin(request, chat_id)


def _after_pin(request: VeroRequest, chat_id: uuid.UUID) -> HttpResponse:
    if request.htmx:
        return _pins_response(request, chat_id)
    return redirect(reverse("chat_detail", args=[chat_id]))


@require_GET
def pin_picker(request: VeroRequest) -> HttpResponse:
    """The picker's matches as the user types: a chat's (pin now) or a new chat's (stage)."""
    query = request.GET.get("q", "").strip()[:500]
    chat_id = request.GET.get("chat", "")
    page = entries_search(user=actor_get(request), query=query, limit=PICKER_SIZE)
    return render(
        request,
        "archive/_picker_results.html",
        {"entries": page.entries, "chat_id": chat_id, "query": query},
    )


@require_GET
def pin_stage(request: VeroRequest, entry_id: uuid.UUID) -> HttpResponse:
    """A staged pin for a new chat's form: a checkbox the send posts (unticked: not pinned)."""
    entry = entry_get_for_user(user=actor_get(request), entry_id=entry_id)
    return render(request, "archive/_staged_pin.html", {"entry": entry})
