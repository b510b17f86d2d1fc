// Chat page behaviours: the composer (Enter sends), following streamed answers, model memory.
const MODEL_KEY = "vero-model";

function nearBottom(element) {
  return element.scrollHeight - element.scrollTop - element.clientHeight < 120;
}

function scroller() {
  return document.getElementById("main");
}

function setGenerating(generating) {
  document.querySelectorAll("[data-send-button]").forEach((button) => {
    button.disabled = generating;
    button.title = generating ? "Wait for the answer to finish, or stop it" : "";
  });
}

function anyStreaming() {
  return document.querySelector("[data-stream-url]") !== null;
}

function anyStreamingBut(article) {
  return [...document.querySelectorAll("[data-stream-url]")].some((other) => other !== article);
}

// Follow one answer: replay from the seq the page rendered, then each delta as it arrives.
function follow(article) {
  if (article.dataset.following) return;
  article.dataset.following = "1";
  const url = new URL(article.dataset.streamUrl, window.location.href);
  url.searchParams.set("after", article.dataset.streamSeq || "0");
  const source = new EventSource(url);
  const text = article.querySelector("[data-stream-text]");
  const reasoning = article.querySelector("[data-reasoning]");
  const reasoningText = article.querySelector("[data-reasoning-text]");
  // Appending to one text node keeps the cost of each delta proportional to the delta.
  const textNode = document.createTextNode("");
  text.appendChild(textNode);
  const reasoningNode = document.createTextNode("");
  reasoningText.appendChild(reasoningNode);

  const append = (node, data) => {
    const box = scroller();
    const stick = box && nearBottom(box);
    node.appendData(JSON.parse(data));
    if (stick) box.scrollTop = box.scrollHeight;
  };
  source.addEventListener("text", (event) => {
    article.dataset.streamSeq = event.lastEventId;
    append(textNode, event.data);
  });
  source.addEventListener("reasoning", (event) => {
    article.dataset.streamSeq = event.lastEventId;
    reasoning.hidden = false;
    append(reasoningNode, event.data);
  });
  source.addEventListener("tool", (event) => {
    article.dataset.streamSeq = event.lastEventId;
  });
  source.addEventListener("done", () => {
    source.close();
    // The server renders the finished message once (sanitized Markdown, actions for its
    // status); the chat's body comes along so version switchers unlock too.
    const body = document.getElementById("chat-body");
    const chat = document.querySelector("[data-chat-id]");
    const request = body && chat && !anyStreamingBut(article)
      ? window.htmx.ajax("GET", `/c/${chat.dataset.chatId}/?part=body`, { target: body, swap: "outerHTML" })
      : window.htmx.ajax("GET", article.dataset.detailUrl, { target: article, swap: "outerHTML" });
    request.then(() => setGenerating(anyStreaming()));
  });
}

// The sidebar learns of a new chat a moment after its answer's stream has opened: fetched at
// once, the list competed with the stream's start (its first token came ~10 ms later).
const SIDEBAR_REFRESH_DELAY_MS = 300;

// A new chat's first send answers with the chat's header (data-chat-started): from then on
// the page is that chat's, so the composer sends to it and its body can be refreshed.
function chatStarted(header) {
  const section = header.closest("section.chat");
  if (section) {
    section.dataset.chatId = header.dataset.chatStarted;
    section.classList.remove("chat-new");
    section.removeAttribute("hx-history"); // a chat's page is kept in history like any other
  }
  const form = document.getElementById("composer");
  if (form) {
    form.action = header.dataset.sendUrl;
    form.setAttribute("hx-post", header.dataset.sendUrl);
    window.htmx.process(form);
  }
  header.removeAttribute("data-chat-started");
  window.setTimeout(() => window.htmx.trigger(document.body, "chats-changed"), SIDEBAR_REFRESH_DELAY_MS);
}

function init(root) {
  const scope = root instanceof Element ? root : document;
  if (scope.matches && scope.matches("[data-chat-started]")) chatStarted(scope);
  const articles = scope.matches && scope.matches("[data-stream-url]") ? [scope] : [];
  articles.push(...scope.querySelectorAll("[data-stream-url]"));
  articles.forEach(follow);
  const picker = document.querySelector("[data-model-picker]");
  if (picker && !picker.dataset.remembered) {
    picker.dataset.remembered = "1";
    const isNewChat = !document.querySelector("[data-chat-id]");
    let saved = null;
    try { saved = localStorage.getItem(MODEL_KEY); } catch (e) { /* storage blocked */ }
    if (isNewChat && saved && picker.querySelector(`option[value="${CSS.escape(saved)}"]`)) picker.value = saved;
    picker.addEventListener("change", () => {
      try { localStorage.setItem(MODEL_KEY, picker.value); } catch (e) { /* ignore */ }
    });
  }
  setGenerating(anyStreaming());
  const box = scroller();
  if (box && scope === document) box.scrollTop = box.scrollHeight;
}

// Enter sends, Shift+Enter adds a line; the textarea grows with its content.
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (!(target instanceof HTMLTextAreaElement) || !target.matches("[data-composer-text]")) return;
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    const form = target.form;
    const button = form.querySelector("[data-send-button]");
    if (target.value.trim() && !(button && button.disabled)) form.requestSubmit();
  }
});
document.addEventListener("input", (event) => {
  const target = event.target;
  if (target instanceof HTMLTextAreaElement && target.matches("[data-composer-text]")) {
    target.style.height = "auto";
    target.style.height = `${Math.min(target.scrollHeight, 320)}px`;
  }
});

// After a send: clear the composer and its error; keep the error text when the send failed.
document.addEventListener("htmx:beforeRequest", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.matches("[data-composer]")) {
    const error = form.querySelector("#composer-error");
    if (error) error.textContent = "";
  }
});
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.matches("[data-composer]") && event.detail.successful) {
    const text = form.querySelector("[data-composer-text]");
    if (text) { text.value = ""; text.style.height = "auto"; }
  }
});
// Errors come back as 4xx partials: let htmx swap them into the composer's error slot.
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.xhr.status >= 400 && event.detail.xhr.status < 500) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

function start() {
  window.htmx.onLoad(init);
}
if (window.htmx) start(); else document.addEventListener("DOMContentLoaded", start);
