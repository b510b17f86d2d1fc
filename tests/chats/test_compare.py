"""Comparing two versions of a question or an answer: a correct, escaped, capped diff, and a
page that reads a few rows whatever the chat's size."""

from __future__ import annotations

import html
import random
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.models import User
from chats.compare import MAX_CHARS, Capped, versions_diff
from chats.models import Chat, Message
from chats.versions import message_versions
from tests.chats.answer_texts import answer as _answer
from tests.chats.answer_texts import regenerated as _regenerated
from tests.chats.branching_support import say
from tests.chats.helpers import send, wait_for_answer, wait_for_title
from tests.fake_provider import Script


def _rebuilt(marked: str) -> tuple[str, str]:
    """Both texts back from the diff: without the insertions, and without the deletions."""
    assert "<script" not in marked
    before = re.sub(r"</?del>", "", re.sub(r"<ins>.*?</ins>", "", marked, flags=re.S))
    after = re.sub(r"</?ins>", "", re.sub(r"<del>.*?</del>", "", marked, flags=re.S))
    assert "<" not in before + after, "only <del> and <ins> are markup; all else is escaped"
    return html.unescape(before), html.unescape(after)


def _shared(marked: str) -> str:
    """The text the diff marks neither removed nor added."""
    return html.unescape(re.sub(r"<(del|ins)>.*?</\1>", "\x00", marked, flags=re.S))


# The diff itself.


def test_two_similar_10000_word_answers_are_diffed_so_that_both_are_rebuilt_from_the_diff() -> None:
    paragraphs = _answer(1, 10_000)
    before, after = "\n\n".join(paragraphs), "\n\n".join(_regenerated(paragraphs, 2))

    diff = versions_diff(before, after)

    assert diff.capped == Capped.NO and diff.notice == ""
    assert _rebuilt(diff.html) == (before, after)
    shared = _shared(diff.html)
    # Kept paragraphs are left unmarked, and so are the blank lines between paragraphs.
    assert paragraphs[4] in shared and paragraphs[8] in shared
    assert shared.count("\n\n") >= len(paragraphs) - 1
    # A rewritten paragraph is not marked all new: words it shares with the old one are kept.
    assert f"<del>{paragraphs[1]}" not in diff.html
    assert diff.html.count("<ins>") > len(paragraphs) // 4


def test_two_entirely_different_10000_word_answers_are_diffed_so_that_both_are_rebuilt() -> None:
    before = "\n\n".join(_answer(1, 10_000))
    after = "\n\n".join(_answer(3, 10_000))

    diff = versions_diff(before, after)

    assert diff.capped == Capped.NO
    assert _rebuilt(diff.html) == (before, after)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "cat", " ", "  ", "\n", "\n\n", ".", "<", "&", "é"])),
    st.lists(st.sampled_from(["a", "b", "dog", " ", "\n", "\n\n", ".", ">", '"', "é"])),
)
def test_any_two_texts_are_rebuilt_from_their_diff(before: list[str], after: list[str]) -> None:
    diff = versions_diff("".join(before), "".join(after))
    assert _rebuilt(diff.html) == ("".join(before), "".join(after))


def test_a_changed_word_is_marked_alone_and_line_breaks_are_kept() -> None:
    diff = versions_diff(
        "The sky is blue.\n\nGrass is green.", "The sky is grey.\n\nGrass is green.\nSand too."
    )
    assert (
        diff.html
        == "The sky is <del>blue</del><ins>grey</ins>.\n\nGrass is green.<ins>\nSand too.</ins>"
    )


def test_everything_is_escaped_before_changes_are_marked() -> None:
    before = 'Run <script>alert("one")</script> & <b>this</b>'
    after = 'Run <script>alert("two")</script> & <i>that</i>'

    diff = versions_diff(before, after)

    assert "<script" not in diff.html and "<b>" not in diff.html and "<i>" not in diff.html
    assert "&lt;script&gt;" in diff.html
    assert _rebuilt(diff.html) == (before, after)


def test_equal_versions_are_shown_unmarked() -> None:
    assert versions_diff("same <text>", "same <text>").html == "same &lt;text&gt;"


def test_versions_beyond_the_length_cap_are_not_diffed_and_the_notice_says_so() -> None:
    long = "word " * (MAX_CHARS // 5 + 1)

    diff = versions_diff(long, "short")

    assert diff.capped == Capped.TOO_LONG and diff.html == ""
    assert diff.notice == (
        "Changes are not marked: the versions are too long to compare "
        "(more than 100,000 characters)."
    )


def test_a_changed_run_too_large_to_align_is_not_diffed_and_the_notice_says_so() -> None:
    # One 10,000-word paragraph each, no word in common place: 10,000 x 10,000 words to align.
    before = " ".join(_answer(1, 10_000)).replace("\n", " ")
    after = " ".join(_answer(3, 10_000)).replace("\n", " ")

    diff = versions_diff(before, after)

    assert diff.capped == Capped.TOO_DIFFERENT and diff.html == ""
    assert "too different to compare word by word" in diff.notice


def test_a_diff_of_too_many_pieces_is_not_marked() -> None:
    # Words from three, in random order: an alignment of thousands of scraps.
    rng = random.Random(5)
    before, after = (
        "\n\n".join(" ".join(rng.choice("xyz") for _ in range(20)) for _ in range(1_500))
        for _ in range(2)
    )
    assert versions_diff(before, after).capped == Capped.TOO_DIFFERENT
    assert versions_diff(before, after, max_operations=10**9).capped == Capped.NO


# The page.


@contextmanager
def _rows_read() -> Iterator[list[tuple[str, int]]]:
    """Record each statement on this connection with the number of rows it returned."""
    counts: list[tuple[str, int]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        counts.append((sql, max(context["cursor"].rowcount, 0)))
        return result

    with connection.execute_wrapper(record):
        yield counts


def _page(client: Client, chat: Chat, a: object, b: object) -> Any:
    return client.get(f"/c/{chat.id}/compare?a={a}&b={b}")


def _chain(chat: Chat, parent: Message, count: int) -> Message:
    """Append `count` messages under `parent`, on its branch, in one statement."""
    rows = []
    parent_id = parent.id
    for offset in range(1, count + 1):
        role = "assistant" if (parent.role == "user") == (offset % 2 == 1) else "user"
        message = Message(
            id=uuid.uuid4(), chat=chat, branch_id=parent.branch_id, seq=parent.seq + offset,
            parent_id=parent_id, role=role, parts=[{"type": "text", "text": f"m{offset}"}],
            selected_child_index=0 if offset < count else None,
        )  # fmt: skip
        rows.append(message)
        parent_id = message.id
    Message.objects.filter(id=parent.id).update(selected_child_index=0)
    Message.objects.bulk_create(rows)
    return rows[-1]


@pytest.mark.django_db
def test_the_page_reads_the_same_few_rows_in_a_10_and_a_2000_message_chat(
    alice: User, alice_client: Client
) -> None:
    statements, rows = [], []
    for size in (10, 2_000):
        chat = Chat.objects.create(user=alice)
        question = say(chat, None, "Question?")
        tip = _chain(chat, question, size - 3)  # an answer: its child is a question
        first = say(chat, tip, "Last question, take one?")
        second = say(chat, tip, "Last question, take two?")
        assert chat.messages.count() == size
        _page(alice_client, chat, first.id, second.id)  # the session is read once, for one
        with CaptureQueriesContext(connection) as captured, _rows_read() as counts:
            response = _page(alice_client, chat, first.id, second.id)
        assert response.status_code == 200
        statements.append(len(captured.captured_queries))
        rows.append(sum(count for sql, count in counts if 'FROM "chats_message"' in sql))
    assert statements[0] == statements[1]
    # Of messages: the two versions, then the ids of all versions (two). Not the chat's tree.
    assert rows == [4, 4]


@pytest.mark.django_db(transaction=True)
def test_comparing_two_versions_of_an_answer_shows_them_side_by_side_with_changes_marked(
    alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    fake_llm.enqueue(Script(text="The sky is blue."), Script(text="Title"))
    send(alice_client, "Question?", fake_model)
    chat = Chat.objects.get()
    first = wait_for_answer(chat.messages.get(role="assistant").id)
    wait_for_title(chat, "Title")
    alice_client.post(
        f"/c/{chat.id}/m/{first.id}/edit", {"text": "The sky is <b>grey</b>.", "mode": "version"}
    )
    second = chat.messages.filter(role="assistant").exclude(id=first.id).get()

    page = _page(alice_client, chat, first.id, second.id).content.decode()

    assert "Answer: version 1 and version 2 of 2" in page
    assert "<del>blue.</del><ins>&lt;b&gt;grey&lt;/b&gt;.</ins>" in page


@pytest.mark.django_db
def test_two_versions_of_a_question_compare_the_same_way_and_are_labelled_questions(
    alice: User, alice_client: Client
) -> None:
    chat = Chat.objects.create(user=alice)
    first = say(chat, None, "How do I sort a list?")
    answer = say(chat, first, "Use sorted().", role="assistant")
    second = say(chat, None, "How do I sort a dict?")
    follow_up = say(chat, answer, "And in reverse?")
    follow_up_again = say(chat, answer, "And backwards, in place?")

    page = _page(alice_client, chat, first.id, second.id).content.decode()
    assert "Question: version 1 and version 2 of 2" in page
    assert "Question, version 1" in page and "Question, version 2" in page
    assert "How do I sort a <del>list</del><ins>dict</ins>?" in page

    page = _page(alice_client, chat, follow_up_again.id, follow_up.id).content.decode()
    assert "Question: version 2 and version 1 of 2" in page
    assert "And <del>backwards, in place</del><ins>in reverse</ins>?" in page
    assert message_versions(chat=chat, message=follow_up) == [follow_up.id, follow_up_again.id]
    page = _page(alice_client, chat, follow_up.id, follow_up.id).content.decode()
    assert "The two versions have the same text." in page and "<del>" not in page


@pytest.mark.django_db
def test_a_script_in_both_versions_is_shown_as_text(alice: User, alice_client: Client) -> None:
    chat = Chat.objects.create(user=alice)
    first = say(chat, None, "<script>alert('one')</script> hi")
    second = say(chat, None, "<script>alert('two')</script> hi")

    page = _page(alice_client, chat, first.id, second.id).content.decode()

    assert "<script>alert(" not in page
    assert "&lt;script&gt;alert(&#x27;<del>one</del><ins>two</ins>" in page


@pytest.mark.django_db
def test_versions_too_long_to_diff_are_shown_side_by_side_with_a_plain_notice(
    alice: User, alice_client: Client
) -> None:
    chat = Chat.objects.create(user=alice)
    first = say(chat, None, "first " + "word " * 30_000)
    second = say(chat, None, "second " + "word " * 30_000)

    page = _page(alice_client, chat, first.id, second.id).content.decode()

    assert "Changes are not marked: the versions are too long to compare" in page
    assert "<del>" not in page and "<ins>" not in page
    assert "first word" in page and "second word" in page


@pytest.mark.django_db
def test_a_missing_or_malformed_version_is_refused_with_a_readable_message(
    alice: User, alice_client: Client
) -> None:
    chat = Chat.objects.create(user=alice)
    first = say(chat, None, "one")
    for query in ("", f"?a={first.id}", f"?b={first.id}", f"?a=nope&b={first.id}", "?a=&b="):
        response = alice_client.get(f"/c/{chat.id}/compare{query}")
        assert response.status_code == 400, query
        assert "Choose two versions to compare." in response.content.decode()


@pytest.mark.django_db
def test_messages_that_are_not_versions_of_each_other_are_refused(
    alice: User, alice_client: Client
) -> None:
    chat = Chat.objects.create(user=alice)
    question = say(chat, None, "Q?")
    answer = say(chat, question, "A.", role="assistant")
    other_question = say(chat, answer, "Q2?")
    other_answer = say(chat, other_question, "A2.", role="assistant")
    for a, b in [(question, answer), (answer, other_answer), (question, other_question)]:
        response = _page(alice_client, chat, a.id, b.id)
        assert response.status_code == 400
        assert "Only versions of the same message can be compared." in response.content.decode()


@pytest.mark.django_db
def test_another_users_chat_or_message_is_not_found(
    alice: User, bob: User, alice_client: Client, bob_client: Client
) -> None:
    chat = Chat.objects.create(user=alice)
    first, second = say(chat, None, "one"), say(chat, None, "two")
    bobs_chat = Chat.objects.create(user=bob)
    bobs = say(bobs_chat, None, "bob's")

    assert _page(bob_client, chat, first.id, second.id).status_code == 404
    assert _page(bob_client, bobs_chat, bobs.id, first.id).status_code == 404
    assert _page(alice_client, chat, first.id, bobs.id).status_code == 404
    assert _page(alice_client, chat, uuid.uuid4(), second.id).status_code == 404
