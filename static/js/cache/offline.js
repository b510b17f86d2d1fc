// Offline: registers the service worker (templates/sw.js, served at /sw.js), and when the page is
// the app shell it kept (templates/shell.html: the server could not be reached) fills it from
// the encrypted cache: the sidebar's chats, and the chat the address names. The composer says
// it is offline and cannot send. Once the server answers again, the app comes back: the shell
// reloads into the server's page, whose cache syncs; another page asks the leader for one sync.
// templates/base.html loads this module only: paint.js comes through the import below, by its
// plain name, so the page holds one instance of it (a collected, hashed name would be a second).
import { cacheGet, cachedChat, chatIdFromPath, chatPaint } from "./paint.js";

// How often an offline page asks whether the server is back.
const PROBE_EVERY_MS = 3000;
const CHANNEL = "vero-cache"; // static/js/cache/index.js's BroadcastChannel
const OFFLINE_NOTE = "You are offline: messages cannot be sent until the server is back.";

const isShell = () => document.body.hasAttribute("data-app-shell");
let probing = null;

function serviceWorkerRegister() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
    // No worker (a private window, a browser without it): the app works online as before.
  });
}

// -- the composer --------------------------------------------------------------------------

function composerOffline(offline) {
  document.querySelectorAll("[data-composer]").forEach((form) => {
    form.toggleAttribute("data-offline", offline);
    form.querySelectorAll("[data-send-button]").forEach((button) => {
      if (offline) button.disabled = true;
      // Back online: sendable again, unless it has no model or an answer is still streaming.
      else if (!button.hasAttribute("data-no-model") && !document.querySelector("[data-stream-url]")) {
        button.disabled = false;
      }
    });
    let note = form.querySelector("[data-offline-composer-note]");
    if (offline && !note) {
      note = document.createElement("p");
      note.className = "form-error";
      note.setAttribute("role", "status");
      note.dataset.offlineComposerNote = "";
      note.textContent = OFFLINE_NOTE;
      form.prepend(note);
    } else if (!offline && note) {
      note.remove();
    }
  });
  document.documentElement.toggleAttribute("data-offline", offline);
}

// -- the shell -----------------------------------------------------------------------------

// index.js paints the shell's sidebar from the cache (its list holds no chat link); without a
// cache there is nothing to paint, and the list says so.
function sidebarEmpty() {
  const placeholder = document.querySelector("[data-shell-sidebar]");
  if (placeholder) placeholder.textContent = "This browser keeps no chats to show offline.";
}

function shellStatus(text) {
  const status = document.querySelector("[data-shell-status]");
  if (status) status.textContent = text;
}

async function shellChatShow(chatId) {
  const chat = chatId ? await cachedChat(chatId) : null;
  document.querySelectorAll("#chat-list [data-chat-link]").forEach((link) => {
    link.classList.toggle("active", chatIdFromPath(link.getAttribute("href")) === chatId);
  });
  if (chat) chatPaint(chat, { offline: true });
  else if (chatId) shellStatus("This chat is not kept in this browser, so it cannot be shown offline.");
  composerOffline(true);
}

async function shellOpen() {
  composerOffline(true);
  const cache = await cacheGet();
  if (!cache) sidebarEmpty();
  await shellChatShow(chatIdFromPath(window.location.href));
  document.documentElement.dataset.offlineReady = "";
}

// Offline, a chat in the sidebar opens from the cache (paint.js), and its composer says so.
document.addEventListener("vero:cache-painted", () => {
  if (document.documentElement.hasAttribute("data-offline")) composerOffline(true);
});
window.addEventListener("popstate", () => {
  if (isShell()) shellChatShow(chatIdFromPath(window.location.href));
});

// -- back online ---------------------------------------------------------------------------

async function serverAnswers() {
  try {
    await fetch("/shell", { method: "HEAD", cache: "no-store", credentials: "omit" });
    return true; // any answer, even an error, means the server is there
  } catch (error) {
    return false;
  }
}

function syncAsk() {
  if (window.veroCache?.requestSync) {
    window.veroCache.requestSync();
    return;
  }
  if (!("BroadcastChannel" in window)) return;
  const channel = new BroadcastChannel(CHANNEL);
  channel.postMessage({ type: "sync" });
  channel.close();
}

function backOnline() {
  window.clearInterval(probing);
  probing = null;
  if (isShell()) {
    // The server's own page, whose cache syncs as it opens.
    window.location.reload();
    return;
  }
  composerOffline(false);
  syncAsk();
}

async function probe() {
  if (await serverAnswers()) backOnline();
}

function wentOffline() {
  composerOffline(true);
  if (probing === null) probing = window.setInterval(probe, PROBE_EVERY_MS);
}

window.addEventListener("online", () => {
  if (document.documentElement.hasAttribute("data-offline")) probe();
});
window.addEventListener("offline", wentOffline);
// A request that could not reach the server (static/js/requests.js says so in words): offline
// only when the server does not answer now either; one lost request leaves the composer as
// it was, so the user can send again at once.
document.addEventListener("htmx:sendError", async () => {
  if (!(await serverAnswers())) wentOffline();
});

serviceWorkerRegister();
if (isShell()) {
  probing = window.setInterval(probe, PROBE_EVERY_MS);
  shellOpen();
} else if (navigator.onLine === false) {
  wentOffline();
}
