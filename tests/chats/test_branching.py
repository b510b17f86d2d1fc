"""Versions, selections, deletes and forks: each operation, its refusals and its one event."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from chats.delete_services import message_delete_single, message_delete_subtree, message_delete_turn
from chats.errors import (
    ChatNotFound,
    EmptyText,
    MessageNotInChat,
    MessageStreaming,
    SelectionOutOfRange,
    TreeError,
    WrongRole,
)
from chats.fork_services import chat_fork
from chats.models import Branch, Chat, ChatDeletion, Message
from chats.selectors import chat_forks, chat_lineage
from chats.tree import PathStep
from chats.version_services import (
    branch_select,
    message_edit_assistant,
    message_edit_in_place,
    message_edit_user,
    message_regenerate,
    message_select,
)
from tests.chats.branching_support import (
    active_texts,
    check_tree,
    conversation,
    fresh_tree,
    notifications,
    say,
    snapshot,
    texts,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(alice: User) -> Chat:
    return Chat.objects.create(user=alice, title="Trip to Lisbon")


# --- editing a user message -------------------------------------------------------------------


def test_editing_a_question_adds_a_selected_version_with_an_answer_to_generate(chat: Chat) -> None:
    question, answer = conversation(chat, "hi", "hello")

    edit = message_edit_user(chat=chat, message=question, text="hey", model_id="openai:gpt-5.2")

    assert edit.version.text == "hey" and edit.version.parent_id is None
    assert edit.answer.parent_id == edit.version.id
    assert edit.answer.status == Message.Status.STREAMING
    assert edit.answer.model_id == "openai:gpt-5.2"
    tree = check_tree(chat.id)
    assert tree.active_path() == [edit.version.id, edit.answer.id]
    assert tree.siblings(edit.version.id) == [question.id, edit.version.id]
    assert Message.objects.filter(id=answer.id).exists(), "the old version is kept"


def test_the_model_context_of_an_edit_in_the_middle_holds_each_message_once(chat: Chat) -> None:
    q1, a1, q2, _a2, _q3, _a3 = conversation(chat, "q1", "a1", "q2", "a2", "q3", "a3")

    edit = message_edit_user(chat=chat, message=q2, text="q2 again", model_id="m")

    tree = fresh_tree(chat)
    assert tree.ancestors(edit.version.id) == [q1.id, a1.id, edit.version.id]
    assert tree.ancestors(edit.answer.id) == [q1.id, a1.id, edit.version.id, edit.answer.id]
    assert tree.active_path() == tree.ancestors(edit.answer.id)
    assert texts(tree.ancestors(edit.version.id)) == ["q1", "a1", "q2 again"]
    check_tree(chat.id)


def test_editing_keeps_attachments_and_replaces_only_the_text(chat: Chat) -> None:
    parts: list[dict[str, Any]] = [
        {"type": "file", "attachment_id": "a1b2", "name": "map.png"},
        {"type": "text", "text": "where is this?"},
    ]
    question = Message.objects.create(
        chat=chat, branch=Branch.objects.create(chat=chat, path="0000"), seq=0, role="user",
        parts=parts,
    )  # fmt: skip

    edit = message_edit_user(chat=chat, message=question, text="which city?", model_id="m")

    assert edit.version.parts == [
        {"type": "file", "attachment_id": "a1b2", "name": "map.png"},
        {"type": "text", "text": "which city?"},
    ]


def test_the_user_edit_refuses_an_answer_and_changes_nothing(chat: Chat) -> None:
    _question, answer = conversation(chat, "hi", "hello")
    before = snapshot(chat.id)

    with pytest.raises(WrongRole):
        message_edit_user(chat=chat, message=answer, text="x", model_id="m")

    assert snapshot(chat.id) == before


def test_an_empty_edit_is_refused(chat: Chat) -> None:
    (question,) = conversation(chat, "hi")
    with pytest.raises(EmptyText):
        message_edit_user(chat=chat, message=question, text="   ", model_id="m")


def test_a_message_from_bobs_chat_is_refused_in_alices_chat(chat: Chat, bob: User) -> None:
    conversation(chat, "hi", "hello")
    bobs_chat = Chat.objects.create(user=bob)
    bobs_question, bobs_answer = conversation(bobs_chat, "secret", "answer")
    before = snapshot(chat.id), snapshot(bobs_chat.id)

    with pytest.raises(MessageNotInChat):
        message_edit_user(chat=chat, message=bobs_question, text="x", model_id="m")
    with pytest.raises(MessageNotInChat):
        message_edit_assistant(chat=chat, message=bobs_answer, text="x")
    with pytest.raises(MessageNotInChat):
        message_regenerate(chat=chat, message=bobs_answer)
    with pytest.raises(MessageNotInChat):
        message_select(chat=chat, message=bobs_answer)
    with pytest.raises(MessageNotInChat):
        branch_select(chat=chat, parent_id=bobs_question.id, index=0)
    for delete in (message_delete_subtree, message_delete_turn, message_delete_single):
        with pytest.raises(MessageNotInChat):
            delete(chat=chat, message=bobs_answer)
    with pytest.raises(MessageNotInChat):
        chat_fork(chat=chat, message=bobs_answer)

    assert (snapshot(chat.id), snapshot(bobs_chat.id)) == before
    assert Chat.objects.count() == 2


def test_a_stale_message_instance_is_reread_under_the_lock(chat: Chat) -> None:
    question, answer, follow_up = conversation(chat, "q", "a", "q2")
    stale = Message.objects.get(id=follow_up.id)  # seq 2
    message_delete_single(chat=chat, message=answer)

    edit = message_edit_user(chat=chat, message=stale, text="q2 edited", model_id="m")

    assert fresh_tree(chat).ancestors(edit.version.id) == [question.id, edit.version.id]
    check_tree(chat.id)


# --- editing an answer, in place ---------------------------------------------------------------


def test_editing_an_answer_adds_a_complete_version_without_generation(chat: Chat) -> None:
    question, answer = conversation(chat, "hi", "hello")
    Message.objects.filter(id=answer.id).update(model_id="openai:gpt-5.2")

    version = message_edit_assistant(chat=chat, message=answer, text="Hello, Alice!")

    assert version.status == Message.Status.COMPLETE
    assert version.model_id == "openai:gpt-5.2"
    assert version.parent_id == question.id
    assert active_texts(chat) == ["hi", "Hello, Alice!"]
    with pytest.raises(WrongRole):
        message_edit_assistant(chat=chat, message=question, text="x")
    check_tree(chat.id)


def test_editing_in_place_replaces_the_text_without_a_version(chat: Chat) -> None:
    _question, answer = conversation(chat, "hi", "hello")
    Message.objects.filter(id=answer.id).update(html="<p>hello</p>")

    edited = message_edit_in_place(message=answer, text="hello there")

    assert edited.id == answer.id and edited.text == "hello there"
    assert edited.html == "<p>hello there</p>\n"
    assert Message.objects.filter(chat=chat).count() == 2
    assert active_texts(chat) == ["hi", "hello there"]


def test_editing_in_place_refuses_a_message_still_streaming(chat: Chat) -> None:
    _question, answer = conversation(chat, "hi", "hello")
    Message.objects.filter(id=answer.id).update(status=Message.Status.STREAMING)
    with pytest.raises(MessageStreaming):
        message_edit_in_place(message=answer, text="x")
    assert Message.objects.get(id=answer.id).text == "hello"


# --- regenerate ---------------------------------------------------------------------------------


def test_regenerating_adds_a_selected_answer_beside_the_old_one(chat: Chat) -> None:
    question, answer = conversation(chat, "hi", "hello")
    Message.objects.filter(id=answer.id).update(model_id="openai:gpt-5.2")

    again = message_regenerate(chat=chat, message=answer)
    other = message_regenerate(chat=chat, message=answer, model_id="google:gemini-3-pro")

    assert again.model_id == "openai:gpt-5.2" and other.model_id == "google:gemini-3-pro"
    assert again.status == other.status == Message.Status.STREAMING
    tree = check_tree(chat.id)
    assert tree.siblings(answer.id) == [answer.id, again.id, other.id]
    assert tree.active_path() == [question.id, other.id]
    assert tree.active_path_steps()[-1] == PathStep(message_id=other.id, index=2, count=3)


def test_regenerating_a_question_is_refused(chat: Chat) -> None:
    question, _answer = conversation(chat, "hi", "hello")
    before = snapshot(chat.id)
    with pytest.raises(WrongRole):
        message_regenerate(chat=chat, message=question)
    assert snapshot(chat.id) == before


# --- select -------------------------------------------------------------------------------------


def test_switching_versions_is_stored_on_the_parent_and_survives_a_reload(chat: Chat) -> None:
    question, first = conversation(chat, "hi", "first")
    second = message_regenerate(chat=chat, message=first)

    message_select(chat=chat, message=first)

    assert Message.objects.get(id=question.id).selected_child_index == 0
    assert fresh_tree(Chat.objects.get(id=chat.id)).active_path() == [question.id, first.id]
    assert branch_select(chat=chat, parent_id=question.id, index=1) == second.id
    assert fresh_tree(chat).active_path() == [question.id, second.id]


def test_first_messages_are_selected_on_the_chat(chat: Chat) -> None:
    one = say(chat, None, "one")
    two = say(chat, None, "two")

    assert branch_select(chat=chat, parent_id=None, index=0) == one.id
    assert Chat.objects.get(id=chat.id).root_message_index == 0
    message_select(chat=chat, message=two)
    assert Chat.objects.get(id=chat.id).root_message_index == 1


def test_selecting_a_message_deep_in_another_branch_shows_its_whole_route(chat: Chat) -> None:
    q1, a1, q2, a2 = conversation(chat, "q1", "a1", "q2", "a2")
    a1b = message_regenerate(chat=chat, message=a1)
    q2b = say(chat, a1b, "q2b")
    message_select(chat=chat, message=a2)  # jump back, as from the tree map
    assert fresh_tree(chat).active_path() == [q1.id, a1.id, q2.id, a2.id]

    message_select(chat=chat, message=q2b)

    assert fresh_tree(chat).active_path() == [q1.id, a1b.id, q2b.id]
    check_tree(chat.id)


def test_an_out_of_range_selection_is_refused_and_changes_nothing(chat: Chat) -> None:
    question, answer = conversation(chat, "hi", "hello")
    message_regenerate(chat=chat, message=answer)
    before = snapshot(chat.id)

    for index in (2, -1, 99):
        with pytest.raises(SelectionOutOfRange):
            branch_select(chat=chat, parent_id=question.id, index=index)
    with pytest.raises(SelectionOutOfRange):
        branch_select(chat=chat, parent_id=None, index=1)

    assert snapshot(chat.id) == before


def test_an_operation_on_a_deleted_chat_says_so(chat: Chat) -> None:
    (_question,) = conversation(chat, "hi")
    Chat.objects.filter(id=chat.id).delete()
    with pytest.raises(ChatNotFound):
        branch_select(chat=chat, parent_id=None, index=0)


# --- delete -------------------------------------------------------------------------------------


def test_deleting_a_version_removes_its_subtree_and_shows_a_neighbour(chat: Chat) -> None:
    question, first, follow_up = conversation(chat, "q", "first", "more")
    second = message_regenerate(chat=chat, message=first)
    third = message_regenerate(chat=chat, message=first)
    message_select(chat=chat, message=second)

    outcome = message_delete_subtree(chat=chat, message=first)

    assert outcome.deleted_count == 2 and not outcome.chat_deleted
    assert not Message.objects.filter(id__in=[first.id, follow_up.id]).exists()
    tree = check_tree(chat.id)
    assert tree.siblings(second.id) == [second.id, third.id]
    assert tree.active_path() == [question.id, second.id], "the shown version is still shown"


def test_deleting_the_shown_version_shows_the_next_one(chat: Chat) -> None:
    question, first = conversation(chat, "q", "first")
    second = message_regenerate(chat=chat, message=first)
    message_select(chat=chat, message=first)

    message_delete_subtree(chat=chat, message=first)

    assert check_tree(chat.id).active_path() == [question.id, second.id]


def test_deleting_a_turn_removes_every_version_and_what_follows(chat: Chat) -> None:
    q1, a1, q2, _a2 = conversation(chat, "q1", "a1", "q2", "a2")
    q2b = message_edit_user(chat=chat, message=q2, text="q2b", model_id="m").version

    outcome = message_delete_turn(chat=chat, message=q2b)

    assert outcome.deleted_count == 4
    tree = check_tree(chat.id)
    assert tree.active_path() == [q1.id, a1.id]
    assert Message.objects.get(id=a1.id).selected_child_index is None
    assert Branch.objects.filter(chat=chat).count() == 1


def test_deleting_one_message_links_its_successor_to_its_parent_and_moves_nothing(
    chat: Chat,
) -> None:
    q1, a1, q2, a2 = conversation(chat, "q1", "a1", "q2", "a2")

    message_delete_single(chat=chat, message=a1)

    tree = check_tree(chat.id)
    assert tree.active_path() == [q1.id, q2.id, a2.id]
    seqs = Message.objects.filter(chat=chat).order_by("seq").values_list("seq", flat=True)
    assert list(seqs) == [0, 2, 3], "a gap where a1 was: nothing shifted"


def test_deleting_one_message_reattaches_its_forks_and_keeps_the_shown_child(chat: Chat) -> None:
    q1, a1, q2, a2 = conversation(chat, "q1", "a1", "q2", "a2")
    q2b = say(chat, a1, "q2b")  # a branch forked at a1
    message_select(chat=chat, message=q2)
    untouched = Message.objects.get(id=a2.id).updated_at

    message_delete_single(chat=chat, message=a1)

    tree = check_tree(chat.id)
    assert tree.children[q1.id] == [q2.id, q2b.id]
    assert tree.active_path() == [q1.id, q2.id, a2.id]
    assert Branch.objects.get(id=q2b.branch_id).fork_message_id == q1.id
    assert Message.objects.get(id=a2.id).updated_at == untouched, "a2 was not rewritten"


def test_deleting_the_first_message_of_a_branch_moves_its_forks_under_the_parent_branch(
    chat: Chat,
) -> None:
    q1, a1 = conversation(chat, "q1", "a1")
    a1b = message_regenerate(chat=chat, message=a1)  # branch 0000.0000 starts with a1b
    q2 = say(chat, a1b, "q2")
    q2b = say(chat, a1b, "q2b")  # branch 0000.0000.0000, forked at a1b
    a2b = say(chat, q2b, "a2b")
    message_select(chat=chat, message=a2b)

    message_delete_single(chat=chat, message=a1b)

    tree = check_tree(chat.id)
    assert tree.children[q1.id] == [a1.id, q2.id, q2b.id]
    assert tree.active_path() == [q1.id, q2b.id, a2b.id]
    moved = Branch.objects.get(id=q2b.branch_id)
    assert moved.fork_message_id == q1.id and str(moved.path) == "0000.0001"


def test_deleting_a_lone_first_message_makes_its_children_first_messages(chat: Chat) -> None:
    q1, a1 = conversation(chat, "q1", "a1")
    a1b = message_regenerate(chat=chat, message=a1)

    message_delete_single(chat=chat, message=q1)

    tree = check_tree(chat.id)
    assert tree.children[None] == [a1.id, a1b.id]
    assert tree.active_path() == [a1b.id]


def test_deleting_the_last_message_deletes_the_chat_with_a_tombstone(chat: Chat) -> None:
    (question,) = conversation(chat, "hi")

    with notifications() as sent:
        outcome = message_delete_single(chat=chat, message=question)

    assert outcome.chat_deleted
    assert not Chat.objects.filter(id=chat.id).exists()
    assert ChatDeletion.objects.filter(chat_id=chat.id).exists()
    assert [event["kind"] for event in sent] == ["chat.deleted"]


@pytest.mark.parametrize("delete", [message_delete_subtree, message_delete_turn])
def test_deleting_the_whole_tree_deletes_the_chat(chat: Chat, delete: Any) -> None:
    question, _answer = conversation(chat, "hi", "hello")
    assert delete(chat=chat, message=question).chat_deleted
    assert ChatDeletion.objects.filter(chat_id=chat.id).exists()


# --- fork ---------------------------------------------------------------------------------------


def test_forking_copies_the_route_into_a_new_chat_that_keeps_its_lineage(chat: Chat) -> None:
    _q1, a1, q2, a2 = conversation(chat, "q1", "a1", "q2", "a2")
    message_regenerate(chat=chat, message=a1)  # another branch, not on the route to q2
    message_select(chat=chat, message=a2)

    result = chat_fork(chat=chat, message=q2)

    fork = result.chat
    assert fork.user_id == chat.user_id and fork.title == "Trip to Lisbon"
    assert fork.parent_chat_id == chat.id and fork.forked_from_message_id == q2.id
    assert fork.fork_depth == 1 and result.answer is None
    assert active_texts(fork) == ["q1", "a1", "q2"]
    assert Branch.objects.filter(chat=fork).count() == 1
    assert result.message is not None and result.message.text == "q2"
    check_tree(fork.id)
    assert chat_forks(chat=chat) == [fork]
    assert chat_lineage(chat=fork) == [chat]


def test_forking_with_an_edit_answers_the_edited_question(chat: Chat) -> None:
    _q1, _a1, q2, _a2 = conversation(chat, "q1", "a1", "q2", "a2")
    Chat.objects.filter(id=chat.id).update(settings={"model": "openai:gpt-5.2"})
    chat.refresh_from_db()

    result = chat_fork(chat=chat, message=q2, edited_text="q2, differently")

    assert result.answer is not None and result.message is not None
    assert result.answer.status == Message.Status.STREAMING
    assert result.answer.model_id == "openai:gpt-5.2"
    tree = check_tree(result.chat.id)
    assert texts(tree.ancestors(result.answer.id)) == ["q1", "a1", "q2, differently", ""]


def test_a_fork_of_a_fork_is_one_deeper_and_lists_its_lineage(chat: Chat) -> None:
    _q1, a1 = conversation(chat, "q1", "a1")
    child = chat_fork(chat=chat, message=a1).chat
    child_answer = fresh_tree(child).active_path()[-1]
    grandchild = chat_fork(chat=child, message=Message.objects.get(id=child_answer)).chat

    assert grandchild.fork_depth == 2
    assert chat_lineage(chat=grandchild) == [chat, child]


def test_forks_are_independent_of_their_source(chat: Chat) -> None:
    q1, a1, q2, a2 = conversation(chat, "q1", "a1", "q2", "a2")
    fork = chat_fork(chat=chat, message=a2).chat
    fork_before = snapshot(fork.id)

    message_edit_user(chat=chat, message=q2, text="changed", model_id="m")
    message_edit_in_place(message=a1, text="changed too")
    message_delete_single(chat=chat, message=q1)

    assert snapshot(fork.id)[1:] == fork_before[1:]
    copied = fresh_tree(fork).active_path()
    message_edit_in_place(message=Message.objects.get(id=copied[1]), text="fork only")
    assert Message.objects.get(id=a1.id).text == "changed too"


def test_deleting_the_forked_message_keeps_the_forks_parent_chat(chat: Chat) -> None:
    _q1, a1 = conversation(chat, "q1", "a1")
    fork = chat_fork(chat=chat, message=a1).chat

    message_delete_subtree(chat=chat, message=a1)

    fork.refresh_from_db()
    assert fork.parent_chat_id == chat.id and fork.forked_from_message_id is None


# --- selectors ----------------------------------------------------------------------------------


def test_the_active_path_carries_sibling_positions_from_one_query(
    chat: Chat, django_assert_num_queries: Any
) -> None:
    q1, a1, q2, a2 = conversation(chat, "q1", "a1", "q2", "a2")
    a1b = message_regenerate(chat=chat, message=a1)
    message_select(chat=chat, message=a1)
    chat.refresh_from_db()

    from chats.selectors import chat_tree_load

    with django_assert_num_queries(1):
        steps = chat_tree_load(chat=chat).active_path_steps()

    assert steps == [
        PathStep(message_id=q1.id, index=0, count=1),
        PathStep(message_id=a1.id, index=0, count=2),
        PathStep(message_id=q2.id, index=0, count=1),
        PathStep(message_id=a2.id, index=0, count=1),
    ]
    assert a1b.id in fresh_tree(chat).siblings(a1.id)


def test_the_tree_map_lays_out_every_message(chat: Chat) -> None:
    q1, a1, q2 = conversation(chat, "q1", "a1", "q2")
    a1b = message_regenerate(chat=chat, message=a1)
    message_select(chat=chat, message=q2)

    nodes = {node.message_id: node for node in fresh_tree(chat).tree_map()}

    assert [(nodes[m].depth, nodes[m].column) for m in (q1.id, a1.id, q2.id, a1b.id)] == [
        (0, 0),
        (1, 0),
        (2, 0),
        (1, 1),
    ]
    assert nodes[a1b.id].index == 1 and nodes[a1b.id].sibling_count == 2
    assert [m for m, node in nodes.items() if node.on_active_path] == [q1.id, a1.id, q2.id]
    assert nodes[a1b.id].role == "assistant" and nodes[a1b.id].status == "streaming"


# --- one event per operation --------------------------------------------------------------------


def _operations(chat: Chat) -> list[tuple[str, Any]]:
    q1, a1, q2, a2 = conversation(chat, "q1", "a1", "q2", "a2")
    return [
        ("edit user", lambda: message_edit_user(chat=chat, message=q2, text="x", model_id="m")),
        ("edit answer", lambda: message_edit_assistant(chat=chat, message=a1, text="x")),
        ("edit in place", lambda: message_edit_in_place(message=a1, text="y")),
        ("regenerate", lambda: message_regenerate(chat=chat, message=a2)),
        ("select", lambda: message_select(chat=chat, message=a2)),
        ("branch select", lambda: branch_select(chat=chat, parent_id=q1.id, index=0)),
        ("fork", lambda: chat_fork(chat=chat, message=q2)),
        ("fork edited", lambda: chat_fork(chat=chat, message=q2, edited_text="z")),
        ("delete single", lambda: message_delete_single(chat=chat, message=a2)),
        ("delete subtree", lambda: message_delete_subtree(chat=chat, message=q2)),
        ("delete turn", lambda: message_delete_turn(chat=chat, message=a1)),
    ]


def test_every_operation_publishes_exactly_one_event(chat: Chat) -> None:
    for name, operation in _operations(chat):
        with notifications() as sent:
            operation()
        assert len(sent) == 1, f"{name} published {sent}"
        assert sent[0]["user"] == str(chat.user_id)
        check_tree(chat.id)


def test_a_refused_operation_publishes_nothing(chat: Chat) -> None:
    question, _answer = conversation(chat, "hi", "hello")
    with notifications() as sent, pytest.raises(TreeError):
        branch_select(chat=chat, parent_id=question.id, index=5)
    assert sent == []
