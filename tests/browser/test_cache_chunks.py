"""A long chat is cached in chunk records (static/js/cache/store.js): a delta of one message
seals its chat's header and the chunk it falls in again, not the thousands of messages beside
it; a chunk that does not open resets the cache as any record does."""

from __future__ import annotations

import uuid

from django.db.models import F
from django.utils import timezone
from playwright.sync_api import Page

from accounts.models import User
from chats.models import Chat, Message
from tests.browser.cache_support import cache_chat_wait, cache_eval
from tests.browser.helpers import live_log_in
from tests.chats.branching_support import say
from tests.chats.long_chats import long_chat_create

MESSAGES = 3_000

# Flips a byte of the sealed record `id`, as a tampering (or another key) would.
TAMPER = """async (id) => {
  const db = await new Promise((resolve) => {
    const request = indexedDB.open("vero-cache");
    request.onsuccess = () => resolve(request.result);
  });
  const store = db.transaction("records", "readwrite").objectStore("records");
  const record = await new Promise((resolve) => {
    store.get(id).onsuccess = (event) => resolve(event.target.result);
  });
  const data = new Uint8Array(record.data.slice(0));
  data[3] ^= 0xff;
  const write = db.transaction("records", "readwrite").objectStore("records");
  await new Promise((resolve) => { write.put({ ...record, data }).onsuccess = resolve; });
  db.close();
}"""


# The chat's records as IndexedDB holds them: {record id: SHA-256 of its IV and sealed bytes}.
SEALED = """async (prefix) => {
  const db = await new Promise((resolve) => {
    const request = indexedDB.open("vero-cache");
    request.onsuccess = () => resolve(request.result);
  });
  const records = await new Promise((resolve) => {
    const range = IDBKeyRange.bound(prefix, prefix + "\\uffff");
    db.transaction("records").objectStore("records").getAll(range).onsuccess =
      (event) => resolve(event.target.result);
  });
  db.close();
  const out = {};
  for (const record of records) {
    const iv = new Uint8Array(record.iv);
    const data = new Uint8Array(record.data);
    const both = new Uint8Array(iv.length + data.length);
    both.set(iv);
    both.set(data, iv.length);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", both));
    out[record.id] = Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
  }
  return out;
}"""


def _sealed(page: Page, chat_id: uuid.UUID) -> dict[str, str]:
    """The chat's header and chunk records as sealed: {record id: a hash of its bytes}."""
    sealed: dict[str, str] = page.evaluate(SEALED, f"chat:{chat_id}")
    return sealed


def _long_chat_cached(page: Page, alice: User) -> Chat:
    chat = long_chat_create(user_id=alice.id, count=MESSAGES).chat
    live_log_in(page, alice)
    cache_chat_wait(page, chat.id, lambda c: len(c["messages"]) == MESSAGES, timeout=30)
    return chat


def test_a_delta_into_a_long_chat_seals_only_its_header_and_a_chunk_again(
    page: Page, alice: User
) -> None:
    chat = _long_chat_cached(page, alice)
    before = _sealed(page, chat.id)
    chunks = [record_id for record_id in before if record_id != f"chat:{chat.id}"]
    assert len(chunks) >= MESSAGES // 800  # chunked: 400 to 800 messages each

    last = Message.objects.filter(chat_id=chat.id).order_by("-created_at").first()
    added = say(chat, last, "One more message, in one chunk.")
    # Stamped as a service stamps a change, so the next sync sends it in a delta.
    Message.objects.filter(id=added.id).update(updated_at=timezone.now())
    Chat.objects.filter(id=chat.id).update(
        updated_at=timezone.now(), tree_version=F("tree_version") + 1
    )
    page.evaluate("window.veroCache.requestSync()")
    cached = cache_chat_wait(page, chat.id, lambda c: str(added.id) in c["messages"], timeout=15)

    after = _sealed(page, chat.id)
    assert set(after) == set(before)  # no chunk added or dropped: the chunking stays
    resealed = [record_id for record_id in chunks if after[record_id] != before[record_id]]
    # The new message's chunk, and its parent's when the append changed it: never the others.
    assert 1 <= len(resealed) <= 2
    assert after[f"chat:{chat.id}"] != before[f"chat:{chat.id}"]  # the header too
    assert len(cached["messages"]) == MESSAGES + 1
    assert cached["title"] == chat.title and "chunks" not in cached


def test_a_chunk_that_does_not_open_empties_the_cache_and_the_next_sync_fills_it_again(
    page: Page, alice: User
) -> None:
    chat = _long_chat_cached(page, alice)

    page.evaluate(TAMPER, f"chat:{chat.id}:0")

    assert cache_eval(page, f"cache.chatGet('{chat.id}')") is None
    # The reset asked for a sync, which brings the whole chat back.
    cache_chat_wait(page, chat.id, lambda c: len(c["messages"]) == MESSAGES, timeout=30)
