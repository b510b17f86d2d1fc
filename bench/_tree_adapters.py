"""bench_tree.py's adapters: every call into the app's tree API goes through one of these.

Why a module of its own: one adapter per figure, so a change of the app's API is a change here
and nowhere else in the bench. The HTTP figures use the real endpoints and need none.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


def _structure() -> ModuleType | None:
    """The new branch-level structure API (chats.structure) when the app has it."""
    try:
        return importlib.import_module("chats.structure")
    except ImportError:
        return None


def structure_and_route(chat: Any) -> Any:
    """Figure tree_structure_route_*: the chat's structure and its active route.

    New API: chat_structure_load(chat=…).route() (a Route of segments). Today: the whole tree
    (chat_tree_load) and its active path (a list of message ids)."""
    structure = _structure()
    if structure is not None:
        return structure.chat_structure_load(chat=chat).route()
    from chats.selectors import chat_tree_load

    return chat_tree_load(chat=chat).active_path()


def route_comparable(route: Any) -> list[Any]:
    """What `structure_and_route` returned, as runs (branch id, first seq, last seq) for a
    Route, or as message ids for today's list, to compare with the dataset's definition."""
    if hasattr(route, "segments"):
        return [(s.branch_id, s.first.seq, s.last.seq) for s in route.segments]
    return list(route)


def tree_map(chat: Any) -> Any:
    """Figure tree_map_*: the server's work for the map endpoint (GET /c/<id>/map): the
    structure, the route, the runs between branch points, and their HTML."""
    from django.template.loader import render_to_string

    from chats.tree_views import map_nodes

    return render_to_string("chats/_map.html", {"nodes": map_nodes(chat=chat)})


def adjacency_tree_map(rows: list[tuple[Any, ...]], root_index: int | None) -> Any:
    """Baseline of tree_map_*: the same map built in Python from the adjacency table's rows
    (id, parent_id, created_at, selected_child_index, role, status), by the app's pure-Python
    builder. None when the app no longer has it (the baseline is then left out)."""
    try:
        from chats.tree import chat_tree_build
    except ImportError:
        return None
    return chat_tree_build(rows, root_index=root_index).tree_map()


def append(chat: Any, parent: Any) -> Any:
    """Figure tree_append_*: the whole append as a client of the service does it
    (transaction, chat lock, insert, selection, commit)."""
    from django.db import transaction

    from chats.models import Message
    from chats.tree_services import chat_lock, message_append

    with transaction.atomic():
        chat_lock(chat_id=chat.id)
        return message_append(
            chat=chat,
            parent=parent,
            role=Message.Role.USER,
            parts=[{"type": "text", "text": "One more question about the same subject."}],
        )


def delete_single(chat: Any, message: Any) -> Any:
    """Figure tree_delete_single_rows_written: delete only this message (children move up)."""
    from chats.delete_services import message_delete_single

    return message_delete_single(chat=chat, message=message)
