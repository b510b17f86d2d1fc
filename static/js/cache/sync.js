// Bring the cache current: pages of POST /api/cache/sync applied to the encrypted store.
//
// The server sends what changed since the last sync (docs/realtime.md): a chat comes whole (a
// first sync, a new chat: replace) or as a delta (merge its changed messages, drop its deleted
// ones). A chat may arrive twice in one sync (changed between pages: the newer copy wins) or in
// parts (a long chat continues on the next page under the byte cap: the parts are merged).
import { tabIdGet } from "./leader.js";

const SYNC_URL = "/api/cache/sync";
const PAGE_SIZE = 100;
const CSRF_COOKIE = "csrftoken"; // Django's CSRF_COOKIE_NAME, as static/js/requests.js reads it

// An ISO 8601 stamp in microseconds since the epoch: the server's stamps have microseconds,
// which Date.parse drops.
export function stampMicros(stamp) {
  if (!stamp) return 0;
  const fraction = (/\.(\d+)/.exec(stamp) || [null, ""])[1];
  return Date.parse(stamp.replace(/\.\d+/, "")) * 1000 + Number(fraction.padEnd(6, "0").slice(0, 6));
}

export class SyncFailed extends Error {
  constructor(status, retryAfterSeconds) {
    super(`sync failed: ${status}`);
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

function csrfToken() {
  const match = document.cookie.match(new RegExp(`(?:^|;\\s*)${CSRF_COOKIE}=([^;]+)`));
  if (match) return decodeURIComponent(match[1]);
  try {
    return JSON.parse(document.body?.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
  } catch (error) {
    return "";
  }
}

// A JSON POST as the page's own requests are: CSRF token, and this tab's id (the origin the
// server puts on the events this request causes).
export function postJson(url, body) {
  return fetch(url, {
    method: "POST",
    credentials: "same-origin",
    cache: "no-store",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), "X-Vero-Tab": tabIdGet() },
    body: JSON.stringify(body),
  });
}

// The models and new-chat defaults (`metadata`) cost the server more than a sync that finds
// nothing: asked for once per page load, not with every event's sync.
let metadataFresh = false;

async function pageFetch(lastSyncedAt, cursor) {
  const body = { last_synced_at: lastSyncedAt, cursor, page_size: PAGE_SIZE, metadata: !metadataFresh };
  const response = await postJson(SYNC_URL, body);
  if (!response.ok) {
    throw new SyncFailed(response.status, Number(response.headers.get("Retry-After")) || null);
  }
  return response.json();
}

function newer(a, b) {
  return stampMicros(a.updated_at) >= stampMicros(b.updated_at);
}

function messagesMerge(base, incoming) {
  const messages = { ...base };
  incoming.forEach((message) => {
    const known = messages[message.id];
    if (!known || newer(message, known)) messages[message.id] = message;
  });
  return messages;
}

// The chat as the cache keeps it: the sync's Chat without the transport's fields.
function chatFields(incoming) {
  const { whole, more_messages: more, deleted_messages: deleted, messages, ...fields } = incoming;
  return fields;
}

// `base`: the cached chat or null; `continued`: the previous part said more_messages.
export function chatMerge(base, incoming, continued) {
  const replace = incoming.whole && !continued;
  if (!base || replace) {
    const chat = { ...chatFields(incoming), messages: messagesMerge({}, incoming.messages || []) };
    // A delta with nothing under it holds only the changed messages: say so.
    if (!base && !incoming.whole && !continued) chat.partial = true;
    if (base && replace && !newer(incoming, base)) return base;
    return chat;
  }
  const fields = newer(incoming, base) ? chatFields(incoming) : {};
  const messages = messagesMerge(base.messages || {}, incoming.messages || []);
  (incoming.deleted_messages || []).forEach((id) => delete messages[id]);
  return { ...base, ...fields, messages };
}

// The ids of the messages a part or delta brings or deletes.
function messageIdsOf(incoming) {
  return [...(incoming.messages || []).map((message) => message.id), ...(incoming.deleted_messages || [])];
}

// Applies one page; `run` carries what spans pages: the chats that continue, the ids changed.
async function pageApply(cache, page, run) {
  const puts = new Map();
  for (const incoming of page.upserts) {
    const continued = run.continuing.has(incoming.id);
    const needsBase = continued || !incoming.whole || run.seen.has(incoming.id);
    const known = puts.get(incoming.id) || null;
    // Only the chunks the merge touches are opened (store.js): a replace needs the fields alone.
    const touched = incoming.whole && !continued ? [] : messageIdsOf(incoming);
    const base = needsBase || known ? await cache.chatPart(incoming.id, touched, known) : null;
    puts.set(incoming.id, chatMerge(base, incoming, continued));
    run.seen.add(incoming.id);
    if (incoming.more_messages) run.continuing.add(incoming.id);
    else run.continuing.delete(incoming.id);
    run.changed.add(incoming.id);
  }
  const deletes = page.deletions || [];
  deletes.forEach((id) => run.changed.add(id));
  await cache.chatsApply({ puts: [...puts.values()], deletes });
}

// Syncs until the server has nothing more; returns the ids of the chats that changed.
export async function syncRun(cache) {
  let epoch = await cache.epochGet();
  const state = await cache.stateGet();
  const run = { continuing: new Set(), seen: new Set(), changed: new Set(), metadata: null };
  let cursor = null;
  let page = null;
  do {
    page = await pageFetch(state.last_synced_at, cursor);
    if (page.reset && cursor === null) {
      (await cache.chatsList()).forEach((entry) => run.changed.add(entry.id));
      await cache.clear();
      epoch = await cache.epochGet(); // this sync's own reset
    }
    await pageApply(cache, page, run);
    run.metadata = page.metadata || run.metadata; // the first page's, when asked for
    cursor = page.next_cursor;
  } while (page.has_more && cursor);
  // Emptied meanwhile (a record that did not open, here or in another tab): the sync that
  // reset asked for starts over.
  if ((await cache.epochGet()) !== epoch) return [...run.changed];
  if (run.metadata) metadataFresh = true;
  await cache.statePut({ ...state, last_synced_at: page.server_timestamp, metadata: run.metadata || state.metadata });
  return [...run.changed];
}
