"""Helpers for the browser cache's tests: read the cache through its API or raw from IndexedDB,
and wait until it holds what a test expects."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page

# Every record of both object stores as IndexedDB holds it, bytes shown as Latin-1 text so that
# any plaintext in them would be readable: [{store, id, data}].
RAW_RECORDS = """async () => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("vero-cache");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const all = (name) => new Promise((resolve) => {
    const store = db.transaction(name).objectStore(name);
    const keys = store.getAllKeys();
    const values = store.getAll();
    values.onsuccess = () => resolve(values.result.map((value, i) => [keys.result[i], value]));
  });
  const text = (value) => {
    if (value instanceof CryptoKey) return `CryptoKey(extractable=${value.extractable})`;
    const bytes = new Uint8Array(value instanceof ArrayBuffer ? value : value.buffer);
    return "bytes:" + String.fromCharCode(...bytes);
  };
  const out = [];
  for (const [key, value] of await all("records")) {
    out.push({ store: "records", id: key, iv: text(value.iv), data: text(value.data),
               fields: Object.keys(value).sort() });
  }
  for (const [key, value] of await all("keys")) {
    out.push({ store: "keys", id: key, data: text(value) });
  }
  db.close();
  return out;
}"""


def cache_eval(page: Page, expression: str) -> Any:
    """Evaluate `expression` in the page with `cache` bound to its open cache (or null)."""
    page.wait_for_function("window.veroCache !== undefined")
    return page.evaluate(
        f"async () => {{ const cache = await window.veroCache.ready; return {expression}; }}"
    )


def cache_chat_wait(
    page: Page,
    chat_id: uuid.UUID,
    predicate: Callable[[dict[str, Any]], bool] = lambda chat: True,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """The cached chat once `predicate` holds for it; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    cached = None
    while time.monotonic() < deadline:
        cached = cache_eval(page, f"cache && cache.chatGet('{chat_id}')")
        if cached is not None and predicate(cached):
            return dict(cached)
        time.sleep(0.1)
    raise AssertionError(f"the cache holds {cached!r} for chat {chat_id}")


def leader_wait(page: Page, timeout: float = 10.0) -> None:
    """Until `page` is the tab that leads (holds the socket and syncs)."""
    page.wait_for_function("window.veroCache && window.veroCache.leader", timeout=timeout * 1000)
