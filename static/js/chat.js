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
    if (button.hasAttribute("data-no-model")) return; // stays disabled, its reason shown
    if (button.closest("[data-offline]")) return; // offline: nothing can be sent (cache/offline.js)
    button.disabled = generating;
    button.title = generating ? "Wait for the answer to finish, or stop it" : "";
  });
}

// The icons next to the picker show what the chosen model can do.
function showCapabilities(picker) {
  const chosen = picker.selectedOptions[0];
  const capabilities = new Set((chosen?.dataset.capabilities || "").split(" ").filter(Boolean));
  const icons = picker.form?.querySelectorAll("[data-model-capabilities] [data-capability]") || [];
  // SVG elements have no `hidden` property: the attribute itself is toggled.
  icons.forEach((icon) => icon.toggleAttribute("hidden", !capabilities.has(icon.dataset.capability)));
}

function anyStreaming() {
  return document.querySelector("[data-stream-url]") !== null;
}

function anyStreamingBut(article) {
  return [...document.querySelectorAll("[data-stream-url]")].some((other) => other !== article);
}

// After a stream that ended without the answer's final state (the connection dropped, or the
// server could not follow the answer just then), wait 1, 2, 4 … up to 30 s before trying again:
// never a loop of requests.
const RECONNECT_FIRST_MS = 1000;
const RECONNECT_MAX_MS = 30000;

// Follow one answer: replay from the seq the page rendered, then each delta as it arrives.
function follow(article) {
  if (article.dataset.following) return;
  article.dataset.following = "1";
  const text = article.querySelector("[data-stream-text]");
  const reasoning = article.querySelector("[data-reasoning]");
  const reasoningText = article.querySelector("[data-reasoning-text]");
  const notice = article.querySelector("[data-stream-notice]");
  const noticeText = article.querySelector("[data-stream-notice-text]");
  // Appending to one text node keeps the cost of each delta proportional to the delta.
  const textNode = document.createTextNode("");
  text.appendChild(textNode);
  const reasoningNode = document.createTextNode("");
  reasoningText.appendChild(reasoningNode);
  let source = null;
  let failures = 0;
  let timer = null;

  let shown = false;
  const append = (node, data) => {
    const box = scroller();
    const stick = box && nearBottom(box);
    node.appendData(JSON.parse(data));
    if (stick) box.scrollTop = box.scrollHeight;
    if (!shown) {
      shown = true;
      article.dispatchEvent(new Event("vero:first-text"));
    }
  };
  const received = (event) => {
    article.dataset.streamSeq = event.lastEventId;
    failures = 0;
    if (notice) notice.hidden = true;
  };
  const reconnectLater = () => {
    source.close();
    if (!article.isConnected) return;  // replaced meanwhile: its successor follows
    const delay = Math.min(RECONNECT_FIRST_MS * 2 ** failures, RECONNECT_MAX_MS);
    failures += 1;
    if (notice) {
      noticeText.textContent = `Lost track of this answer. Trying again in ${Math.round(delay / 1000)} s.`;
      notice.hidden = false;
    }
    timer = setTimeout(connect, delay);
  };
  const finish = () => {
    article.dispatchEvent(new Event("vero:finished"));
    // The server renders the finished message once (sanitized Markdown, actions for its
    // status); the chat's body comes along so version switchers unlock too.
    const body = document.getElementById("chat-body");
    const chat = document.querySelector("[data-chat-id]");
    const request = body && chat && !anyStreamingBut(article)
      ? window.htmx.ajax("GET", `/c/${chat.dataset.chatId}/?part=body`, { target: body, swap: "outerHTML" })
      : window.htmx.ajax("GET", article.dataset.detailUrl, { target: article, swap: "outerHTML" });
    request.then(() => setGenerating(anyStreaming()));
  };

  function connect() {
    timer = null;
    const url = new URL(article.dataset.streamUrl, window.location.href);
    url.searchParams.set("after", article.dataset.streamSeq || "0");
    source = new EventSource(url);
    source.addEventListener("text", (event) => {
      received(event);
      append(textNode, event.data);
    });
    source.addEventListener("reasoning", (event) => {
      received(event);
      reasoning.hidden = false;
      append(reasoningNode, event.data);
    });
    source.addEventListener("tool", received);
    source.addEventListener("done", (event) => {
      // Still `streaming`: the server could not follow it from here just now.
      if (JSON.parse(event.data).status === "streaming") {
        reconnectLater();
        return;
      }
      source.close();
      finish();
    });
    // A dropped connection: reconnect on our schedule, not the browser's (every second).
    source.addEventListener("error", reconnectLater);
  }

  const retry = article.querySelector("[data-stream-retry]");
  if (retry) {
    retry.addEventListener("click", () => {
      if (timer === null) return;
      clearTimeout(timer);
      notice.hidden = true;
      connect();
    });
  }
  connect();
}

// The sidebar learns of a new chat a moment after its answer's stream has opened: fetched at
// once, the list competed with the stream's start (its first token came ~10 ms later).
const SIDEBAR_REFRESH_DELAY_MS = 300;
// The page turns into the chat's after the answer's first text, or after this long at most.
const CHAT_PAGE_LATEST_MS = 250;

// A new chat's first send answers with its turn and a template (data-chat-started) holding the
// chat's header. The composer sends to the chat at once; the header, the URL and the document
// title (layout and history work, some milliseconds) wait until the first text is painted.
function chatStarted(started) {
  const articles = [...document.querySelectorAll("[data-stream-url]")];
  articles.forEach(follow);
  started.remove();
  const section = document.querySelector("section.chat");
  if (section) section.dataset.chatId = started.dataset.chatStarted;
  const form = document.getElementById("composer");
  if (form) {
    // The composer posts to its action (see htmx:configRequest below): no htmx.process of
    // the whole form, which cost the stream's start a few milliseconds.
    form.action = started.dataset.sendUrl;
    form.setAttribute("hx-post", started.dataset.sendUrl);
  }
  let done = false;
  const becomeChat = () => {
    if (done || !section || !section.isConnected) return;
    done = true;
    const welcome = document.getElementById("welcome");
    const header = started.content.firstElementChild;
    if (welcome && header) {
      welcome.replaceWith(header);
      window.htmx.process(header);
    }
    section.classList.remove("chat-new");
    window.history.pushState({ htmx: true }, "", started.dataset.chatUrl);
    document.title = started.dataset.documentTitle;
    window.setTimeout(() => window.htmx.trigger(document.body, "chats-changed"), SIDEBAR_REFRESH_DELAY_MS);
  };
  // After the frame that shows the first text, not inside it.
  const afterPaint = () => window.requestAnimationFrame(() => window.setTimeout(becomeChat));
  articles.forEach((article) => {
    article.addEventListener("vero:first-text", afterPaint, { once: true });
    // Finished before that (a short answer): the page is the chat's before its body reloads.
    article.addEventListener("vero:finished", becomeChat, { once: true });
  });
  window.setTimeout(becomeChat, CHAT_PAGE_LATEST_MS);
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
      showCapabilities(picker);
    });
    showCapabilities(picker);
  }
  setGenerating(anyStreaming());
  const box = scroller();
  // A page (htmx hands it over as the body) opens at its last message.
  if (box && (scope === document || scope === document.body)) box.scrollTop = box.scrollHeight;
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

// The composer's target is its action, which chatStarted changes once a new chat exists.
document.addEventListener("htmx:configRequest", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.matches("[data-composer]")) {
    event.detail.path = form.getAttribute("action");
  }
});

// After a send: clear the composer and its error; keep the typed text when the send failed
// (a refused send answers 4xx with its reason; static/js/requests.js shows the other failures).
document.addEventListener("htmx:beforeRequest", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.matches("[data-composer]")) {
    const error = form.querySelector("#composer-error");
    if (error) error.textContent = "";
  }
});
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.target;
  const sent = event.detail.successful && event.detail.xhr.status < 400;
  if (form instanceof HTMLFormElement && form.matches("[data-composer]") && sent) {
    const text = form.querySelector("[data-composer-text]");
    if (text) { text.value = ""; text.style.height = "auto"; }
    // htmx re-enabled Send when the request ended, but the turn's answer is swapped in only
    // after the settle delay: until then an Enter would send a second turn (a 409).
    setGenerating(true);
  }
});

function start() {
  // At the end before htmx watches the loader of earlier messages: at the top, it would be in
  // view for a moment and load a window nobody asked for.
  const box = scroller();
  if (box) box.scrollTop = box.scrollHeight;
  window.htmx.onLoad(init);
}
if (window.htmx) start(); else document.addEventListener("DOMContentLoaded", start);

// Every change to the tree, and every read of more of the conversation, carries the tree
// version the page shows: the server tells a page that missed another tab's change apart
// (and answers it with the whole conversation).
document.addEventListener("htmx:configRequest", (event) => {
  const version = document.querySelector("[data-version-input]");
  if (version && event.detail.parameters.version === undefined) {
    event.detail.parameters.version = version.value;
  }
});

// The loader of earlier messages at the top of a change's answer (templates/chats/_window.html).
const SPLICE_LEAD = /<div class="window-more"[^>]*data-splice-lead[^>]*>[^<]*<\/div>/;

// A change answers with the conversation below the message above it (Vero-Replace-After: its
// id; empty: from the first message). What the page showed below that message goes; the
// answer takes its place. When that message is not on the page (above the loaded window), the
// answer replaces the whole list, with its own "earlier messages" loader at the top.
document.addEventListener("htmx:beforeSwap", (event) => {
  const { xhr } = event.detail;
  const after = xhr.getResponseHeader("Vero-Replace-After");
  if (after === null || xhr.status >= 400) return;
  const messages = document.getElementById("messages");
  if (!messages) return;
  const anchor = after ? document.getElementById(`m-${after}`) : null;
  if (anchor && anchor.parentElement === messages) {
    while (anchor.nextElementSibling) anchor.nextElementSibling.remove();
    // What is above the change is on the page already: the answer's loader of it is not needed.
    event.detail.serverResponse = event.detail.serverResponse.replace(SPLICE_LEAD, "");
    event.detail.target = anchor;
    event.detail.swapOverride = "afterend";
  } else if (/data-message-id=/.test(event.detail.serverResponse)) {
    event.detail.target = messages;
    event.detail.swapOverride = "innerHTML";
  } else {
    // Nothing below a message this page has not loaded: the page shows the chat again.
    event.detail.shouldSwap = false;
    const chat = document.querySelector("[data-chat-id]");
    if (chat) {
      window.htmx.ajax("GET", `/c/${chat.dataset.chatId}/?part=body`, { target: "#chat-body", swap: "outerHTML" });
    }
  }
});
