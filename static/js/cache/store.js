// The encrypted cache in IndexedDB: a user's chats, their sidebar list and the sync's state.
//
// Every record is sealed (crypto.js), so the database holds no plaintext of any chat. Records:
// `chat:<id>` (a chat and its `messages` keyed by id), `meta:index` (the sidebar's list, newest
// first, with each chat's title and tree_version), `meta:state` ({last_synced_at, user,
// metadata}), `meta:canary` (a known value sealed with the key, to tell whether a key is the
// one the records were sealed with, and the epoch: a new one at every reset). The key itself
// is kept too, non-extractable, in the `keys` store, so an offline reload can still read.
// A record that does not open resets the cache: the next sync fills it again.
import { openDB } from "../../vendor/idb-8.0.4/index.js";
import { KeyRefused, keyFetch, open, seal } from "./crypto.js";
import { stampMicros } from "./sync.js";

const DB_NAME = "vero-cache";
const DB_VERSION = 1;
const RECORDS = "records";
const KEYS = "keys";
const KEY_ID = "current";
const INDEX_ID = "meta:index";
const STATE_ID = "meta:state";
const CANARY_ID = "meta:canary";
const CANARY = "vero-cache-v1";

function chatRecordId(id) {
  return `chat:${id}`;
}

// Newest first, ties by id descending: the server's sidebar order.
function indexOrder(a, b) {
  const byStamp = stampMicros(b.updated_at) - stampMicros(a.updated_at);
  if (byStamp !== 0) return byStamp;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

// What the sidebar shows, and what a tab needs to tell whether the chat it shows is behind
// (title, tree_version) without opening a chat's record, which may hold thousands of messages.
function indexEntry(chat) {
  return {
    id: chat.id, display_title: chat.display_title, updated_at: chat.updated_at,
    title: chat.title, tree_version: chat.tree_version,
  };
}

function dbOpen() {
  return openDB(DB_NAME, DB_VERSION, {
    upgrade(db) {
      db.createObjectStore(RECORDS, { keyPath: "id" });
      db.createObjectStore(KEYS);
    },
    // A newer version of the page wants to upgrade: let it.
    blocking(currentVersion, blockedVersion, event) { event.target.close(); },
  });
}

export class Cache {
  constructor(db, key) {
    this.db = db;
    this.key = key;
    this.resetListeners = [];
  }

  // fn() after the cache was emptied because a record did not open.
  onReset(fn) {
    this.resetListeners.push(fn);
  }

  async chatGet(id) {
    return this.recordGet(chatRecordId(id));
  }

  async chatPut(chat) {
    await this.chatsApply({ puts: [chat] });
  }

  async chatDelete(id) {
    await this.chatsApply({ deletes: [id] });
  }

  // Writes chats and drops others in one transaction, with the sidebar's list to match.
  async chatsApply({ puts = [], deletes = [] }) {
    const byId = new Map((await this.chatsList()).map((entry) => [entry.id, entry]));
    puts.forEach((chat) => byId.set(chat.id, indexEntry(chat)));
    deletes.forEach((id) => byId.delete(id));
    const index = [...byId.values()].sort(indexOrder);
    // Everything is sealed before the transaction: it would end while awaiting crypto.
    const records = await Promise.all([
      ...puts.map((chat) => this.sealed(chatRecordId(chat.id), chat)),
      this.sealed(INDEX_ID, index),
    ]);
    const tx = this.db.transaction(RECORDS, "readwrite");
    records.forEach((record) => tx.store.put(record));
    deletes.forEach((id) => tx.store.delete(chatRecordId(id)));
    await tx.done;
  }

  async chatsList() {
    return (await this.recordGet(INDEX_ID)) || [];
  }

  async stateGet() {
    return (await this.recordGet(STATE_ID)) || { last_synced_at: null, user: null, metadata: null };
  }

  async statePut(state) {
    await this.db.put(RECORDS, await this.sealed(STATE_ID, state));
  }

  // Empties the cache (the key stays): the next sync starts over.
  async clear() {
    const canary = await this.sealed(CANARY_ID, { check: CANARY, epoch: crypto.randomUUID() });
    const tx = this.db.transaction(RECORDS, "readwrite");
    tx.store.clear();
    tx.store.put(canary);
    await tx.done;
  }

  // Changes at every reset, in any tab: a sync that began before one must not store its
  // last_synced_at over the emptied cache (the next sync would then skip what was dropped).
  async epochGet() {
    return (await this.recordGet(CANARY_ID))?.epoch || null;
  }

  async sealed(id, value) {
    return { id, ...(await seal(this.key, id, value)) };
  }

  async recordGet(id) {
    const record = await this.db.get(RECORDS, id);
    if (!record) return null;
    try {
      return await open(this.key, id, record);
    } catch (error) {
      await this.reset();
      return null;
    }
  }

  // A record did not open: another session's key sealed it (a login in another tab), or it
  // was altered. Take the session's key anew when the server answers, and start over.
  async reset() {
    try {
      this.key = await keyFetch();
      await this.db.put(KEYS, this.key, KEY_ID);
    } catch (error) { /* offline: keep the key we have */ }
    await this.clear();
    this.resetListeners.forEach((fn) => fn());
  }
}

// True when the records were sealed with `key` (or there are none yet).
async function canaryOpens(db, key) {
  const record = await db.get(RECORDS, CANARY_ID);
  if (!record) return (await db.count(RECORDS)) === 0;
  try {
    return (await open(key, CANARY_ID, record))?.check === CANARY;
  } catch (error) {
    return false;
  }
}

// The session's key from the server; the stored one when the server cannot be reached; null
// when the server refuses (no session: the cache and its key are deleted, so a logged-out
// browser keeps nothing readable) or when there is no key to read with.
async function keyResolve(db) {
  try {
    const key = await keyFetch();
    await db.put(KEYS, key, KEY_ID);
    return { key, fresh: true };
  } catch (error) {
    if (error instanceof KeyRefused) {
      await Promise.all([db.clear(RECORDS), db.clear(KEYS)]);
      return { key: null, fresh: false };
    }
    return { key: (await db.get(KEYS, KEY_ID)) || null, fresh: false };
  }
}

export async function cacheOpen() {
  if (typeof indexedDB === "undefined" || !globalThis.crypto?.subtle) return null;
  try {
    const db = await dbOpen();
    const { key, fresh } = await keyResolve(db);
    if (!key) return null;
    const cache = new Cache(db, key);
    if (!(await canaryOpens(db, key))) {
      if (!fresh) return null; // a stored key that does not read the records: nothing to show
      await cache.clear(); // a new session's key: the old records can no longer be read
    } else if (!(await db.get(RECORDS, CANARY_ID))) {
      await cache.clear(); // an empty cache: seal the canary
    }
    return cache;
  } catch (error) {
    console.warn("vero cache unavailable:", error);
    return null;
  }
}
