"""The browser cache's cryptography: the key the browser derives is the server's, records are
sealed one by one, and IndexedDB holds no plaintext of any chat."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from playwright.sync_api import Page, expect

from accounts.models import User
from chats.models import Chat
from tests.browser.cache_support import RAW_RECORDS, cache_chat_wait, cache_eval
from tests.browser.helpers import live_log_in
from tests.fake_provider import FakeProvider, Script

VECTOR_PATH = Path(__file__).resolve().parent.parent / "realtime" / "cache_key_vector.json"


def _vector() -> dict[str, str]:
    return json.loads(VECTOR_PATH.read_text())


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_the_shared_vectors_key_is_pythons_hkdf_of_its_inputs() -> None:
    vector = _vector()
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=vector["salt"].encode(),
        info=vector["info"].encode(),
    )  # fmt: skip
    assert _b64url(hkdf.derive(vector["ikm"].encode())) == vector["key"]


def test_the_browsers_webcrypto_hkdf_derives_the_shared_vectors_key(page: Page) -> None:
    vector = _vector()
    page.goto("/")

    derived = page.evaluate(
        """async (vector) => {
          const { hkdfKey } = await import("/static/js/cache/crypto.js");
          const key = await hkdfKey(vector.ikm, vector.salt, vector.info);
          return btoa(String.fromCharCode(...key)).replace(/\\+/g, "-").replace(/\\//g, "_")
            .replace(/=+$/, "");
        }""",
        vector,
    )

    assert derived == vector["key"]


SEAL_PROPERTIES = """async () => {
  const { keyImport, seal, open } = await import("/static/js/cache/crypto.js");
  const key = await keyImport(crypto.getRandomValues(new Uint8Array(32)));
  const other = await keyImport(crypto.getRandomValues(new Uint8Array(32)));
  const value = { title: "Secret plans", n: 1 };
  const first = await seal(key, "chat:a", value);
  const second = await seal(key, "chat:a", value);
  const fails = async (fn) => { try { await fn(); return false; } catch (e) { return true; } };
  const tampered = new Uint8Array(first.data.slice(0));
  tampered[0] ^= 1;
  return {
    extractable: key.extractable,
    ivLength: first.iv.length,
    sameIv: first.iv.every((byte, i) => byte === second.iv[i]),
    roundTrip: await open(key, "chat:a", first),
    otherIdFails: await fails(() => open(key, "chat:b", first)),
    otherKeyFails: await fails(() => open(other, "chat:a", first)),
    tamperedFails: await fails(() => open(key, "chat:a", { iv: first.iv, data: tampered })),
  };
}"""


def test_a_record_is_sealed_with_a_fresh_iv_and_opens_only_under_its_id_and_key(
    page: Page,
) -> None:
    page.goto("/")

    result = page.evaluate(SEAL_PROPERTIES)

    assert result == {
        "extractable": False,
        "ivLength": 12,
        "sameIv": False,
        "roundTrip": {"title": "Secret plans", "n": 1},
        "otherIdFails": True,
        "otherKeyFails": True,
        "tamperedFails": True,
    }


TITLE = "Quokka expedition logistics"
QUESTION = "Which ferry reaches Rottnest before dawn?"
ANSWER = "The zebra ferry sails at half past four."


def test_indexeddb_holds_the_users_chat_but_no_plaintext_of_it(
    page: Page, alice: User, fake_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(Script(text=ANSWER), Script(text=TITLE))
    live_log_in(page, alice)
    page.get_by_label("Model").select_option(fake_model)
    page.get_by_label("Message").fill(QUESTION)
    page.get_by_label("Message").press("Enter")
    expect(page.locator("article.message-assistant .message-content")).to_have_text(ANSWER)
    expect(page.locator("#chat-title h1")).to_have_text(TITLE)
    chat = Chat.objects.get(user=alice)

    # Decrypted through the cache's API, the chat is all there ...
    cached = cache_chat_wait(page, chat.id, lambda c: c["display_title"] == TITLE)
    htmls = " ".join(message["html"] for message in cached["messages"].values())
    assert QUESTION in htmls and ANSWER in htmls
    assert cache_eval(page, "cache.chatsList()")[0]["display_title"] == TITLE

    # ... while every record as IndexedDB stores it shows none of it.
    raw: list[dict[str, Any]] = page.evaluate(RAW_RECORDS)
    stored = json.dumps(raw)
    assert {record["id"] for record in raw} >= {f"chat:{chat.id}", "meta:index", "meta:state"}
    for secret in (TITLE, QUESTION, ANSWER, "zebra", "Quokka", "Rottnest"):
        assert secret not in stored
    sealed = [record for record in raw if record["store"] == "records"]
    assert all(record["data"].startswith("bytes:") for record in sealed)
    keys = {record["id"]: record["data"] for record in raw if record["store"] == "keys"}
    assert keys.pop("current") == "CryptoKey(extractable=false)"
    # Beside it only its name (the hash the session's pages carry: data-cache-key-id), and the
    # keys kept by name (this session's, and the login page's guest key), none extractable.
    name = page.evaluate("document.body.dataset.cacheKeyId")
    assert keys.pop("current:id") and f"key:{name}" in keys
    sealed_keys = {k: v for k, v in keys.items() if v == "CryptoKey(extractable=false)"}
    assert sealed_keys == keys and all(k.startswith("key:") for k in keys)


def test_a_record_that_does_not_open_empties_the_cache_and_the_next_sync_fills_it_again(
    page: Page, alice: User
) -> None:
    chat = Chat.objects.create(user=alice, title="Tamper target")
    live_log_in(page, alice)
    cache_chat_wait(page, chat.id, lambda c: c["title"] == "Tamper target")

    page.evaluate(
        """async (id) => {
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
        }""",
        f"chat:{chat.id}",
    )

    assert cache_eval(page, f"cache.chatGet('{chat.id}')") is None
    # The reset asked for a sync, which brings the chat back.
    cache_chat_wait(page, chat.id, lambda c: c["title"] == "Tamper target")


def test_logging_out_deletes_the_cached_chats(page: Page, alice: User) -> None:
    chat = Chat.objects.create(user=alice, title="Gone at logout")
    live_log_in(page, alice)
    cache_chat_wait(page, chat.id, lambda c: c["title"] == "Gone at logout")

    page.locator(".account-summary").click()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/")
    cache_eval(page, "cache === null")  # the logged-out page has settled its cache

    # The logged-out browser is a guest now: the guest's key (if any) replaced alice's, and
    # nothing sealed under alice's remains.
    records = page.evaluate(RAW_RECORDS)
    assert not [r for r in records if r["id"].startswith(("chat:", "meta:index", "meta:state"))]


def test_a_reload_opens_the_cache_with_the_kept_key_without_asking_for_it(
    page: Page, alice: User
) -> None:
    """The page names its session's key; a tab keeping that key opens the cache at once (the
    sidebar paints before the network answers), and asks again only for another session."""
    live_log_in(page, alice)
    assert cache_eval(page, "cache !== null")  # the key was asked for once, and kept
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.reload()
    assert cache_eval(page, "cache !== null")
    assert not [url for url in asked if url.endswith("/api/cache/key")]

    # Only another session's key kept (not the one the page names): the server is asked.
    page.evaluate(
        """() => new Promise((resolve, reject) => {
            const opening = indexedDB.open("vero-cache");
            opening.onsuccess = () => {
                const write = opening.result.transaction("keys", "readwrite");
                const keys = write.objectStore("keys");
                const name = document.body.dataset.cacheKeyId;
                keys.get(`key:${name}`).onsuccess = (event) => {
                    keys.delete(`key:${name}`);
                    keys.put(event.target.result, "key:another-session");
                };
                write.oncomplete = () => { opening.result.close(); resolve(); };
                write.onerror = reject;
            };
        })"""
    )
    page.reload()
    assert cache_eval(page, "cache !== null")
    assert [url for url in asked if url.endswith("/api/cache/key")]
