"""Random sequences of tree operations against an in-memory reference tree (Hypothesis).

After every step, every chat in play is checked whole (branch structure, parent links,
selections, active path, model context) and compared with the reference: the same children in
the same order, the same selections, texts, roles and statuses. Forks are chats in play too, so
an operation on a source that touched a fork (or the reverse) fails the comparison.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts.models import User
from chats.delete_services import message_delete_single, message_delete_subtree, message_delete_turn
from chats.errors import MessageNotInChat, MessageStreaming, SelectionOutOfRange, WrongRole
from chats.fork_services import chat_fork
from chats.models import Chat, ChatDeletion, Message
from chats.version_services import (
    branch_select,
    message_edit_assistant,
    message_edit_in_place,
    message_edit_user,
    message_regenerate,
    message_select,
)
from tests.chats.branching_support import check_trees, notifications, say

pytestmark = pytest.mark.django_db

MAX_CHATS = 4


@dataclass
class RefNode:
    parent: uuid.UUID | None
    role: str
    text: str
    status: str
    order: int  # creation order: children are listed in it


@dataclass
class RefChat:
    """What a chat must look like: the tree as plain dicts, selections as logical children."""

    nodes: dict[uuid.UUID, RefNode] = field(default_factory=dict)
    children: dict[uuid.UUID | None, list[uuid.UUID]] = field(default_factory=dict)
    selected: dict[uuid.UUID | None, uuid.UUID] = field(default_factory=dict)

    def add(self, message_id: uuid.UUID, node: RefNode) -> None:
        self.nodes[message_id] = node
        self.children.setdefault(node.parent, []).append(message_id)
        self.selected[node.parent] = message_id

    def route(self, message_id: uuid.UUID) -> list[uuid.UUID]:
        route: list[uuid.UUID] = []
        current: uuid.UUID | None = message_id
        while current is not None:
            route.append(current)
            current = self.nodes[current].parent
        return route[::-1]

    def select(self, message_id: uuid.UUID) -> None:
        for step in self.route(message_id):
            self.selected[self.nodes[step].parent] = step

    def _drop_subtree(self, message_id: uuid.UUID) -> None:
        stack = [message_id]
        while stack:
            current = stack.pop()
            stack.extend(self.children.pop(current, []))
            self.selected.pop(current, None)
            del self.nodes[current]

    def _reselect(self, parent: uuid.UUID | None, gone: uuid.UUID, position: int) -> None:
        # The product rule: the shown version stays shown; if it was the deleted one, its
        # neighbour at the same position (or the previous one when it was the last).
        options = self.children.get(parent, [])
        if not options:
            self.children.pop(parent, None)
            self.selected.pop(parent, None)
        elif self.selected.get(parent) == gone:
            self.selected[parent] = options[min(position, len(options) - 1)]

    def delete_subtree(self, message_id: uuid.UUID) -> None:
        parent = self.nodes[message_id].parent
        position = self.children[parent].index(message_id)
        self.children[parent].remove(message_id)
        self._drop_subtree(message_id)
        self._reselect(parent, message_id, position)

    def delete_turn(self, message_id: uuid.UUID) -> None:
        parent = self.nodes[message_id].parent
        for sibling in list(self.children[parent]):
            self._drop_subtree(sibling)
        del self.children[parent]
        self.selected.pop(parent, None)

    def delete_single(self, message_id: uuid.UUID) -> None:
        node = self.nodes.pop(message_id)
        parent = node.parent
        position = self.children[parent].index(message_id)
        kids = self.children.pop(message_id, [])
        shown_kid = self.selected.pop(message_id, None)
        for kid in kids:
            self.nodes[kid].parent = parent
        merged = [child for child in self.children[parent] if child != message_id] + kids
        merged.sort(key=lambda child: self.nodes[child].order)
        self.children[parent] = merged
        if self.selected.get(parent) == message_id and shown_kid is not None:
            self.selected[parent] = shown_kid
        else:
            self._reselect(parent, message_id, position)

    def by_order(self) -> list[uuid.UUID]:
        return sorted(self.nodes, key=lambda message_id: self.nodes[message_id].order)


class TreeMachine(RuleBasedStateMachine):
    user: User

    def __init__(self) -> None:
        super().__init__()
        # One savepoint per example, rolled back in teardown: fast, and examples never meet.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.chats: dict[uuid.UUID, RefChat] = {}
        # Services re-read what they change under the lock, so instances may be kept.
        self.instances: dict[uuid.UUID, Chat] = {}
        self.counter = itertools.count()

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- helpers ---

    def _text(self) -> str:
        return f"t{next(self.counter)}"

    def _add(self, ref: RefChat, message: Message, text: str, *, shown: bool = False) -> None:
        """Add to the reference; `shown`: the service selected the whole route to it (every
        version and regeneration is shown, whatever was selected above it)."""
        ref.add(
            message.id,
            RefNode(
                parent=message.parent_id,
                role=message.role,
                text=text,
                status=message.status,
                order=next(self.counter),
            ),
        )
        if shown:
            for step in ref.route(message.id):
                ref.selected[ref.nodes[step].parent] = step

    def _chat(self, data: st.DataObject) -> tuple[Chat, RefChat]:
        chat_id = data.draw(st.sampled_from(list(self.chats)), label="chat")
        return self.instances[chat_id], self.chats[chat_id]

    def _message(
        self, data: st.DataObject, *, role: str | None = None
    ) -> tuple[Chat, RefChat, Message] | None:
        chat, ref = self._chat(data)
        candidates = [m for m in ref.by_order() if role is None or ref.nodes[m].role == role]
        if not candidates:
            return None
        message_id = data.draw(st.sampled_from(candidates), label="message")
        # A bare instance, as from a form: the services must re-read it under the lock.
        return chat, ref, Message(id=message_id, chat_id=chat.id)

    def _deleted(self, chat: Chat, ref: RefChat, chat_deleted: bool) -> None:
        assert chat_deleted == (not ref.nodes)
        if chat_deleted:
            del self.chats[chat.id]
            del self.instances[chat.id]
            assert not Chat.objects.filter(id=chat.id).exists()
            assert ChatDeletion.objects.filter(chat_id=chat.id).exists()

    # --- rules ---

    @initialize()
    def new_chat(self) -> None:
        chat = Chat.objects.create(user=self.user, title="random")
        self.chats[chat.id] = RefChat()
        self.instances[chat.id] = chat

    @precondition(lambda self: len(self.chats) < 2)
    @rule()
    def another_chat(self) -> None:
        self.new_chat()

    @precondition(lambda self: self.chats)
    @rule(data=st.data(), role=st.sampled_from(["user", "assistant"]))
    def append(self, data: st.DataObject, role: str) -> None:
        chat, ref = self._chat(data)
        parent_id = data.draw(st.sampled_from([None, *ref.by_order()]), label="parent")
        parent = Message.objects.get(id=parent_id) if parent_id else None
        text = self._text()
        self._add(ref, say(chat, parent, text, role=role), text)

    @precondition(lambda self: self.chats)
    @rule(data=st.data())
    def alternative(self, data: st.DataObject) -> None:
        """Append beside existing children: the move that allocates branch labels."""
        chat, ref = self._chat(data)
        parents = [parent for parent in [None, *ref.by_order()] if ref.children.get(parent)]
        if not parents:
            return
        parent_id = data.draw(st.sampled_from(parents), label="parent")
        parent = Message.objects.get(id=parent_id) if parent_id else None
        text = self._text()
        self._add(ref, say(chat, parent, text), text)

    @precondition(lambda self: self.chats)
    @rule(data=st.data())
    def edit_user(self, data: st.DataObject) -> None:
        picked = self._message(data, role="user")
        if picked is None:
            return
        chat, ref, message = picked
        text = self._text()
        with notifications() as sent:
            edit = message_edit_user(chat=chat, message=message, text=text, model_id="m")
        assert len(sent) == 1
        self._add(ref, edit.version, text)
        self._add(ref, edit.answer, "", shown=True)

    @precondition(lambda self: self.chats)
    @rule(data=st.data())
    def edit_assistant(self, data: st.DataObject) -> None:
        picked = self._message(data, role="assistant")
        if picked is None:
            return
        chat, ref, message = picked
        text = self._text()
        with notifications() as sent:
            version = message_edit_assistant(chat=chat, message=message, text=text)
        assert len(sent) == 1
        self._add(ref, version, text, shown=True)

    @precondition(lambda self: self.chats)
    @rule(data=st.data())
    def edit_in_place(self, data: st.DataObject) -> None:
        picked = self._message(data)
        if picked is None:
            return
        _chat, ref, message = picked
        text = self._text()
        with notifications() as sent:
            if ref.nodes[message.id].status == Message.Status.STREAMING:
                with pytest.raises(MessageStreaming):
                    message_edit_in_place(message=message, text=text)
                assert sent == []
                return
            message_edit_in_place(message=message, text=text)
        assert len(sent) == 1
        ref.nodes[message.id].text = text

    @precondition(lambda self: self.chats)
    @rule(data=st.data())
    def regenerate(self, data: st.DataObject) -> None:
        picked = self._message(data, role="assistant")
        if picked is None:
            return
        chat, ref, message = picked
        if ref.nodes[message.id].parent is None:
            with pytest.raises(WrongRole):
                message_regenerate(chat=chat, message=message)
            return
        with notifications() as sent:
            answer = message_regenerate(chat=chat, message=message, model_id="other")
        assert len(sent) == 1
        self._add(ref, answer, "", shown=True)

    @precondition(lambda self: self.chats)
    @rule(data=st.data())
    def select(self, data: st.DataObject) -> None:
        picked = self._message(data)
        if picked is None:
            return
        chat, ref, message = picked
        with notifications() as sent:
            message_select(chat=chat, message=message)
        assert len(sent) == 1
        ref.select(message.id)

    @precondition(lambda self: self.chats)
    @rule(data=st.data(), index=st.integers(min_value=-1, max_value=4))
    def select_by_index(self, data: st.DataObject, index: int) -> None:
        chat, ref = self._chat(data)
        parent_id = data.draw(st.sampled_from([None, *ref.by_order()]), label="parent")
        options = ref.children.get(parent_id, [])
        with notifications() as sent:
            if not 0 <= index < len(options):
                with pytest.raises(SelectionOutOfRange):
                    branch_select(chat=chat, parent_id=parent_id, index=index)
                assert sent == []
                return
            chosen = branch_select(chat=chat, parent_id=parent_id, index=index)
        assert len(sent) == 1 and chosen == options[index]
        ref.selected[parent_id] = chosen

    @precondition(lambda self: self.chats)
    @rule(data=st.data(), kind=st.sampled_from(["subtree", "turn", "single"]))
    def delete(self, data: st.DataObject, kind: str) -> None:
        picked = self._message(data)
        if picked is None:
            return
        chat, ref, message = picked
        service = {
            "subtree": message_delete_subtree,
            "turn": message_delete_turn,
            "single": message_delete_single,
        }[kind]
        with notifications() as sent:
            outcome = service(chat=chat, message=message)
        assert len(sent) == 1
        assert sent[0]["kind"] == ("chat.deleted" if outcome.chat_deleted else "tree.changed")
        getattr(ref, f"delete_{kind}")(message.id)
        self._deleted(chat, ref, outcome.chat_deleted)

    @precondition(lambda self: self.chats)
    @rule(data=st.data())
    def delete_an_older_version(self, data: st.DataObject) -> None:
        """Delete a version that has a newer sibling: frees a label in the middle."""
        chat, ref = self._chat(data)
        older = [m for m in ref.by_order() if ref.children[ref.nodes[m].parent][-1] != m]
        if not older:
            return
        message_id = data.draw(st.sampled_from(older), label="message")
        with notifications() as sent:
            outcome = message_delete_subtree(
                chat=chat, message=Message(id=message_id, chat_id=chat.id)
            )
        assert len(sent) == 1 and not outcome.chat_deleted
        ref.delete_subtree(message_id)

    @precondition(lambda self: 0 < len(self.chats) < MAX_CHATS)
    @rule(data=st.data(), edited=st.booleans())
    def fork(self, data: st.DataObject, edited: bool) -> None:
        picked = self._message(data)
        if picked is None:
            return
        chat, ref, message = picked
        text = self._text() if edited else None
        with notifications() as sent:
            result = chat_fork(chat=chat, message=message, edited_text=text)
        assert len(sent) == 1 and sent[0]["kind"] == "chat.created"
        assert result.chat.fork_depth == chat.fork_depth + 1
        assert result.chat.parent_chat_id == chat.id
        route = ref.route(message.id)
        if edited:
            route = route[:-1]
        copy = RefChat()
        chain = Message.objects.filter(chat_id=result.chat.id).order_by("seq")
        copied = list(chain.values_list("id", flat=True))[: len(route)]
        assert len(copied) == len(route)
        for position, (source_id, copy_id) in enumerate(zip(route, copied, strict=True)):
            node = ref.nodes[source_id]
            status = "interrupted" if node.status == Message.Status.STREAMING else node.status
            copy.add(
                copy_id,
                RefNode(
                    parent=copied[position - 1] if position else None,
                    role=node.role,
                    text=node.text,
                    status=status,
                    order=next(self.counter),
                ),
            )
        if edited:
            assert result.message is not None and text is not None
            self._add(copy, result.message, text)
            if result.answer is not None:
                self._add(copy, result.answer, "")
        self.chats[result.chat.id] = copy
        self.instances[result.chat.id] = result.chat

    @precondition(lambda self: len(self.chats) >= 2)
    @rule(data=st.data())
    def a_message_of_another_chat_is_refused(self, data: st.DataObject) -> None:
        picked = self._message(data)
        if picked is None:
            return
        source, _ref, message = picked
        other_id = data.draw(st.sampled_from([c for c in self.chats if c != source.id]))
        other = self.instances[other_id]
        with notifications() as sent, pytest.raises(MessageNotInChat):
            message_delete_single(chat=other, message=message)
        assert sent == []

    # --- the check after every step ---

    @invariant()
    def every_chat_matches_its_reference(self) -> None:
        with connection.cursor() as cursor:
            # Deferred foreign keys are checked at commit, which an example never reaches:
            # check them now, then restore the defaults.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED")
        checked = check_trees(list(self.chats))
        for chat_id, ref in self.chats.items():
            tree = checked[chat_id].tree
            assert set(tree.parent_of) == set(ref.nodes)
            for parent, options in ref.children.items():
                assert tree.children.get(parent, []) == options
                assert tree.selected_child(parent) == ref.selected[parent]
            for message_id, content in checked[chat_id].content.items():
                node = ref.nodes[message_id]
                assert content == (node.role, node.status, node.text)
            # The context a model gets for any message: its route, each message once.
            for leaf in (m for m in ref.nodes if m not in ref.children):
                assert tree.ancestors(leaf) == ref.route(leaf)


def test_random_operations_keep_every_tree_consistent(alice: User) -> None:
    TreeMachine.user = alice
    run_state_machine_as_test(
        TreeMachine,
        settings=settings(
            max_examples=100,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )
