"""The archive's pages and the chat header's pin control: what they show, what they change,
bad input answered 400 with nothing changed, CSRF enforced, and 404 for another user's rows."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from archive.models import ArchiveEntry, ArchiveLink, ChatPin
from archive.services import chat_pin_add, link_add
from tests.archive.helpers import chat_of, entry

HTMX = {"HX-Request": "true"}


def test_the_empty_archive_says_how_to_start(alice_client: Client) -> None:
    page = alice_client.get("/archive/").content.decode()

    assert "Your archive is empty." in page
    assert 'href="/archive/new"' in page


def test_the_navigation_leads_to_the_archive(alice_client: Client) -> None:
    assert 'href="/archive/"' in alice_client.get("/").content.decode()


def test_the_archive_lists_searches_and_filters_by_tags(alice: User, alice_client: Client) -> None:
    entry(alice, "Comet notes", "Ice and dust", ("sky",))
    entry(alice, "Garden", "Tomatoes", ("home", "sky"))

    listed = alice_client.get("/archive/").content.decode()
    searched = alice_client.get("/archive/", {"q": "tomato"}).content.decode()
    both = alice_client.get("/archive/", {"tag": ["sky", "home"], "mode": "all"}).content.decode()
    nothing = alice_client.get("/archive/", {"q": "volcano"}).content.decode()

    assert "Comet notes" in listed and "Garden" in listed
    assert "Garden" in searched and "Comet notes" not in searched
    assert "Garden" in both and "Comet notes" not in both
    assert "No entry matches “volcano”." in nothing


def test_load_more_keeps_a_real_link_and_htmx_gets_only_the_next_rows(
    alice: User, alice_client: Client, settings: object
) -> None:
    settings.ARCHIVE_PAGE_SIZE = 2  # type: ignore[attr-defined]
    for number in range(3):
        entry(alice, f"Entry {number}")

    first = alice_client.get("/archive/").content.decode()
    more_href = first.split('class="load-more" href="')[1].split('"')[0].replace("&amp;", "&")
    rows = alice_client.get(more_href, headers=HTMX).content.decode()
    whole = alice_client.get(more_href).content.decode()

    assert "Entry 2" in first and "Entry 0" not in first
    assert "Entry 0" in rows and "Entry 2" not in rows and "<html" not in rows
    assert "load-more" not in rows
    assert "Entry 0" in whole and "<html" in whole


def test_a_bad_page_link_is_a_400_that_says_so(alice_client: Client) -> None:
    response = alice_client.get("/archive/", {"after": "garbage"})

    assert response.status_code == 400
    assert "This page link is not valid" in response.content.decode()


def test_creating_an_entry_from_the_page(alice: User, alice_client: Client) -> None:
    response = alice_client.post(
        "/archive/new", {"title": "Trip", "body": "Lisbon", "tags": "travel, Plans"}
    )

    created = ArchiveEntry.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/archive/{created.id}/"
    assert (created.user_id, created.slug, created.tags) == (alice.id, "trip", ["travel", "plans"])
    assert "Lisbon" in alice_client.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        ({"title": "", "body": "x"}, "An entry needs a title."),
        ({"title": "x" * 201}, "The title is too long"),
        ({"title": "Ok", "tags": ",".join(f"t{n}" for n in range(25))}, "Too many tags"),
    ],
)
def test_a_bad_entry_is_a_400_with_its_reason_and_nothing_is_created(
    alice_client: Client, posted: dict[str, str], message: str
) -> None:
    response = alice_client.post("/archive/new", posted)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ArchiveEntry.objects.exists()


def test_the_page_refuses_a_post_without_the_csrf_token(alice: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post("/archive/new", {"title": "Trip"})

    assert response.status_code == 403
    assert not ArchiveEntry.objects.exists()


def test_editing_keeps_the_slug_and_a_bad_edit_changes_nothing(
    alice: User, alice_client: Client
) -> None:
    note = entry(alice, "Trip", "Lisbon")

    form = alice_client.get(f"/archive/{note.id}/edit").content.decode()
    refused = alice_client.post(f"/archive/{note.id}/edit", {"title": " ", "body": "Porto"})
    saved = alice_client.post(f"/archive/{note.id}/edit", {"title": "Big trip", "body": "Porto"})

    assert "Lisbon" in form
    assert refused.status_code == 400
    assert saved.status_code == 302
    note.refresh_from_db()
    assert (note.slug, note.title, note.body) == ("trip", "Big trip", "Porto")


def test_deleting_asks_first_then_deletes(alice: User, alice_client: Client) -> None:
    note = entry(alice, "Trip")

    confirm = alice_client.get(f"/archive/{note.id}/delete")
    assert confirm.status_code == 200 and "Delete this entry?" in confirm.content.decode()
    assert ArchiveEntry.objects.exists()
    response = alice_client.post(f"/archive/{note.id}/delete")

    assert response.status_code == 302 and response["Location"] == "/archive/"
    assert not ArchiveEntry.objects.exists()


def test_an_entry_shows_its_links_both_ways_and_links_and_unlinks(
    alice: User, alice_client: Client
) -> None:
    trip, packing, budget = entry(alice, "Trip"), entry(alice, "Packing"), entry(alice, "Budget")
    link_add(user_id=alice.id, source_id=budget.id, target_id=trip.id, kind="funds")

    added = alice_client.post(f"/archive/{trip.id}/links", {"target": "packing", "kind": "needs"})
    page = alice_client.get(f"/archive/{trip.id}/").content.decode()

    assert added.status_code == 302
    assert "needs →" in page and "Packing" in page
    assert "← funds" in page and "Budget" in page
    link = ArchiveLink.objects.get(kind="needs")
    removed = alice_client.post(f"/archive/{trip.id}/links/{link.id}/delete")
    assert removed.status_code == 302
    assert list(ArchiveLink.objects.values_list("kind", flat=True)) == ["funds"]
    assert packing.id not in ArchiveLink.objects.values_list("target_id", flat=True)


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        ({"target": "trip"}, "cannot be linked to itself"),
        ({"target": "nowhere"}, "There is no archive entry &#x27;nowhere&#x27;"),
        ({"target": ""}, "Say which entry to link to"),
    ],
)
def test_a_bad_link_is_a_400_and_links_nothing(
    alice: User, alice_client: Client, posted: dict[str, str], message: str
) -> None:
    trip = entry(alice, "Trip")

    response = alice_client.post(f"/archive/{trip.id}/links", posted)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ArchiveLink.objects.exists()


def test_bob_gets_404_for_every_page_of_alices_entry(
    alice: User, bob: User, bob_client: Client
) -> None:
    secret = entry(alice, "Secret", "Alice's plan")
    bobs = entry(bob, "Mine")
    link = link_add(user_id=alice.id, source_id=secret.id, target_id=entry(alice, "Other").id)

    for url in (
        f"/archive/{secret.id}/",
        f"/archive/{secret.id}/edit",
        f"/archive/{secret.id}/delete",
    ):
        assert bob_client.get(url).status_code == 404
    for url, posted in (
        (f"/archive/{secret.id}/edit", {"title": "Mine now"}),
        (f"/archive/{secret.id}/delete", {}),
        (f"/archive/{secret.id}/links", {"target": "mine"}),
        (f"/archive/{secret.id}/links/{link.id}/delete", {}),
        (f"/archive/{bobs.id}/links/{link.id}/delete", {}),
    ):
        assert bob_client.post(url, posted).status_code == 404
    refused = bob_client.post(f"/archive/{bobs.id}/links", {"target": "secret"})
    assert refused.status_code == 400  # no entry of his is called that

    assert ArchiveEntry.objects.get(id=secret.id).title == "Secret"
    assert ArchiveLink.objects.count() == 1
    assert "Secret" not in bob_client.get("/archive/", {"q": "plan"}).content.decode()


def test_the_chat_header_loads_its_pins_and_pins_and_unpins(
    alice: User, alice_client: Client
) -> None:
    chat = chat_of(alice)
    note = entry(alice, "Cat", "Miso")

    header = alice_client.get(f"/c/{chat.id}/").content.decode()
    empty = alice_client.get(f"/archive/chats/{chat.id}/pins", headers=HTMX).content.decode()
    picked = alice_client.get(
        "/archive/picker", {"q": "cat", "chat": str(chat.id)}
    ).content.decode()
    pinned = alice_client.post(
        f"/archive/chats/{chat.id}/pins/add", {"entry": str(note.id)}, headers=HTMX
    ).content.decode()

    assert f'hx-get="/archive/chats/{chat.id}/pins"' in header
    assert "Nothing pinned." in empty
    assert f'action="/archive/chats/{chat.id}/pins/add"' in picked and "Pin “Cat”" in picked
    assert "Unpin" in pinned and "Cat" in pinned
    assert ChatPin.objects.get().entry_id == note.id
    unpinned = alice_client.post(f"/archive/chats/{chat.id}/pins/{note.id}/delete")
    assert unpinned.status_code == 302 and unpinned["Location"] == f"/c/{chat.id}/"
    assert not ChatPin.objects.exists()


def test_a_pin_without_an_entry_is_a_400(alice: User, alice_client: Client) -> None:
    chat = chat_of(alice)

    response = alice_client.post(f"/archive/chats/{chat.id}/pins/add", {"entry": "x"}, headers=HTMX)

    assert response.status_code == 400
    assert "Choose an entry to pin." in response.content.decode()


def test_bob_cannot_see_or_change_alices_pins_nor_pin_her_entries(
    alice: User, bob: User, bob_client: Client, alice_client: Client
) -> None:
    alices_chat, bobs_chat = chat_of(alice), chat_of(bob)
    secret = entry(alice, "Secret")
    bobs = entry(bob, "Mine")
    chat_pin_add(user_id=alice.id, chat_id=alices_chat.id, entry_id=secret.id)

    assert bob_client.get(f"/archive/chats/{alices_chat.id}/pins").status_code == 404
    add_mine = bob_client.post(f"/archive/chats/{alices_chat.id}/pins/add", {"entry": str(bobs.id)})
    add_hers = bob_client.post(f"/archive/chats/{bobs_chat.id}/pins/add", {"entry": str(secret.id)})
    remove = bob_client.post(f"/archive/chats/{alices_chat.id}/pins/{secret.id}/delete")
    stage = bob_client.get(f"/archive/picker/{secret.id}/stage")

    assert [add_mine.status_code, add_hers.status_code, remove.status_code] == [404, 404, 404]
    assert stage.status_code == 404
    assert list(ChatPin.objects.values_list("chat_id", "entry_id")) == [(alices_chat.id, secret.id)]
    assert (
        alice_client.post(
            f"/archive/chats/{alices_chat.id}/pins/add", {"entry": str(bobs.id)}
        ).status_code
        == 404
    )


def test_a_new_chat_stages_pins_in_the_composers_form(alice: User, alice_client: Client) -> None:
    note = entry(alice, "Cat", "Miso")

    page = alice_client.get("/").content.decode()
    picked = alice_client.get("/archive/picker", {"q": "", "chat": ""}).content.decode()
    staged = alice_client.get(f"/archive/picker/{note.id}/stage").content.decode()

    assert 'id="staged-pins"' in page
    assert f'hx-get="/archive/picker/{note.id}/stage"' in picked
    assert f'name="pin" value="{note.id}" form="composer" checked' in staged


def test_the_tag_filters_offer_the_tags_in_use_and_keep_the_chosen_ones(
    alice: User, alice_client: Client
) -> None:
    entry(alice, "Comet", tags=("sky", "ice"))

    page = alice_client.get("/archive/", {"tag": ["Moon"]}).content.decode()

    for tag in ("sky", "ice"):
        assert f'name="tag" value="{tag}">' in page
    assert 'name="tag" value="moon" checked>' in page
    assert "No entry matches with any of Moon." in page
