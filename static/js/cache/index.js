// The browser cache's entry point: opens the encrypted cache, elects the leading tab, keeps the
// cache current and keeps the page current with it.
//
// The leader holds the socket; an event (or a reconnect, or a resync frame) starts a sync
// shortly after (events come in bursts: one sync for the burst); after a sync it tells every
// tab which chats changed and which tab caused it. Each tab then repaints its sidebar from the
// cache and, when the chat it shows changed elsewhere, shows it as it now is (the page's
// reactions, at the end). `window.veroCache` is the API the rest of the page uses
// (docs/realtime.md; the cache's own API in store.js).
import { channel, leadershipStart, tabIdGet } from "./leader.js";
import { socketStart } from "./socket.js";
import { cacheOpen } from "./store.js";
import { SyncFailed, stampMicros, syncRun } from "./sync.js";

const SYNC_DEBOUNCE_MS = 150;
const SYNC_RETRY_FIRST_MS = 2000;
const SYNC_RETRY_MAX_MS = 60000;

const listeners = { changed: [] };
let ready = cacheOpen();

// A tab without a cache tries again when news comes: a guest who had written nothing had no
// key to get, and has one after their first chat.
async function cacheGet() {
  const cache = await ready;
  if (cache) return cache;
  ready = cacheOpen();
  const reopened = await ready;
  if (reopened) cacheAdopt(reopened);
  return reopened;
}

function cacheAdopt(cache) {
  cache.onReset(requestSync);
}

function emit(type, detail) {
  (listeners[type] || []).forEach((fn) => {
    try { fn(detail); } catch (error) { console.error(error); }
  });
}

// Every tab, this one included (a BroadcastChannel does not deliver to its sender).
function broadcast(message) {
  if (channel) channel.postMessage(message);
  if (message.type === "changed") emit("changed", message);
}

// --- The leader: events in, syncs, "changed" out -------------------------------------------

const leader = {
  // chat id -> the tab that caused its pending events (null: no tab, or several)
  pending: new Map(),
  timer: null,
  due: 0,
  running: false,
  again: false,
  failures: 0,
};

function eventNote(frame) {
  if (!frame.chat) return;
  const origin = frame.origin || null;
  const known = leader.pending.has(frame.chat);
  leader.pending.set(frame.chat, known && leader.pending.get(frame.chat) !== origin ? null : origin);
  syncSoon();
}

// Not put off by later events: the first event of a burst is synced within the debounce. A
// sooner request (a reconnect) replaces a later one (a retry's backoff).
function syncSoon(delay = SYNC_DEBOUNCE_MS) {
  const due = Date.now() + delay;
  if (leader.timer !== null && leader.due <= due) return;
  clearTimeout(leader.timer);
  leader.due = due;
  leader.timer = setTimeout(syncNow, delay);
}

async function syncNow() {
  leader.timer = null;
  if (leader.running) { leader.again = true; return; }
  leader.running = true;
  const events = leader.pending;
  leader.pending = new Map();
  try {
    const cache = await cacheGet();
    const changed = cache ? await syncRun(cache) : [];
    leader.failures = 0;
    announce(changed, events);
  } catch (error) {
    events.forEach((origin, chat) => { if (!leader.pending.has(chat)) leader.pending.set(chat, origin); });
    syncRetry(error);
  } finally {
    leader.running = false;
    if (leader.again) { leader.again = false; syncSoon(); }
  }
}

function syncRetry(error) {
  const wait = error instanceof SyncFailed && error.retryAfterSeconds
    ? error.retryAfterSeconds * 1000
    : Math.min(SYNC_RETRY_FIRST_MS * 2 ** leader.failures, SYNC_RETRY_MAX_MS);
  leader.failures += 1;
  console.warn("vero cache sync failed, retrying:", error);
  syncSoon(wait);
}

// One "changed" per tab that caused changes; chats no event named (a catch-up sync) go with
// origin null and cause "sync", so a tab can tell news from a routine catch-up.
function announce(changed, events) {
  const groups = new Map();
  const add = (chat, origin, cause) => {
    const key = `${cause}:${origin}`;
    if (!groups.has(key)) groups.set(key, { type: "changed", chats: [], origin, cause });
    groups.get(key).chats.push(chat);
  };
  events.forEach((origin, chat) => add(chat, origin, "event"));
  changed.filter((chat) => !events.has(chat)).forEach((chat) => add(chat, null, "sync"));
  groups.forEach(broadcast);
}

function leadStart() {
  leader.socket = socketStart({ onEvent: eventNote, onSync: () => syncSoon(0) });
  syncSoon(0);
}

function leadStop() {
  if (leader.socket) leader.socket.close();
  leader.socket = null;
}

function isLeader() {
  return leader.socket != null;
}

// A follower asks the leader to sync ({type: "sync"}); the leader itself just does.
function requestSync() {
  if (isLeader()) syncSoon();
  else if (channel) channel.postMessage({ type: "sync" });
}

if (channel) {
  channel.addEventListener("message", (event) => {
    const message = event.data || {};
    if (message.type === "changed") emit("changed", message);
    else if (message.type === "sync" && isLeader()) syncSoon();
  });
}

// --- This tab's page: the sidebar and the chat it shows ---------------------------------------

const SIDEBAR_BATCH = 50; // as the server's CHAT_LIST_PAGE_SIZE
const DAY_MS = 86400000;

function utcDay(stamp) {
  const date = new Date(stamp);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
}

// The server's groups (chats.selectors._group_label, in the server's time zone, UTC).
function groupLabel(stamp, now) {
  const days = Math.round((utcDay(now) - utcDay(stamp)) / DAY_MS);
  if (days <= 0) return "Today";
  if (days === 1) return "Yesterday";
  if (days < 7) return "Previous 7 days";
  const date = new Date(stamp);
  if (date.getUTCFullYear() === now.getUTCFullYear()) {
    return date.toLocaleString("en-US", { month: "long", timeZone: "UTC" });
  }
  return String(date.getUTCFullYear());
}

function shownChatId() {
  return document.querySelector("section.chat[data-chat-id]")?.dataset.chatId || null;
}

function chatLink(entry, activeId) {
  const item = document.createElement("li");
  const link = document.createElement("a");
  link.className = entry.id === activeId ? "chat-link active" : "chat-link";
  link.href = `/c/${entry.id}/`;
  link.setAttribute("hx-get", link.getAttribute("href"));
  link.setAttribute("hx-target", "#main");
  link.setAttribute("hx-push-url", "true");
  link.dataset.chatLink = "";
  link.textContent = entry.display_title;
  item.append(link);
  return item;
}

// Appends `entries` to the list as the server's _chat_list.html renders them, continuing the
// group the list ends in.
function sidebarAppend(list, entries, now) {
  const activeId = shownChatId();
  let items = list.querySelector("ul.chat-items:last-of-type");
  let label = list.dataset.cacheLastGroup || null;
  entries.forEach((entry) => {
    const entryLabel = groupLabel(entry.updated_at, now);
    if (entryLabel !== label || !items) {
      label = entryLabel;
      const heading = document.createElement("h2");
      heading.className = "chat-group";
      heading.textContent = label;
      items = document.createElement("ul");
      items.className = "chat-items";
      list.append(heading, items);
    }
    items.append(chatLink(entry, activeId));
  });
  list.dataset.cacheLastGroup = label || "";
}

// The next batch from the cache when "Load more" comes into view, as the server's list pages.
function sidebarMore(list, entries, shown, now) {
  if (shown >= entries.length) return;
  const more = document.createElement("a");
  more.className = "load-more";
  more.href = "/c/list";
  more.textContent = "Load more…";
  more.addEventListener("click", (event) => event.preventDefault());
  list.append(more);
  const observer = new IntersectionObserver((seen) => {
    if (!seen.some((entry) => entry.isIntersecting)) return;
    observer.disconnect();
    more.remove();
    const next = entries.slice(shown, shown + SIDEBAR_BATCH);
    sidebarAppend(list, next, now);
    window.htmx?.process(list);
    sidebarMore(list, entries, shown + next.length, now);
  });
  observer.observe(more);
}

// The sidebar from the cache, as many chats as it showed (at least one batch): no request.
function sidebarPaint(list, entries) {
  const now = new Date();
  const count = Math.max(SIDEBAR_BATCH, list.querySelectorAll("[data-chat-link]").length);
  list.replaceChildren();
  delete list.dataset.cacheLastGroup;
  if (!entries.length) {
    const empty = document.createElement("p");
    empty.className = "empty-state";
    empty.textContent = "No chats yet. Your conversations will appear here.";
    list.append(empty);
    return;
  }
  const first = entries.slice(0, count);
  sidebarAppend(list, first, now);
  window.htmx?.process(list);
  sidebarMore(list, entries, first.length, now);
}

// On load the server's sidebar is usually current. A page without one (the offline app shell,
// a list marked data-cache-paint) or older than the cache (a page kept by the browser) paints
// it from the cache before any request.
async function sidebarOnReady(cache) {
  const list = document.getElementById("chat-list");
  if (!cache || !list) return;
  const rendered = list.querySelector("[data-chat-link]") && !list.hasAttribute("data-cache-paint");
  if (rendered) {
    const { last_synced_at: synced } = await cache.stateGet();
    if (stampMicros(synced) <= stampMicros(list.dataset.renderedAt)) return;
  }
  sidebarPaint(list, await cache.chatsList());
}

// After a change this tab did not cause, the sidebar from the cache (without a cache: from
// the server, as the list's chats-changed trigger does).
async function sidebarRepaint(cache, change) {
  const list = document.getElementById("chat-list");
  if (!list || change.origin === tabIdGet()) return;
  if (!cache) { window.htmx?.trigger(document.body, "chats-changed"); return; }
  sidebarPaint(list, await cache.chatsList());
}

function anyStreaming() {
  return document.querySelector("[data-stream-url]") !== null;
}

function nearBottom(box) {
  return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
}

// The conversation again from the server, into #chat-body: the composer (and its draft) is
// outside it and stays; the tree version and the parent the composer posts come with it.
function shownBodyReload(chatId) {
  const body = document.getElementById("chat-body");
  if (!body || !window.htmx) return;
  const box = document.getElementById("main");
  const stick = box && nearBottom(box);
  window.htmx.ajax("GET", `/c/${chatId}/?part=body`, { target: body, swap: "outerHTML" }).then(() => {
    if (stick) box.scrollTop = box.scrollHeight;
  });
}

// The header's title from the cache's index (rename form included): no request.
function shownTitlePaint(chat) {
  const heading = document.querySelector("#chat-title .chat-title-text");
  if (!heading || heading.textContent === chat.display_title) return;
  heading.textContent = chat.display_title;
  heading.title = chat.display_title;
  const input = document.querySelector("#chat-title input[name=title]");
  if (input && document.activeElement !== input) input.value = chat.title || "";
  document.title = `${chat.display_title} · Vero`;
}

function shownVersion() {
  const input = document.querySelector("[data-version-input]");
  return input ? Number(input.value) : null;
}

let shownDeferred = false;

// The chat this tab shows changed in another tab or device: show it as it is now, unless this
// tab is streaming an answer in it (then once the stream ends). With the cache, only what is
// behind: the title, and the conversation when the cached tree version is newer than the page's.
async function shownChatRefresh(cache, fromEvent) {
  const chatId = shownChatId();
  if (!chatId) return;
  if (anyStreaming()) { shownDeferred = true; return; }
  shownDeferred = false;
  const chat = cache ? (await cache.chatsList()).find((entry) => entry.id === chatId) : null;
  if (!chat) {
    if (fromEvent) shownBodyReload(chatId); // no cache to compare with (or the chat is gone)
    return;
  }
  shownTitlePaint(chat);
  const version = shownVersion();
  if (version !== null && chat.tree_version > version) shownBodyReload(chatId);
}

function shownChatOnChange(cache, change) {
  const chatId = shownChatId();
  if (!chatId || !change.chats.includes(chatId) || change.origin === tabIdGet()) return;
  shownChatRefresh(cache, change.cause === "event");
}

// A refresh put off while this tab streamed: once nothing streams any more.
document.addEventListener("htmx:afterSettle", () => {
  if (shownDeferred && !anyStreaming()) ready.then((cache) => shownChatRefresh(cache, false));
});

window.veroCache = {
  get ready() { return ready; },
  get tabId() { return tabIdGet(); },
  get leader() { return isLeader(); },
  on(type, fn) {
    (listeners[type] ||= []).push(fn);
  },
  requestSync,
};

ready.then((cache) => {
  if (cache) cacheAdopt(cache);
  sidebarOnReady(cache);
  window.veroCache.on("changed", async (change) => {
    const current = await (isLeader() ? ready : cacheGet());
    sidebarRepaint(current, change);
    shownChatOnChange(current, change);
  });
  leadershipStart({ onLead: leadStart, onResign: leadStop });
  // A page load brings the cache current: the leader syncs when it starts leading, and a
  // follower's load asks the leader for a sync.
  if (channel) channel.postMessage({ type: "sync" });
});
