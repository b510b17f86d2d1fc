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
    if (button.hasAttribute("data-attachments-block")) return; // a file uploads, or the model cannot read it (attachments.js)
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
  // The tools menu only for a model that can call tools.
  const tools = picker.form?.querySelector("[data-tools-menu]");
  if (tools) {
    tools.hidden = !capabilities.has("tools");
    if (tools.hidden) tools.open = false;
  }
}

// The chat's tools menu (templates/chats/_tools_menu.html). An existing chat saves a change at
// once, merged into its settings on the server; a new chat's choice is staged in the
// composer's form and goes with the first send.
async function toolsChanged(menu, changed) {
  const chosen = [...menu.querySelectorAll("[data-tools-choice]")]
    .filter((box) => box.checked).map((box) => box.value);
  const url = menu.dataset.settingsUrl;
  if (!url) {
    menu.querySelector("[data-tools-staged]").value = "1";
    return;
  }
  const error = document.getElementById("composer-error");
  if (error) error.textContent = "";
  const cookie = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  let message = null;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "X-CSRFToken": cookie ? decodeURIComponent(cookie[1]) : "",
      },
      body: JSON.stringify({ tools: chosen }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      message = body.error || `The tools could not be saved (error ${response.status}).`;
    }
  } catch (failure) {
    message = "Could not reach the server: the tools were not saved.";
  }
  if (message !== null) {
    changed.checked = !changed.checked; // as saved
    if (error) {
      const line = document.createElement("p");
      line.className = "form-error";
      line.textContent = message;
      error.replaceChildren(line);
    }
  }
}

document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.matches("[data-tools-choice]")) return;
  toolsChanged(box.closest("[data-tools-menu]"), box);
});

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

// -- an answer's parts ----------------------------------------------------------------------
// The live events (docs/tools.md, "Live events") folded onto the blocks the server renders
// from saved parts (chats/parts_display.py, the part-* partials of templates/chats/_message.html): a page rendered
// from a checkpoint that then follows the stream ends with the very elements of a page
// rendered from the final parts. Each helper below has its twin there.

const RESULT_DISPLAY_CHARS = 4000; // chats.parts_display.RESULT_DISPLAY_CHARS
const TOOL_STATUS_LABELS = {
  pending: "Waiting",
  running: "Running…",
  complete: "Done",
  error: "Failed",
  unfinished: "Not finished",
};
const BLANK = " \t\n\r";
const CLOSING = { "{": "}", "[": "]" };

// JSON text (maybe partial) laid out with two-space indents, character by character: numbers
// and escapes stay as written (chats.parts_display.json_reindent).
function jsonReindent(text) {
  let out = "";
  let depth = 0;
  let inString = false;
  let escaped = false;
  let position = 0;
  while (position < text.length) {
    const char = text[position];
    position += 1;
    if (inString) {
      out += char;
      if (escaped) escaped = false;
      else if (char === "\\") escaped = true;
      else if (char === '"') inString = false;
    } else if (BLANK.includes(char)) {
      continue;
    } else if (char === '"') {
      inString = true;
      out += char;
    } else if (char in CLOSING) {
      let following = position;
      while (following < text.length && BLANK.includes(text[following])) following += 1;
      if (following < text.length && text[following] === CLOSING[char]) {
        out += char + CLOSING[char];
        position = following + 1;
      } else {
        depth += 1;
        out += `${char}\n${"  ".repeat(depth)}`;
      }
    } else if (char === "}" || char === "]") {
      depth = Math.max(depth - 1, 0);
      out += `\n${"  ".repeat(depth)}${char}`;
    } else if (char === ",") {
      out += `,\n${"  ".repeat(depth)}`;
    } else if (char === ":") {
      out += ": ";
    } else {
      out += char;
    }
  }
  return out;
}

// Compact JSON with sorted keys (chats.parts_display.json_compact).
function jsonCompact(value) {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return `[${value.map(jsonCompact).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${jsonCompact(value[key])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function element(tag, className, flag) {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (flag) made.setAttribute(flag, "");
  return made;
}

function reasoningElement() {
  const details = element("details", "reasoning", "data-reasoning");
  const summary = element("summary");
  summary.textContent = "Reasoning";
  details.append(summary, element("div", "reasoning-text", "data-reasoning-text"));
  return details;
}

function textElement() {
  return element("div", "message-content streaming-text", "data-stream-text");
}

function toolStatusSet(tool, status) {
  tool.dataset.callStatus = status;
  const shown = tool.querySelector("[data-tool-status]");
  const label = TOOL_STATUS_LABELS[status] || status;
  if (status === "running") {
    const spinner = element("span", "spinner");
    spinner.setAttribute("aria-hidden", "true");
    shown.replaceChildren(spinner, label);
  } else {
    shown.replaceChildren(label);
  }
}

// The part-tool partial of templates/chats/_message.html; `args` null: a result without its call.
function toolElement({ name, callId, index, status, args }) {
  const tool = element("details", "tool-call", "data-tool-call");
  tool.dataset.callId = callId;
  tool.dataset.callIndex = index;
  tool.dataset.callStatus = status;
  if (args !== null) tool.dataset.arguments = args;
  const summary = element("summary");
  const nameShown = element("span", "tool-name", "data-tool-name");
  nameShown.textContent = name;
  const statusShown = element("span", "tool-status", "data-tool-status");
  statusShown.setAttribute("aria-live", "polite");
  summary.append(nameShown, " ", statusShown);
  const detail = element("div", "tool-detail");
  if (args !== null) {
    const label = element("p", "tool-label");
    label.textContent = "Arguments";
    const shown = element("pre", "tool-json", "data-tool-arguments");
    shown.textContent = jsonReindent(args);
    detail.append(label, shown);
  }
  tool.append(summary, detail);
  toolStatusSet(tool, status);
  return tool;
}

function toolResultSet(tool, { result, is_error: isError }) {
  const printed = [...jsonReindent(jsonCompact(result))]; // code points, as Python counts
  const box = element("div", isError ? "tool-result tool-result-error" : "tool-result", "data-tool-result");
  const label = element("p", "tool-label");
  label.textContent = "Result";
  const shown = element("pre", "tool-json");
  shown.textContent = printed.slice(0, RESULT_DISPLAY_CHARS).join("");
  box.append(label, shown);
  if (printed.length > RESULT_DISPLAY_CHARS) {
    const note = element("p", "tool-cut muted small");
    const count = (number) => number.toLocaleString("en-US");
    note.textContent = `Showing the first ${count(RESULT_DISPLAY_CHARS)} of ${count(printed.length)} characters.`;
    box.append(note);
  }
  tool.querySelector(".tool-detail").append(box);
}

// The blocks of one answer (its .message-body) and the fold of each event onto them.
class AnswerParts {
  constructor(body, onShown) {
    this.body = body;
    this.onShown = onShown;
    // Deltas go to one text node per block: the cost of each is proportional to the delta.
    this.textBlock = null;
    this.textNode = null;
    this.reasoningBlock = null;
    this.reasoningNode = null;
  }

  // The empty text block an answer without text ends with (not a part).
  placeholderText() {
    const last = this.body.lastElementChild;
    return last && last.matches("[data-stream-text]") && last.textContent === "" ? last : null;
  }

  // The empty, hidden reasoning block an answer that does not open with reasoning starts with.
  placeholderReasoning() {
    const first = this.body.firstElementChild;
    return first && first.matches("[data-reasoning]") && first.hidden ? first : null;
  }

  lastPart() {
    let last = this.body.lastElementChild;
    if (last && last === this.placeholderText()) last = last.previousElementSibling;
    if (last && last === this.placeholderReasoning()) return null;
    return last;
  }

  // A new block goes after the parts, before the closing placeholder.
  add(block) {
    const placeholder = this.placeholderText();
    if (placeholder) placeholder.before(block);
    else this.body.append(block);
    return block;
  }

  reasoning(delta) {
    const last = this.lastPart();
    let block = last && last.matches("[data-reasoning]") ? last : null;
    if (!block) block = (last === null && this.placeholderReasoning()) || this.add(reasoningElement());
    if (block !== this.reasoningBlock) {
      this.reasoningBlock = block;
      this.reasoningNode = document.createTextNode("");
      block.querySelector("[data-reasoning-text]").append(this.reasoningNode);
    }
    this.reasoningNode.appendData(delta);
    // Hidden while empty, as the server renders it (a step may open with an empty reasoning
    // part that only holds the provider's state).
    if (delta) {
      block.hidden = false;
      this.onShown();
    } else {
      block.hidden = block.querySelector("[data-reasoning-text]").textContent === "";
    }
  }

  text(delta) {
    const last = this.lastPart();
    let block = last && last.matches("[data-stream-text]") ? last : null;
    if (!block) block = this.placeholderText() || this.add(textElement());
    if (block !== this.textBlock) {
      this.textBlock = block;
      this.textNode = document.createTextNode("");
      block.append(this.textNode);
    }
    this.textNode.appendData(delta);
    this.onShown();
  }

  tools() {
    return [...this.body.querySelectorAll(":scope > [data-tool-call]")];
  }

  // The latest call with this id (that has no result yet, when `open`).
  call(id, { open = false } = {}) {
    return this.tools().reverse().find((tool) => tool.dataset.callId === id
      && tool.dataset.arguments !== undefined
      && !(open && tool.querySelector("[data-tool-result]")));
  }

  tool({ index, id, name, arguments: piece }) {
    // This step's calls are those after the last result (a step's results follow its calls).
    let tool = null;
    for (const candidate of this.tools().reverse()) {
      if (candidate.querySelector("[data-tool-result]")) break;
      if (candidate.dataset.callIndex === String(index)) {
        tool = candidate;
        break;
      }
    }
    if (!tool) {
      tool = this.add(toolElement({ name: "", callId: "", index: String(index), status: "pending", args: "" }));
    }
    if (id) tool.dataset.callId = id;
    if (name) tool.querySelector("[data-tool-name]").textContent = name;
    if (piece) {
      tool.dataset.arguments += piece;
      tool.querySelector("[data-tool-arguments]").textContent = jsonReindent(tool.dataset.arguments);
    }
    this.onShown();
  }

  toolCall({ id, status }) {
    const tool = this.call(id);
    if (tool) toolStatusSet(tool, status);
  }

  toolResult(result) {
    let tool = this.call(result.id, { open: true });
    if (!tool) {
      tool = this.add(toolElement({
        name: result.name || "",
        callId: result.id || "",
        index: "",
        status: result.is_error ? "error" : "complete",
        args: null,
      }));
    }
    toolResultSet(tool, result);
  }

  notice({ kind, text }) {
    const note = element("p", "notice");
    note.setAttribute("role", "note");
    note.dataset.notice = kind || "";
    note.textContent = text || "";
    this.add(note);
  }

  // The end: each text part takes its rendered HTML; calls that never ended say so.
  done({ html, parts_html: partsHtml }) {
    const placeholder = this.placeholderText();
    const texts = [...this.body.querySelectorAll(":scope > .message-content")]
      .filter((block) => block !== placeholder);
    const rendered = partsHtml || (texts.length === 1 && html ? [html] : []);
    texts.forEach((block, position) => {
      if (!rendered[position]) return;
      const markdown = element("div", "message-content markdown");
      markdown.innerHTML = rendered[position];
      block.replaceWith(markdown);
    });
    this.tools().forEach((tool) => {
      if (["pending", "running"].includes(tool.dataset.callStatus)) toolStatusSet(tool, "unfinished");
    });
  }
}

// Follow one answer: replay from the seq the page rendered, then each event as it arrives.
function follow(article) {
  if (article.dataset.following) return;
  article.dataset.following = "1";
  const notice = article.querySelector("[data-stream-notice]");
  const noticeText = article.querySelector("[data-stream-notice-text]");
  let source = null;
  let failures = 0;
  let timer = null;

  let shown = false;
  const parts = new AnswerParts(article.querySelector(".message-body"), () => {
    if (!shown) {
      shown = true;
      article.dispatchEvent(new Event("vero:first-text"));
    }
  });
  const received = (event) => {
    article.dataset.streamSeq = event.lastEventId;
    failures = 0;
    if (notice) notice.hidden = true;
  };
  // Each event folds onto the blocks; the conversation stays at its end if it was there.
  const on = (kind, fold) => source.addEventListener(kind, (event) => {
    received(event);
    const box = scroller();
    const stick = box && nearBottom(box);
    fold(JSON.parse(event.data));
    if (stick) box.scrollTop = box.scrollHeight;
  });
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
    on("text", (data) => parts.text(data));
    on("reasoning", (data) => parts.reasoning(data));
    on("step", () => {}); // a new model call: its calls are told apart by the results before them
    on("tool", (data) => parts.tool(data));
    on("tool-call", (data) => parts.toolCall(data));
    on("tool-result", (data) => parts.toolResult(data));
    on("notice", (data) => parts.notice(data));
    source.addEventListener("done", (event) => {
      const data = JSON.parse(event.data);
      // Still `streaming`: the server could not follow it from here just now.
      if (data.status === "streaming") {
        reconnectLater();
        return;
      }
      source.close();
      parts.done(data);
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
    // The chat exists: its tools menu saves a change from now on.
    const tools = form.querySelector("[data-tools-menu]");
    if (tools) tools.dataset.settingsUrl = `${started.dataset.chatUrl}settings`;
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
    const tools = form.querySelector("[data-tools-menu]");
    if (tools) tools.open = false;
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
