"""The conversation tree in memory: a chat's messages as parents, children and selections.

Pure: no database. Tests and benchmarks build it from rows (`chat_tree_build`; the selector
`chats.selectors.chat_tree_load` reads them) as an oracle for what the set-based writes and
the one-query structure (`chats.structure`) must agree with. `selected_position` is the one
rule every reader and writer follows for a missing or out-of-range selection.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime


def selected_position(stored: int | None, count: int) -> int | None:
    """The position of the child shown among `count` children: the stored selection, or the
    newest child when none is stored or it is out of range (None when there are no children)."""
    if count == 0:
        return None
    if stored is None or not 0 <= stored < count:
        return count - 1
    return stored


@dataclass(frozen=True)
class PathStep:
    """A message on the active path with its place among its siblings ("< index+1/count >")."""

    message_id: uuid.UUID
    index: int
    count: int


@dataclass(frozen=True)
class TreeMapNode:
    """One node of the compact tree map: rows by depth, columns by leaf order."""

    message_id: uuid.UUID
    parent_id: uuid.UUID | None
    depth: int
    index: int  # position among its siblings
    sibling_count: int
    column: int  # leftmost leaf column of its subtree, for drawing
    role: str
    status: str
    on_active_path: bool


@dataclass
class ChatTree:
    """A chat's messages as a tree: structure only (content is loaded for what is shown)."""

    parent_of: dict[uuid.UUID, uuid.UUID | None]
    children: dict[uuid.UUID | None, list[uuid.UUID]]
    selected: dict[uuid.UUID, int | None]
    root_index: int | None
    roles: dict[uuid.UUID, str] = field(default_factory=dict)
    statuses: dict[uuid.UUID, str] = field(default_factory=dict)
    _index_of: dict[uuid.UUID, int] | None = field(default=None, repr=False)

    def _pick(self, options: Sequence[uuid.UUID], index: int | None) -> uuid.UUID:
        return options[selected_position(index, len(options)) or 0]

    def selected_child(self, parent_id: uuid.UUID | None) -> uuid.UUID | None:
        """Return the child shown under `parent_id` (None: the shown first message)."""
        options = self.children.get(parent_id, [])
        if not options:
            return None
        index = self.root_index if parent_id is None else self.selected.get(parent_id)
        return self._pick(options, index)

    def active_path(self) -> list[uuid.UUID]:
        """Return the shown route from a first message to a leaf, following the selections."""
        path: list[uuid.UUID] = []
        options = self.children.get(None, [])
        index = self.root_index
        while options:
            chosen = self._pick(options, index)
            path.append(chosen)
            options = self.children.get(chosen, [])
            index = self.selected.get(chosen)
        return path

    def ancestors(self, message_id: uuid.UUID) -> list[uuid.UUID]:
        """Return the route from a first message down to `message_id`, inclusive."""
        route = [message_id]
        parent = self.parent_of.get(message_id)
        while parent is not None:
            route.append(parent)
            parent = self.parent_of.get(parent)
        route.reverse()
        return route

    def siblings(self, message_id: uuid.UUID) -> list[uuid.UUID]:
        return self.children.get(self.parent_of.get(message_id), [])

    def position(self, message_id: uuid.UUID) -> PathStep:
        """Return where `message_id` sits among its siblings (index and count)."""
        if self._index_of is None:
            # One pass over all children lists instead of a list.index() per lookup.
            self._index_of = {
                child: index
                for options in self.children.values()
                for index, child in enumerate(options)
            }
        return PathStep(
            message_id=message_id,
            index=self._index_of[message_id],
            count=len(self.siblings(message_id)),
        )

    def active_path_steps(self) -> list[PathStep]:
        """Return the active path with each message's sibling position, for "< 2/3 >"."""
        return [self.position(message_id) for message_id in self.active_path()]

    def descendants(self, message_id: uuid.UUID) -> list[uuid.UUID]:
        """Return every message under `message_id` (not itself), parents before children."""
        found: list[uuid.UUID] = []
        stack = list(reversed(self.children.get(message_id, [])))
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(reversed(self.children.get(current, [])))
        return found

    def tree_map(self) -> list[TreeMapNode]:
        """Return every message as a map node in depth-first order, without recursion.

        Leaves take consecutive columns from left to right; a parent sits above the column of
        its first leaf, so a linear run is a straight vertical line.
        """
        active = set(self.active_path())
        order: list[tuple[uuid.UUID, int]] = []  # (message, depth), parents before children
        columns: dict[uuid.UUID, int] = {}
        # Nodes seen since the last leaf: their first leaf is the next one placed.
        waiting: list[uuid.UUID] = []
        leaves = 0
        stack = [(root, 0) for root in reversed(self.children.get(None, []))]
        while stack:
            message_id, depth = stack.pop()
            order.append((message_id, depth))
            waiting.append(message_id)
            kids = self.children.get(message_id, [])
            if kids:
                stack.extend((child, depth + 1) for child in reversed(kids))
                continue
            for waiting_id in waiting:
                columns[waiting_id] = leaves
            waiting.clear()
            leaves += 1
        nodes = []
        for message_id, depth in order:
            step = self.position(message_id)
            nodes.append(
                TreeMapNode(
                    message_id=message_id,
                    parent_id=self.parent_of.get(message_id),
                    depth=depth,
                    index=step.index,
                    sibling_count=step.count,
                    column=columns[message_id],
                    role=self.roles.get(message_id, ""),
                    status=self.statuses.get(message_id, ""),
                    on_active_path=message_id in active,
                )
            )
        return nodes

    def __len__(self) -> int:
        return len(self.parent_of)


def chat_tree_build(
    rows: Iterable[tuple[uuid.UUID, uuid.UUID | None, datetime, int | None, str, str]],
    *,
    root_index: int | None,
) -> ChatTree:
    """Build the tree from (id, parent_id, created_at, selected_child_index, role, status) rows."""
    ordered = sorted(rows, key=lambda row: (row[2], row[0]))  # children in creation order
    tree = ChatTree(parent_of={}, children={}, selected={}, root_index=root_index)
    for message_id, parent_id, _created, selected, role, status in ordered:
        tree.parent_of[message_id] = parent_id
        tree.children.setdefault(parent_id, []).append(message_id)
        tree.selected[message_id] = selected
        tree.roles[message_id] = role
        tree.statuses[message_id] = status
    return tree
