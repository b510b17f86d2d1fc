// The encrypted cache in IndexedDB: a user's chats, their sidebar list and the sync's state.
//
// Every record is sealed (crypto.js), so the database holds no plaintext of any chat. Records:
// `chat:<id>` (a chat's header: its fields without `messages`, and `chunks`, the number of its
// chunk records), `chat:<id>:<n>` (its messages whose id hashes to chunk n, keyed by id: a
// delta of a few messages opens and seals a few chunks, never the whole chat, so no sync or
// paint of a long chat is one long task), `meta:index` (the sidebar's list, newest first, with
// each chat's title and tree_version), `meta:state` ({last_synced_at, user, metadata}),
// `meta:canary` (a known value sealed with the key, to tell whether a key is the one the
// records were sealed with, and the epoch: a new one at every reset). The key itself is kept
// too, non-extractable, in the `keys` store, so an offline reload can still read.
// A record that does not open (a chunk too) resets the cache: the next sync fills it again.
import { openDB } from "../../vendor/idb-8.0.4/index.js";
import { KeyRefused, keyFetch, open, seal } from "./crypto.js";
import { stampMicros } from "./sync.js";

const DB_NAME = "vero-cache";
const DB_VERSION = 1;
const RECORDS = "records";
const KEYS = "keys";
const KEY_ID = "current";
const KEY_NAME_ID = "current:id"; // the kept key's name (crypto.keyFetch)
const INDEX_ID = "meta:index";
const STATE_ID = "meta:state";
const CANARY_ID = "meta:canary";
const CANARY = "vero-cache-v1";

const CHUNK_MESSAGES = 400; // a chunk's messages when a chat is chunked anew
const CHUNK_GROWTH = 2; // re-chunked when it holds this many times CHUNK_MESSAGES per chunk
const FAILED = Symbol("record did not open");
const PART = Symbol("chunks loaded"); // on a chat holding only some of its chunks' messages

function chatRecordId(id) {
  return `chat:${id}`;
}

function chunkRecordId(id, n) {
  return `chat:${id}:${n}`;
}

// Every chunk record of a chat (`chat:<id>:` then its number), none of another chat.
function chunkRange(id) {
  return IDBKeyRange.bound(`chat:${id}:`, `chat:${id}:\uffff`);
}

function chunkCountFor(messageCount) {
  return Math.max(1, Math.ceil(messageCount / CHUNK_MESSAGES));
}

// FNV-1a of the message id: the same chunk for the same id in every tab and every load.
function chunkOf(messageId, count) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < messageId.length; i += 1) {
    hash = Math.imul(hash ^ messageId.charCodeAt(i), 0x01000193);
  }
  return (hash >>> 0) % count;
}

// The messages of `messages` (keyed by id) grouped by chunk: [n] -> {id: message}.
function chunksSplit(messages, count) {
  const chunks = Array.from({ length: count }, () => ({}));
  Object.entries(messages).forEach(([id, message]) => { chunks[chunkOf(id, count)][id] = message; });
  return chunks;
}

function headerOf(chat, chunks, messageCount) {
  const { messages, ...fields } = chat;
  return { ...fields, chunks, message_count: messageCount };
}

function fieldsOf(header) {
  const { chunks, message_count: count, ...fields } = header;
  return fields;
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

  // The whole chat, `{...fields, messages: {id: message}}`, opened chunk by chunk (each
  // decrypt and parse a task of its own); null when it is not kept or did not open.
  async chatGet(id) {
    const header = await this.recordRead(chatRecordId(id));
    if (!header || header === FAILED) return null;
    if (header.messages) return header; // a record from before chunks
    const messages = {};
    // Record by record: one getAll of every chunk is a long task of its own (the values'
    // copy into the page).
    for (let n = 0; n < header.chunks; n += 1) {
      const chunk = await this.recordRead(chunkRecordId(id, n));
      if (chunk === FAILED) return null;
      Object.assign(messages, chunk || {});
    }
    return { ...fieldsOf(header), messages };
  }

  // The chat as a merge needs it to take `messageIds` (new, changed or deleted): its fields
  // and the messages of the chunks those ids fall in. `base`, what an earlier merge of this
  // page left (or null), is completed with the chunks it lacks. chatsApply writes back only
  // the chunks loaded. Null when the chat is not kept.
  async chatPart(id, messageIds, base = null) {
    if (base && !base[PART]) return base; // a whole chat: nothing to load
    let chat = base;
    if (!chat) {
      const header = await this.recordRead(chatRecordId(id));
      if (!header || header === FAILED) return null;
      if (header.messages) return header; // a record from before chunks: rewritten whole
      chat = { ...fieldsOf(header), messages: {} };
      chat[PART] = { chunks: header.chunks, total: header.message_count || 0, sizes: new Map() };
    }
    const part = chat[PART];
    const wanted = new Set(messageIds.map((messageId) => chunkOf(messageId, part.chunks)));
    const missing = [...wanted].filter((n) => !part.sizes.has(n));
    if (!missing.length) return chat;
    const sizes = new Map(part.sizes);
    const loaded = {};
    for (const n of missing) {
      const chunk = await this.recordRead(chunkRecordId(id, n));
      if (chunk === FAILED) return null;
      Object.assign(loaded, chunk || {});
      sizes.set(n, Object.keys(chunk || {}).length);
    }
    const next = { ...chat, messages: { ...loaded, ...chat.messages } };
    next[PART] = { ...part, sizes };
    return next;
  }

  async chatPut(chat) {
    await this.chatsApply({ puts: [chat] });
  }

  async chatDelete(id) {
    await this.chatsApply({ deletes: [id] });
  }

  // Writes chats and drops others in one transaction, with the sidebar's list to match. A chat
  // from chatPart writes its header and the chunks it loaded; any other is written whole.
  async chatsApply({ puts = [], deletes = [] }) {
    const byId = new Map((await this.chatsList()).map((entry) => [entry.id, entry]));
    puts.forEach((chat) => byId.set(chat.id, indexEntry(chat)));
    deletes.forEach((id) => byId.delete(id));
    const index = [...byId.values()].sort(indexOrder);
    // Everything is sealed before the transaction (it would end while awaiting crypto), one
    // chunk after another: each its own task.
    const writes = [];
    for (const chat of puts) writes.push(await this.chatSealed(chat));
    const indexRecord = await this.sealed(INDEX_ID, index);
    const tx = this.db.transaction(RECORDS, "readwrite");
    writes.forEach(({ id, whole, records }) => {
      if (whole) tx.store.delete(chunkRange(id)); // the chunks of its former chunking
      records.forEach((record) => tx.store.put(record));
    });
    deletes.forEach((id) => {
      tx.store.delete(chatRecordId(id));
      tx.store.delete(chunkRange(id));
    });
    tx.store.put(indexRecord);
    await tx.done;
  }

  // The sealed records of a chat: its header and its loaded chunks, or all of them when whole
  // (or when it outgrew its chunks: then every chunk is read, and it is chunked anew).
  async chatSealed(chat) {
    const part = chat[PART];
    if (!part) return this.chatSealedWhole(chat);
    const split = chunksSplit(chat.messages, part.chunks);
    let total = part.total;
    part.sizes.forEach((size, n) => { total += Object.keys(split[n]).length - size; });
    if (total > part.chunks * CHUNK_MESSAGES * CHUNK_GROWTH) {
      const whole = await this.chatComplete(chat);
      return whole ? this.chatSealedWhole(whole) : { id: chat.id, whole: false, records: [] };
    }
    const records = [];
    for (const n of part.sizes.keys()) records.push(await this.sealed(chunkRecordId(chat.id, n), split[n]));
    records.push(await this.sealed(chatRecordId(chat.id), headerOf(chat, part.chunks, total)));
    return { id: chat.id, whole: false, records };
  }

  // A chat from chatPart with the chunks it lacked: the whole chat (null when one did not open).
  async chatComplete(chat) {
    const part = chat[PART];
    const loaded = {};
    for (let n = 0; n < part.chunks; n += 1) {
      if (part.sizes.has(n)) continue;
      const chunk = await this.recordRead(chunkRecordId(chat.id, n));
      if (chunk === FAILED) return null;
      Object.assign(loaded, chunk || {});
    }
    const { [PART]: done, ...whole } = chat;
    return { ...whole, messages: { ...loaded, ...chat.messages } };
  }

  async chatSealedWhole(chat) {
    const messages = chat.messages || {};
    const count = Object.keys(messages).length;
    const split = chunksSplit(messages, chunkCountFor(count));
    const records = [];
    for (let n = 0; n < split.length; n += 1) {
      records.push(await this.sealed(chunkRecordId(chat.id, n), split[n]));
    }
    records.push(await this.sealed(chatRecordId(chat.id), headerOf(chat, split.length, count)));
    return { id: chat.id, whole: true, records };
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
    const value = await this.recordRead(id);
    return value === FAILED ? null : value;
  }

  // The record's value, null when there is none, FAILED when it did not open (the cache was
  // reset then).
  async recordRead(id) {
    return this.sealedOpen(id, await this.db.get(RECORDS, id));
  }

  async sealedOpen(id, record) {
    if (!record) return null;
    try {
      return await open(this.key, id, record);
    } catch (error) {
      await this.reset();
      return FAILED;
    }
  }

  // A record did not open: another session's key sealed it (a login in another tab), or it
  // was altered. Take the session's key anew when the server answers, and start over.
  async reset() {
    try {
      this.key = await keyKeep(this.db, await keyFetch());
    } catch (error) { /* offline: keep the key we have */ }
    await this.clear();
    this.resetListeners.forEach((fn) => fn());
  }
}

// Keys are kept by name (`key:<id>`), the newest also as `current`: a page that loaded
// during a login (the guest's key) may store its key after the next page stored the
// account's, so which key reads the records is decided by the canary, never by the order.
async function keyKeep(db, { key, id }) {
  await db.put(KEYS, key, `key:${id}`);
  await db.put(KEYS, key, KEY_ID);
  await db.put(KEYS, id, KEY_NAME_ID);
  return key;
}

// The kept key the page names as its session's (data-cache-key-id), when it reads the records:
// no request before the cache opens, so the sidebar paints from it at once. Another session's
// page (logged out, another account) names another key, or none, and the server is asked.
async function keyKeptForPage(db) {
  const name = document.body?.dataset.cacheKeyId;
  const key = name ? await db.get(KEYS, `key:${name}`) : null;
  return key && (await canaryOpens(db, key)) ? key : null;
}

// Offline: of the kept keys, the one that reads the records (else the newest).
async function keyKeptOffline(db) {
  const current = (await db.get(KEYS, KEY_ID)) || null;
  const names = (await db.getAllKeys(KEYS)).filter((name) => String(name).startsWith("key:"));
  for (const key of [current, ...(await Promise.all(names.map((name) => db.get(KEYS, name))))]) {
    if (key && (await canaryOpens(db, key))) return key;
  }
  return current;
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
  const kept = await keyKeptForPage(db);
  if (kept) return { key: kept, fresh: false };
  try {
    const key = await keyKeep(db, await keyFetch());
    return { key, fresh: true };
  } catch (error) {
    if (error instanceof KeyRefused) {
      await Promise.all([db.clear(RECORDS), db.clear(KEYS)]);
      return { key: null, fresh: false };
    }
    return { key: await keyKeptOffline(db), fresh: false };
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
