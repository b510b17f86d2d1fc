// The chat header's pins follow changes made anywhere: another tab or device, or the model's
// `manage_chat_pins` tool during an answer (a write that comes from this tab's own send, so the
// cache's "changed" notes it as this tab's). A panel the user has open is left alone.

function pinsRefresh() {
  const pins = document.getElementById("chat-pins");
  if (!pins || !pins.dataset.pinsUrl || !window.htmx) return;
  if (pins.querySelector("details[open]")) return;
  window.htmx.ajax("GET", pins.dataset.pinsUrl, { target: pins, swap: "outerHTML" });
}

function pinsFollow() {
  if (!window.veroCache) return;
  window.veroCache.on("changed", (change) => {
    // News only: a routine catch-up sync (a page load, a reconnect) names chats too.
    if (change.cause !== "event") return;
    const pins = document.getElementById("chat-pins");
    if (pins && change.chats.includes(pins.dataset.chatId)) pinsRefresh();
  });
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", pinsFollow);
else pinsFollow();
