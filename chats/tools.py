"""`read_chat_tree`: the model reads the versions of the chat it is answering in.

A chat is a tree: every edit and regenerate adds a version beside the old one. This tool lets
the model see that tree — where the conversation branched, what each version said, which
versions the current answer builds on — so "compare your two earlier answers" or "continue
from the version where we chose Postgres" can be answered from the real record.

It reads only the chat of the answer that calls it, as that answer's user: the chat is looked
up by both ids, and a message id from anywhere else is "not found", never read. The structure
is one query over narrow columns (`chat_tree_load`); texts are read only for what is returned,
so a 100,000-message chat costs one structure read plus a bounded page.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from chats.models import Chat, Message
from chats.selectors import chat_tree_load
from chats.tree import ChatTree
from tools.registry import StaticSource, Tool, ToolContext, ToolError

PREVIEW_CHARS = 200
READ_CHARS = 12_000
MAX_LISTED = 50


def _chat(context: ToolContext) -> Chat:
    chat = Chat.objects.filter(id=context.chat_id, user_id=context.user_id).first()
    if chat is None:  # deleted while the answer ran
        raise ToolError("This chat no longer exists.", type_="not_found")
    return chat


def _texts(chat: Chat, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Message]:
    return {
        message.id: message
        for message in Message.objects.filter(chat_id=chat.id, id__in=list(ids)).only(
            "id", "parts", "role", "model_id", "status", "created_at"
        )
    }


def _preview(message: Message | None) -> str:
    text = message.text if message is not None else ""
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _describe(
    tree: ChatTree, message_id: uuid.UUID, messages: dict[uuid.UUID, Message], route: set[uuid.UUID]
) -> dict[str, Any]:
    step = tree.position(message_id)
    message = messages.get(message_id)
    described: dict[str, Any] = {
        "message_id": str(message_id),
        "role": tree.roles.get(message_id, ""),
        "version": step.index + 1,
        "versions": step.count,
        "on_current_route": message_id in route,
        "preview": _preview(message),
    }
    if message is not None and message.model_id:
        described["model"] = message.model_id
    if tree.statuses.get(message_id) not in ("", Message.Status.COMPLETE):
        described["status"] = tree.statuses[message_id]
    return described


def _current_route(tree: ChatTree, context: ToolContext) -> list[uuid.UUID]:
    """The route of the answer being written (the page may show another one meanwhile)."""
    if context.message_id in tree.parent_of:
        return tree.ancestors(context.message_id)
    return tree.active_path()


def _branch_points(
    chat: Chat, tree: ChatTree, route: list[uuid.UUID], limit: int
) -> dict[str, Any]:
    on_route = set(route)
    points = [
        parent
        for parent, children in tree.children.items()
        if len(children) > 1 and (parent is None or parent in tree.parent_of)
    ]
    # Those on the current route first, newest first (where the conversation branched last is
    # what a user asks about most); then the others, in the tree's order.
    position = {message_id: index for index, message_id in enumerate(route)}

    def order(parent: uuid.UUID | None) -> tuple[int, int]:
        if parent is None:
            return (0, 1)  # the first messages' versions: the oldest point of every route
        return (0, -position[parent]) if parent in position else (1, 0)

    points.sort(key=order)
    shown = points[:limit]
    wanted = {child for parent in shown for child in tree.children[parent]}
    wanted.update(parent for parent in shown if parent is not None)
    messages = _texts(chat, wanted)
    return {
        "branch_points": [
            {
                "after": None if parent is None else _describe(tree, parent, messages, on_route),
                "versions": [
                    _describe(tree, child, messages, on_route) for child in tree.children[parent]
                ],
            }
            for parent in shown
        ],
        "total_branch_points": len(points),
        "messages_in_chat": len(tree),
    }


def _route(
    chat: Chat, tree: ChatTree, route: list[uuid.UUID], offset: int, limit: int
) -> dict[str, Any]:
    # Offset counts back from the newest message: the recent past is asked about most.
    end = max(len(route) - offset, 0)
    page = route[max(end - limit, 0) : end]
    messages = _texts(chat, page)
    on_route = set(route)
    return {
        "route": [_describe(tree, message_id, messages, on_route) for message_id in page],
        "route_length": len(route),
        "first_position": max(end - limit, 0) + 1,
    }


def _read(chat: Chat, tree: ChatTree, route: list[uuid.UUID], message_id: str) -> dict[str, Any]:
    try:
        wanted = uuid.UUID(message_id)
    except ValueError as error:
        raise ToolError(
            f"{message_id!r} is not a message id.", type_="invalid_arguments"
        ) from error
    if wanted not in tree.parent_of:
        raise ToolError("There is no such message in this chat.", type_="not_found")
    parent = tree.parent_of[wanted]
    children = tree.children.get(wanted, [])
    messages = _texts(chat, [wanted, *children, *([parent] if parent else [])])
    message = messages[wanted]
    text = message.text
    on_route = set(route)
    read = _describe(tree, wanted, messages, on_route)
    read.pop("preview")
    read |= {
        "text": text[:READ_CHARS],
        "created_at": message.created_at.isoformat(),
        "parent": None if parent is None else _describe(tree, parent, messages, on_route),
        "replies": [_describe(tree, child, messages, on_route) for child in children],
        "sibling_ids": [str(sibling) for sibling in tree.siblings(wanted)],
    }
    if len(text) > READ_CHARS:
        read["cut"] = f"the text has {len(text)} characters; the first {READ_CHARS} are shown"
    return read


def _find(
    chat: Chat, tree: ChatTree, route: list[uuid.UUID], query: str, limit: int
) -> dict[str, Any]:
    found = list(
        Message.objects.filter(chat_id=chat.id, parts__icontains=query)
        .exclude(status=Message.Status.STREAMING)
        .order_by("-created_at")
        .only("id", "parts", "role", "model_id", "status", "created_at")[:limit]
    )
    messages = {message.id: message for message in found}
    on_route = set(route)
    return {
        "matches": [_describe(tree, message.id, messages, on_route) for message in found],
        "query": query,
    }


def read_chat_tree(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    chat = _chat(context)
    tree = chat_tree_load(chat=chat)
    route = _current_route(tree, context)
    action = arguments["action"]
    limit = int(arguments.get("limit", 20))
    if action == "branch_points":
        return _branch_points(chat, tree, route, limit)
    if action == "route":
        return _route(chat, tree, route, int(arguments.get("offset", 0)), limit)
    if action == "read":
        if not arguments.get("message_id"):
            raise ToolError("`read` needs a message_id.", type_="invalid_arguments")
        return _read(chat, tree, route, arguments["message_id"])
    if not arguments.get("query"):
        raise ToolError("`find` needs a query.", type_="invalid_arguments")
    return _find(chat, tree, route, arguments["query"], limit)


READ_CHAT_TREE = Tool(
    name="read_chat_tree",
    description=(
        "Read the versions of this conversation. Every edit or regenerate keeps the old "
        "version beside the new one, so the chat is a tree. Actions: `branch_points` lists "
        "where the conversation has several versions, each with a preview; `route` lists the "
        "messages this answer builds on (newest last; `offset` counts back from the newest); "
        "`read` returns one message's full text with its parent, replies and sibling versions; "
        "`find` searches every version's text for `query`. Message ids come from these results."
    ),
    parameters={
        "type": "object",
        "properties": {
            "action": {"enum": ["branch_points", "route", "read", "find"]},
            "message_id": {"type": "string", "maxLength": 64},
            "query": {"type": "string", "minLength": 1, "maxLength": 200},
            "offset": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LISTED, "default": 20},
        },
        "required": ["action"],
        "additionalProperties": False,
    },
    group="chat_tree",
    function=read_chat_tree,
)

chat_tree_source = StaticSource(name="chats", static_tools=(READ_CHAT_TREE,))
