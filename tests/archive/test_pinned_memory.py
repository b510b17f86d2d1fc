"""Pinned memory: what a chat's pins put into its system prompt, read in one statement, within
its budget (visibly cut, the rest listed, never dropped), on a new chat's very first request
(pins staged on its page) and on every later one, at one statement more on the send path."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from archive.models import ChatPin
from archive.selectors import pinned_memory
from archive.services import chat_pin_add, chat_pin_remove
from chats.models import Chat, Message
from tests.archive.helpers import chat_of, entry, system_message
from tests.chats.helpers import send, wait_for_answer

# Answers are generated on the generation loop's thread, which must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


def test_a_chat_without_pins_has_no_pinned_memory(alice: User) -> None:
    assert pinned_memory(chat_id=chat_of(alice).id) is None


def test_pinned_entries_come_whole_oldest_pin_first_in_one_statement(alice: User) -> None:
    chat = chat_of(alice)
    later, first = entry(alice, "Later", "Second body"), entry(alice, "First", "First body")
    chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=first.id)
    chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=later.id)

    with CaptureQueriesContext(connection) as captured:
        memory = pinned_memory(chat_id=chat.id)

    assert len(captured.captured_queries) == 1
    assert memory is not None
    assert memory.startswith("Pinned memory\n")
    assert "## First (slug: first)\nFirst body" in memory
    assert memory.index("First body") < memory.index("Second body")
    assert "cut" not in memory and "left out" not in memory


def test_over_the_budget_an_entry_is_cut_visibly_and_the_rest_are_listed(alice: User) -> None:
    chat = chat_of(alice)
    for title, body in (
        ("Small", "s" * 40),
        ("Large", "L" * 100),
        ("After", "a" * 10),
        ("Last", "z"),
    ):
        chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=entry(alice, title, body).id)

    memory = pinned_memory(chat_id=chat.id, limit=100)

    assert memory is not None
    assert "s" * 40 in memory
    assert "L" * 60 in memory and "L" * 61 not in memory
    assert "[… cut: 60 of 100 characters shown" in memory
    assert "left out over the pinned memory limit" in memory
    assert "- after: After" in memory and "- last: Last" in memory
    assert "a" * 10 not in memory


def test_an_entry_exactly_at_the_budget_is_whole_and_the_next_is_listed(alice: User) -> None:
    chat = chat_of(alice)
    chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=entry(alice, "Exact", "e" * 50).id)
    chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=entry(alice, "Next", "n").id)

    memory = pinned_memory(chat_id=chat.id, limit=50)

    assert memory is not None and "e" * 50 in memory and "cut:" not in memory
    assert "- next: Next" in memory


def test_a_pin_reaches_the_next_answers_system_prompt_and_an_unpin_leaves_it(
    alice: User, alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    send(alice_client, "Hello", fake_model)
    chat = Chat.objects.get()
    wait_for_answer(Message.objects.get(chat=chat, role="assistant").id)
    note = entry(alice, "Cat's name", "The cat is called Miso.")
    chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=note.id)

    send(alice_client, "What is my cat called?", fake_model, chat_id=chat.id)
    wait_for_answer(Message.objects.filter(chat=chat, role="assistant").latest("created_at").id)
    with_pin = system_message(fake_llm.chat_requests[-1])
    chat_pin_remove(user_id=alice.id, chat_id=chat.id, entry_id=note.id)
    send(alice_client, "And now?", fake_model, chat_id=chat.id)
    wait_for_answer(Message.objects.filter(chat=chat, role="assistant").latest("created_at").id)

    assert with_pin.startswith("The user's name is Alice.\n\nPinned memory\n")
    assert "The cat is called Miso." in with_pin
    assert "Miso" not in system_message(fake_llm.chat_requests[-1])


def test_pins_staged_on_a_new_chat_reach_its_very_first_request(
    alice: User, bob: User, alice_client: Client, fake_model: str, fake_llm: Any
) -> None:
    first, second = entry(alice, "Project", "Codename Heron."), entry(alice, "Style", "Be terse.")
    bobs = entry(bob, "Bob's secret", "Bob hides the key.")

    response = send(
        alice_client, "Hi", fake_model, pin=[str(second.id), str(bobs.id), str(first.id)]
    )

    assert response.status_code == 302
    chat = Chat.objects.get()
    wait_for_answer(Message.objects.get(chat=chat, role="assistant").id)
    system = system_message(fake_llm.chat_requests[0])
    assert "Codename Heron." in system and "Be terse." in system
    assert system.index("Be terse.") < system.index("Codename Heron.")  # as staged
    assert "Bob" not in system
    pinned = ChatPin.objects.order_by("created_at", "id").values_list("entry_id", flat=True)
    assert list(pinned) == [second.id, first.id]

    send(alice_client, "Again", fake_model, chat_id=chat.id)
    wait_for_answer(Message.objects.filter(chat=chat, role="assistant").latest("created_at").id)
    assert "Codename Heron." in system_message(fake_llm.chat_requests[-1])


def test_a_follow_up_in_a_chat_does_not_take_the_staged_pins(
    alice: User, alice_client: Client, fake_model: str
) -> None:
    send(alice_client, "Hi", fake_model)
    chat = Chat.objects.get()
    wait_for_answer(Message.objects.get(chat=chat, role="assistant").id)

    send(alice_client, "More", fake_model, chat_id=chat.id, pin=[str(entry(alice, "Note").id)])

    assert not ChatPin.objects.exists()


def test_a_send_with_a_malformed_staged_pin_is_refused_and_creates_nothing(
    alice: User, alice_client: Client, fake_model: str
) -> None:
    response = send(alice_client, "Hi", fake_model, pin=["not-an-id"])

    assert response.status_code == 400
    assert "A pinned entry is not valid." in response.content.decode()
    assert not Chat.objects.exists()


def _statements(client: Client, *args: Any, **extra: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = send(client, *args, **extra)
    assert response.status_code == 302
    answer = Message.objects.filter(status="streaming").get()
    wait_for_answer(answer.id)
    return len(captured.captured_queries)


def test_pins_cost_the_send_path_one_statement_at_most(
    alice: User, alice_client: Client, fake_model: str
) -> None:
    notes = [entry(alice, f"Note {number}", "text") for number in range(3)]
    _statements(alice_client, "warm-up", fake_model)  # the registry's cache is filled

    new_without = _statements(alice_client, "Hi", fake_model)
    new_with = _statements(alice_client, "Hi", fake_model, pin=[str(note.id) for note in notes])
    chat = Chat.objects.filter(pins__isnull=True).latest("created_at")
    follow_up_without = _statements(alice_client, "More", fake_model, chat_id=chat.id)
    for note in notes:
        chat_pin_add(user_id=alice.id, chat_id=chat.id, entry_id=note.id)
    follow_up_with = _statements(alice_client, "More", fake_model, chat_id=chat.id)

    # A new chat's staged pins: one statement pins them and reads the memory; without, none.
    assert new_with == new_without + 1
    # A follow-up always reads the memory (one statement), pinned or not.
    assert follow_up_with == follow_up_without
