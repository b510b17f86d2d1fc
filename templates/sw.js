// Vero's service worker: keeps the app shell (templates/shell.html and the static files; never
// a user's data) so that with the server unreachable the app still opens, and
// static/js/cache/offline.js shows the chats this browser keeps, from the encrypted cache.
// Rendered by vero.views.service_worker, which fills in this deploy's version and assets.
const VERSION = "{{ version }}";
const CACHE = `vero-shell-${VERSION}`;
const SHELL_URL = "/shell";
const ASSETS = {{ assets_json|safe }};
const STATIC_PREFIX = "/static/";

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // The shell is fetched without credentials: it holds no user data whoever asks.
    await cache.put(SHELL_URL, await fetch(SHELL_URL, { credentials: "omit", cache: "no-store" }));
    await cache.addAll(ASSETS);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((name) => name.startsWith("vero-shell-") && name !== CACHE)
      .map((name) => caches.delete(name)));
    await self.clients.claim();
  })());
});

// A page: the network's answer, or the shell when the server cannot be reached (a page the
// server answered, even with an error, is never replaced). Pages are never cached: they hold
// user data.
async function navigate(request) {
  try {
    return await fetch(request);
  } catch (error) {
    const shell = await caches.match(SHELL_URL, { cacheName: CACHE });
    if (shell) return shell;
    throw error;
  }
}

// A static file: the network's copy (through the browser's HTTP cache, which keeps collected
// files for a year), kept for offline use; the kept copy when the server cannot be reached.
async function staticFile(request, event) {
  try {
    const response = await fetch(request);
    if (response.ok) {
      const copy = response.clone();
      event.waitUntil(caches.open(CACHE).then((cache) => cache.put(request, copy)));
    }
    return response;
  } catch (error) {
    const cached = await caches.match(request, { cacheName: CACHE });
    if (cached) return cached;
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(navigate(request));
  } else if (url.pathname.startsWith(STATIC_PREFIX)) {
    event.respondWith(staticFile(request, event));
  }
  // Everything else (htmx requests, the sync, the key, streams) goes to the network untouched.
});
