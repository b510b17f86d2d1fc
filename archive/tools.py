"""The archive's tools: the model reads, writes and pins the user's archive as the user would.

`read_archive` (an entry by slug with its links, or a search), `write_archive` (create, update
with precise text edits, tags, links, delete) and `manage_chat_pins` (the current chat's pins).
Every call acts as `context.user_id` through the same services and selectors as the pages, so
the model can do exactly what the user can, no more; an expected failure (not found, a text to
edit that is not there, a bad tag) is a `ToolError` the model reads and can act on. The
functions are sync (ORM): the registry runs them off the generation loop.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from archive.errors import ArchiveError
from archive.models import ArchiveEntry
from archive.selectors import chat_owned, entries_search, entry_find, entry_links
from archive.services import (
    BODY_MAX_LENGTH,
    chat_pin_add,
    chat_pin_remove,
    entry_create,
    entry_delete,
    entry_update,
    link_add,
    link_remove,
)
from tools.registry import StaticSource, Tool, ToolContext, ToolError, ToolFunction
from vero.errors import ErrorKind

GROUP = "archive"
_ERROR_TYPES = {
    ErrorKind.NOT_FOUND: "not_found",
    ErrorKind.CONFLICT: "conflict",
    ErrorKind.INVALID: "invalid_arguments",
}


def _archive_errors(function: ToolFunction) -> ToolFunction:
    """The archive's refusals become ToolErrors with the same sentence."""

    @wraps(function)
    def run(context: ToolContext, arguments: dict[str, Any]) -> Any:
        try:
            return function(context, arguments)
        except ArchiveError as error:
            raise ToolError(
                error.message, type_=_ERROR_TYPES.get(error.kind, "tool_error")
            ) from error

    return run


def _entry_summary(entry: ArchiveEntry) -> dict[str, Any]:
    return {"slug": entry.slug, "title": entry.title, "tags": list(entry.tags)}


def _entry_whole(entry: ArchiveEntry) -> dict[str, Any]:
    return {
        **_entry_summary(entry),
        "body": entry.body,
        "created_at": entry.created_at.isoformat(),
        "updated_at": entry.updated_at.isoformat(),
    }


# ---------------------------------------------------------------------------------------------
# read_archive


@_archive_errors
def read_archive(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    """One entry by slug, with its links; or a page of a search (by query and tags)."""
    if arguments.get("slug"):
        entry = entry_find(user_id=context.user_id, slug=arguments["slug"])
        links = [
            {
                "direction": "to" if link.outgoing else "from",
                "kind": link.kind,
                "bidirectional": link.bidirectional,
                "slug": link.other_slug,
                "title": link.other_title,
            }
            for link in entry_links(entry=entry)
        ]
        return {"entry": _entry_whole(entry), "links": links}
    user = User.objects.filter(id=context.user_id).first()
    page = entries_search(
        user=user,
        query=arguments.get("query", ""),
        tags=arguments.get("tags", []),
        tags_mode=arguments.get("tags_mode", "any"),
        after=arguments.get("cursor"),
        limit=int(settings.ARCHIVE_PAGE_SIZE),
    )
    return {
        "entries": [
            {**_entry_summary(entry), "excerpt": entry.excerpt}  # type: ignore[attr-defined]
            for entry in page.entries
        ],
        "next_cursor": page.next_cursor,
    }


READ_TOOL = Tool(
    name="read_archive",
    description=(
        "Read the user's archive of notes. With `slug`: that entry whole, with its links. "
        'Otherwise search: `query` (web-search syntax: words, "a phrase", -excluded, or) best '
        "match first, and/or `tags` (entries with any or all of them); neither lists the newest. "
        "A page has `next_cursor` when there is more: pass it as `cursor` with the same search."
    ),
    parameters={
        "type": "object",
        "properties": {
            "slug": {"type": "string", "minLength": 1, "maxLength": 120},
            "query": {"type": "string", "maxLength": 500},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 20},
            "tags_mode": {"enum": ["any", "all"], "default": "any"},
            "cursor": {"type": "string", "maxLength": 200},
        },
        "additionalProperties": False,
    },
    group=GROUP,
    function=read_archive,
)


# ---------------------------------------------------------------------------------------------
# write_archive


def _occurrences(body: str, find: str, occurrence: str) -> list[int]:
    """Where `find` is in `body` (the first, or every one not overlapping), or ToolError."""
    if not find:
        raise ToolError("An edit needs the text to `find`.", type_="invalid_arguments")
    positions: list[int] = []
    start = body.find(find)
    while start != -1:
        positions.append(start)
        if occurrence == "first":
            break
        start = body.find(find, start + len(find))
    if not positions:
        raise ToolError(
            f"The text {find[:80]!r} is not in the entry; nothing was changed.",
            type_="not_found",
        )
    return positions


def body_edit(body: str, edit: dict[str, Any]) -> str:
    """`body` after one edit: replace, append, insert_before, insert_after or remove."""
    op = edit["op"]
    text = edit.get("text", "")
    if op == "append":
        separator = "\n" if body and not body.endswith("\n") else ""
        return body + separator + text
    if op in ("replace", "insert_before", "insert_after") and "text" not in edit:
        raise ToolError(f"The {op} edit needs `text`.", type_="invalid_arguments")
    find = edit.get("find", "")
    positions = _occurrences(body, find, edit.get("occurrence", "first"))
    pieces = []
    last = 0
    for position in positions:
        end = position + len(find)
        replacement = {
            "replace": text,
            "remove": "",
            "insert_before": text + find,
            "insert_after": find + text,
        }[op]
        pieces += [body[last:position], replacement]
        last = end
    pieces.append(body[last:])
    return "".join(pieces)


def _update(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    entry = entry_find(user_id=context.user_id, slug=arguments["slug"])
    body = arguments.get("body", entry.body)
    for edit in arguments.get("edits", []):
        body = body_edit(body, edit)
    tags: list[str] | None = None
    if any(key in arguments for key in ("tags", "tags_add", "tags_remove")):
        tags = list(arguments.get("tags", entry.tags))
        tags += [tag for tag in arguments.get("tags_add", []) if tag not in tags]
        removed = {" ".join(tag.split()).lower() for tag in arguments.get("tags_remove", [])}
        tags = [tag for tag in tags if " ".join(tag.split()).lower() not in removed]
    if len(body) > BODY_MAX_LENGTH:
        raise ToolError(
            f"The edited text would be too long: at most {BODY_MAX_LENGTH:,} characters.",
            type_="invalid_arguments",
        )
    entry = entry_update(
        entry=entry,
        title=arguments.get("title"),
        body=body if body != entry.body else None,
        tags=tags,
    )
    return {"updated": _entry_whole(entry)}


def _link(context: ToolContext, arguments: dict[str, Any], *, add: bool) -> dict[str, Any]:
    if not arguments.get("target"):
        raise ToolError("Say which entry to link with in `target`.", type_="invalid_arguments")
    source = entry_find(user_id=context.user_id, slug=arguments["slug"])
    target = entry_find(user_id=context.user_id, slug=arguments["target"])
    if add:
        link = link_add(
            user_id=context.user_id,
            source_id=source.id,
            target_id=target.id,
            kind=arguments.get("kind", "related"),
            bidirectional=arguments.get("bidirectional", True),
        )
        return {"linked": {"from": source.slug, "to": target.slug, "kind": link.kind}}
    removed = link_remove(
        user_id=context.user_id,
        source_id=source.id,
        target_id=target.id,
        kind=arguments.get("kind"),
    )
    return {"unlinked": {"from": source.slug, "to": target.slug, "links_removed": removed}}


@_archive_errors
def write_archive(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    """Create, update (edits, tags), link, unlink or delete the user's entries."""
    action = arguments["action"]
    if action == "create":
        if "title" not in arguments:
            raise ToolError("A new entry needs a `title`.", type_="invalid_arguments")
        entry = entry_create(
            user_id=context.user_id,
            title=arguments["title"],
            body=arguments.get("body", ""),
            tags=arguments.get("tags", []),
        )
        return {"created": _entry_whole(entry)}
    if not arguments.get("slug"):
        raise ToolError(f"Say which entry to {action} in `slug`.", type_="invalid_arguments")
    if action == "update":
        with transaction.atomic():
            return _update(context, arguments)
    if action in ("link", "unlink"):
        return _link(context, arguments, add=action == "link")
    entry = entry_find(user_id=context.user_id, slug=arguments["slug"])
    entry_delete(entry=entry)
    return {"deleted": entry.slug}


_EDIT_SCHEMA = {
    "type": "object",
    "properties": {
        "op": {"enum": ["replace", "append", "insert_before", "insert_after", "remove"]},
        "find": {"type": "string", "minLength": 1},
        "text": {"type": "string"},
        "occurrence": {"enum": ["first", "all"], "default": "first"},
    },
    "required": ["op"],
    "additionalProperties": False,
}
_TAGS_SCHEMA = {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 20}

WRITE_TOOL = Tool(
    name="write_archive",
    description=(
        "Write the user's archive of notes. `action`: `create` (title, body, tags; the slug "
        "comes from the title and is returned); `update` an entry by `slug`: `title`, a whole "
        "new `body`, or `edits` applied in order (replace / insert_before / insert_after / "
        "remove the text `find`, its first or all occurrences; append `text` at the end), "
        "`tags` to set them, `tags_add`, `tags_remove`; `link` / `unlink` `slug` with "
        "`target` (a `kind`, default related); `delete` by `slug`. An edit whose `find` is not "
        "in the entry changes nothing and says so."
    ),
    parameters={
        "type": "object",
        "properties": {
            "action": {"enum": ["create", "update", "delete", "link", "unlink"]},
            "slug": {"type": "string", "minLength": 1, "maxLength": 120},
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "body": {"type": "string"},
            "edits": {"type": "array", "items": _EDIT_SCHEMA, "maxItems": 50},
            "tags": _TAGS_SCHEMA,
            "tags_add": _TAGS_SCHEMA,
            "tags_remove": _TAGS_SCHEMA,
            "target": {"type": "string", "minLength": 1, "maxLength": 120},
            "kind": {"type": "string", "minLength": 1, "maxLength": 50},
            "bidirectional": {"type": "boolean", "default": True},
        },
        "required": ["action"],
        "additionalProperties": False,
    },
    group=GROUP,
    function=write_archive,
)


# ---------------------------------------------------------------------------------------------
# manage_chat_pins


@_archive_errors
def manage_chat_pins(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    """List, pin or unpin entries on the current chat (their text joins its system prompt)."""
    action = arguments["action"]
    if not chat_owned(user_id=context.user_id, chat_id=context.chat_id):
        raise ToolError("This chat is not found.", type_="not_found")
    if action != "list":
        if not arguments.get("slug"):
            raise ToolError(f"Say which entry to {action} in `slug`.", type_="invalid_arguments")
        entry = entry_find(user_id=context.user_id, slug=arguments["slug"])
        if action == "pin":
            created = chat_pin_add(
                user_id=context.user_id, chat_id=context.chat_id, entry_id=entry.id
            )
            return {"pinned": entry.slug, "already_pinned": not created}
        chat_pin_remove(user_id=context.user_id, chat_id=context.chat_id, entry_id=entry.id)
        return {"unpinned": entry.slug}
    pins = ArchiveEntry.objects.filter(pins__chat_id=context.chat_id, user_id=context.user_id)
    ordered = pins.order_by("pins__created_at", "pins__id").only("slug", "title", "tags")
    return {"pins": [_entry_summary(entry) for entry in ordered]}


PINS_TOOL = Tool(
    name="manage_chat_pins",
    description=(
        "The archive entries pinned to this chat: their text is in your system prompt under "
        '"Pinned memory" from the next answer on. `action`: `list`, `pin` or `unpin` (by '
        "`slug`)."
    ),
    parameters={
        "type": "object",
        "properties": {
            "action": {"enum": ["list", "pin", "unpin"]},
            "slug": {"type": "string", "minLength": 1, "maxLength": 120},
        },
        "required": ["action"],
        "additionalProperties": False,
    },
    group=GROUP,
    function=manage_chat_pins,
)

archive_source = StaticSource(name="archive", static_tools=(READ_TOOL, WRITE_TOOL, PINS_TOOL))
