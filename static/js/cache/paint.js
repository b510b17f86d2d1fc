// Paints a chat from the encrypted cache (static/js/cache/store.js) before the server answers:
// a click on a cached chat in the sidebar shows its conversation at once, and "‹ 2/3 ›" in a
// cached chat switches versions at once, the server's answer replacing (or, refused, undoing)
// the paint. The route follows docs/realtime.md: a message's children sorted by (created, id),
// the selection an index into them, an absent or out-of-range one showing the newest child.
import { filePartsElement } from "../file-parts.js";

// As many of a route's last messages as the server's first window shows, at most: a long chat
// painted whole would hold the page for longer than a frame.
export const PAINT_WINDOW = 60;
const CHAT_PATH = /^\/c\/([0-9a-f-]{36})\/$/;
const SELECT_PATH = /^\/c\/([0-9a-f-]{36})\/m\/([0-9a-f-]{36})\/select$/;

function messagesOf(chat) {
  const messages = chat.messages || {};
  return Array.isArray(messages) ? messages : Object.values(messages);
}

function byCreatedThenId(a, b) {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

// parent id ("" for the chat's first messages) -> its children in (created, id) order.
export function childrenIndex(chat) {
  const children = new Map();
  for (const message of messagesOf(chat)) {
    const key = message.parent || "";
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(message);
  }
  for (const list of children.values()) list.sort(byCreatedThenId);
  return children;
}

function selectedIndex(index, count) {
  return Number.isInteger(index) && index >= 0 && index < count ? index : count - 1;
}

// One shown message with what its version switcher needs.
function routeItem(siblings, position) {
  return {
    message: siblings[position],
    position: position + 1,
    count: siblings.length,
    previousId: position > 0 ? siblings[position - 1].id : null,
    nextId: position < siblings.length - 1 ? siblings[position + 1].id : null,
  };
}

// The shown route from `start` (a message of the chat) down, following each selection.
export function routeFrom(chat, children, start) {
  const route = [];
  let siblings = children.get(start.parent || "") || [start];
  let position = siblings.findIndex((message) => message.id === start.id);
  while (position >= 0) {
    const item = routeItem(siblings, position);
    route.push(item);
    siblings = children.get(item.message.id) || [];
    position = siblings.length ? selectedIndex(item.message.selected_child_index, siblings.length) : -1;
  }
  return route;
}

// The chat's shown route from its first message.
export function routeOf(chat, children = childrenIndex(chat)) {
  const roots = children.get("") || [];
  if (!roots.length) return [];
  return routeFrom(chat, children, roots[selectedIndex(chat.root_message_index, roots.length)]);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function versionButton(chatId, targetId, label, symbol, offline) {
  const button = element("button", "icon-button version-button", symbol);
  button.type = "button";
  button.setAttribute("aria-label", label);
  button.dataset.versionSwitch = "";
  if (targetId && !offline) {
    button.setAttribute("hx-post", `/c/${chatId}/m/${targetId}/select`);
    button.setAttribute("hx-vals", '{"sibling": "1"}');
    button.setAttribute("hx-target", "#chat-body");
    button.setAttribute("hx-swap", "outerHTML");
  } else if (targetId) {
    button.dataset.offlineSelect = targetId; // offline: switched in the cache's tree only
  } else {
    button.disabled = true;
  }
  return button;
}

function versionSwitcher(chatId, item, offline) {
  const group = element("span", "versions");
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", `Version ${item.position} of ${item.count}`);
  group.append(
    versionButton(chatId, item.previousId, "Previous version", "‹", offline),
    element("span", "version-count", `${item.position}/${item.count}`),
    versionButton(chatId, item.nextId, "Next version", "›", offline),
  );
  return group;
}

function statusNote(message) {
  if (message.status === "stopped") return element("span", "status-note", "Stopped");
  if (message.status === "interrupted") return element("span", "status-note status-error", `Interrupted: ${message.error || ""}`);
  if (message.status === "error") return element("span", "status-note status-error", message.error || "The answer failed.");
  return null;
}

// An article shaped as templates/chats/_message.html renders it (without the actions, which
// come with the server's page).
export function articleFor(chatId, item, { offline = false } = {}) {
  const { message } = item;
  const article = element("article", `message message-${message.role} status-${message.status}`);
  article.id = `m-${message.id}`;
  article.dataset.messageId = message.id;
  article.dataset.cachePainted = "";
  const body = element("div", "message-body");
  const content = element("div", message.role === "assistant" ? "message-content markdown" : "message-content user-text");
  // The sync sends sanitised HTML (rendered and cleaned by the server, chats/markdown.py).
  if (message.html) content.innerHTML = message.html;
  else content.textContent = message.text || "";
  if (message.role === "user") body.append(filePartsElement(message.files || message.parts));
  body.append(content);
  const meta = element("footer", "message-meta");
  if (item.count > 1) meta.append(versionSwitcher(chatId, item, offline));
  const note = statusNote(message);
  if (note) meta.append(note);
  if (message.role === "assistant" && message.model_id) meta.append(element("span", "model-name muted small", message.model_id));
  article.append(body, meta);
  return article;
}

// The articles of a route's window: its last messages (a chat opens at its end), or its first
// ones (a switched version: the server's answer loads the rest as the page does).
export function articlesFor(chatId, route, { offline = false, fromStart = false } = {}) {
  const fragment = document.createDocumentFragment();
  const shown = fromStart ? route.slice(0, PAINT_WINDOW) : route.slice(-PAINT_WINDOW);
  for (const item of shown) fragment.append(articleFor(chatId, item, { offline }));
  return fragment;
}

function composerPlaceholder(offline) {
  const form = element("form", "composer");
  form.id = "composer";
  form.dataset.composer = "";
  form.dataset.cachePainted = "";
  if (offline) form.dataset.offline = "";
  const note = element("div", "composer-error");
  note.id = "composer-error";
  note.setAttribute("aria-live", "polite");
  const text = element("textarea");
  text.dataset.composerText = "";
  text.rows = 1;
  text.disabled = true;
  text.placeholder = offline ? "Offline: sending is not possible" : "Opening the chat…";
  text.setAttribute("aria-label", "Message");
  const bar = element("div", "composer-bar");
  const send = element("button", "button button-primary send-button", "Send");
  send.type = "submit";
  send.disabled = true;
  send.dataset.sendButton = "";
  bar.append(send);
  form.append(note, text, bar);
  return form;
}

// The chat page's main column (templates/chats/chat.html's section) from the cache.
export function chatSection(chat, { offline = false } = {}) {
  const section = element("section", "chat");
  section.dataset.chatId = chat.id;
  section.dataset.cachePainted = "";
  const header = element("header", "chat-header");
  const title = element("div", "chat-title");
  title.id = "chat-title";
  const heading = element("h1", "chat-title-text", chat.display_title || chat.title || "");
  heading.title = heading.textContent;
  title.append(heading);
  header.append(title);
  const body = element("div", "chat-body");
  body.id = "chat-body";
  const columns = element("div", "chat-columns");
  const messages = element("div", "messages");
  messages.id = "messages";
  messages.setAttribute("aria-live", "polite");
  messages.append(articlesFor(chat.id, routeOf(chat), { offline }));
  columns.append(messages);
  const version = element("input");
  Object.assign(version, { type: "hidden", name: "version", value: String(chat.tree_version ?? "") });
  version.setAttribute("form", "composer");
  version.dataset.versionInput = "";
  body.append(columns, version);
  section.append(header, body, composerPlaceholder(offline));
  return section;
}

// Replace the page's main column with the cached chat; returns whether it painted.
export function chatPaint(chat, { offline = false } = {}) {
  const main = document.getElementById("main");
  if (!main || !chat) return false;
  main.replaceChildren(chatSection(chat, { offline }));
  main.scrollTop = main.scrollHeight;
  document.title = `${chat.display_title || "Chat"} · Vero`;
  main.dispatchEvent(new CustomEvent("vero:cache-painted", { bubbles: true, detail: { chat: chat.id } }));
  return true;
}

export function chatIdFromPath(path) {
  const match = CHAT_PATH.exec(new URL(path, window.location.href).pathname);
  return match ? match[1] : null;
}

export function selectTarget(path) {
  const match = SELECT_PATH.exec(new URL(path, window.location.href).pathname);
  return match ? { chatId: match[1], messageId: match[2] } : null;
}

// The cache (window.veroCache, static/js/cache/index.js), or null when there is none.
export async function cacheGet() {
  if (!window.veroCache && document.readyState === "loading") {
    // Module scripts all run before DOMContentLoaded: index.js may come after this one.
    await new Promise((resolve) => document.addEventListener("DOMContentLoaded", resolve, { once: true }));
  }
  const api = window.veroCache;
  if (!api || !api.ready) return null;
  try {
    return await api.ready;
  } catch (error) {
    return null;
  }
}

export async function cachedChat(chatId) {
  const cache = await cacheGet();
  if (!cache) return null;
  try {
    return await cache.chatGet(chatId);
  } catch (error) {
    return null;
  }
}

// -- switching versions in a cached chat ---------------------------------------------------

// Paint `messageId`'s route in place of the shown version it replaces (`shown`, an article);
// returns what undoes it, or null when the cache cannot paint this switch.
export function versionPaint(chat, messageId, shown, { offline = false } = {}) {
  const messages = document.getElementById("messages");
  const target = (chat.messages || {})[messageId] || messagesOf(chat).find((m) => m.id === messageId);
  if (!messages || !target || !shown || shown.parentElement !== messages) return null;
  const route = routeFrom(chat, childrenIndex(chat), target);
  const removed = [];
  for (let node = shown; node; node = node.nextElementSibling) removed.push(node);
  const painted = articlesFor(chat.id, route, { offline, fromStart: true });
  const first = painted.firstElementChild;
  const added = [...painted.children];
  removed.forEach((node) => node.remove());
  messages.append(painted);
  if (!offline && window.htmx) added.forEach((node) => window.htmx.process(node));
  return {
    first,
    undo() {
      added.forEach((node) => node.remove());
      messages.append(...removed);
    },
  };
}

// Whether the cached tree is at least as new as the page (an older one may lack what is shown).
export function cacheCurrentFor(chat) {
  const input = document.querySelector("[data-version-input]");
  const shown = input ? Number.parseInt(input.value, 10) : Number.NaN;
  return Number.isNaN(shown) || (chat.tree_version ?? -1) >= shown;
}

// -- the page's hooks ------------------------------------------------------------------------

// A paint that has not started by then is left to the server's page: a slow cache must not
// delay the request (and its paint must not land over the server's page).
const PAINT_WAIT_MS = 150;

// A chat the pointer is over (or pressing) is read from the cache before the click: the
// decryption is then done by the time the click asks for it. One at a time, dropped once used
// or when the cache changes.
let warm = null;

function chatWarm(chatId) {
  if (warm && warm.chatId === chatId) return;
  warm = { chatId, chat: cachedChat(chatId) };
}

function chatRead(chatId) {
  const read = warm && warm.chatId === chatId ? warm.chat : cachedChat(chatId);
  warm = null;
  return read;
}

function linkActivate(link) {
  document.querySelectorAll("[data-chat-link].active").forEach((other) => other.classList.remove("active"));
  link.classList.add("active");
}

function isOffline() {
  return document.body.hasAttribute("data-app-shell") || document.documentElement.hasAttribute("data-offline");
}

// Offline: the chat from the cache, at its own address; no request (it could not be answered).
async function chatOpenOffline(chatId, link) {
  const chat = await cachedChat(chatId);
  window.history.pushState({ offline: true }, "", link.getAttribute("href"));
  linkActivate(link);
  if (chat) chatPaint(chat, { offline: true });
}

// A click on a chat in the sidebar: paint it from the cache, then let htmx ask the server
// (htmx:confirm holds the request until issueRequest is called).
function chatLinkClicked(event) {
  const chatId = chatIdFromPath(event.detail.path);
  if (!chatId || !window.veroCache) return;
  event.preventDefault();
  if (isOffline()) {
    chatOpenOffline(chatId, event.detail.elt);
    return;
  }
  let issued = false;
  const issue = () => {
    if (issued) return;
    issued = true;
    event.detail.issueRequest(true);
  };
  const late = window.setTimeout(issue, PAINT_WAIT_MS);
  chatRead(chatId).then((chat) => {
    window.clearTimeout(late);
    if (!issued && chat && messagesOf(chat).length && chatPaint(chat)) linkActivate(event.detail.elt);
  }).finally(() => {
    // After the frame that shows the paint: the request never comes before it.
    window.requestAnimationFrame(() => window.setTimeout(issue));
  });
}

// The version switch waiting for the server: its first painted article (the request's source)
// and how to undo it.
let switching = null;

function switchPersist(paint, path) {
  switching = paint;
  window.htmx.ajax("POST", path, {
    source: paint.first, target: "#chat-body", swap: "outerHTML", values: { sibling: "1" },
  });
}

function switchRefused(status) {
  const slot = document.getElementById("composer-error");
  if (slot && !slot.textContent.trim()) {
    const text = status
      ? "The version could not be switched: the chat changed meanwhile. Reload it and try again."
      : "Could not reach the server, so the version was not switched. Check your connection and try again.";
    const line = element("p", "form-error", text);
    line.setAttribute("role", "alert");
    slot.replaceChildren(line);
  }
}

// "‹" or "›" in a cached chat: paint the version from the cached tree, then persist the
// selection through the select endpoint; a refusal undoes the paint (the server's message shows).
function versionClicked(event) {
  const target = selectTarget(event.detail.path);
  if (switching || !target || !window.veroCache) return;
  const shown = event.detail.elt.closest("article");
  event.preventDefault();
  if (isOffline()) {
    cachedChat(target.chatId).then((chat) => chat && versionPaint(chat, target.messageId, shown, { offline: true }));
    return;
  }
  cachedChat(target.chatId).then((chat) => {
    const paint = chat && cacheCurrentFor(chat) ? versionPaint(chat, target.messageId, shown) : null;
    if (paint) switchPersist(paint, event.detail.path);
    else event.detail.issueRequest(true);
  }, () => event.detail.issueRequest(true));
}

function switchSettled(event) {
  if (!switching || event.detail.elt !== switching.first) return;
  const { xhr } = event.detail;
  const refused = !event.detail.successful || !xhr || xhr.status === 0 || xhr.status >= 400;
  const done = switching;
  switching = null;
  if (refused) {
    done.undo();
    switchRefused(xhr ? xhr.status : 0);
  }
}

// Offline (the app shell): versions switch in the cached tree only; nothing can be persisted.
async function offlineSwitch(button) {
  const chatId = document.querySelector("[data-chat-id]")?.dataset.chatId;
  const chat = chatId ? await cachedChat(chatId) : null;
  if (chat) versionPaint(chat, button.dataset.offlineSelect, button.closest("article"), { offline: true });
}

document.addEventListener("htmx:confirm", (event) => {
  const elt = event.detail.elt;
  if (!(elt instanceof Element)) return;
  if (elt.matches("[data-chat-link]") && event.detail.verb === "get") chatLinkClicked(event);
  else if (elt.matches("[data-version-switch]")) versionClicked(event);
});
document.addEventListener("htmx:afterRequest", switchSettled);
for (const type of ["pointerover", "pointerdown"]) {
  document.addEventListener(type, (event) => {
    const link = event.target instanceof Element ? event.target.closest("[data-chat-link]") : null;
    const chatId = link && window.veroCache ? chatIdFromPath(link.getAttribute("href")) : null;
    if (chatId) chatWarm(chatId);
  }, { passive: true });
}
window.veroCache?.on?.("changed", () => { warm = null; });
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-offline-select]") : null;
  if (button) offlineSwitch(button);
});
