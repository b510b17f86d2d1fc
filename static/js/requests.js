// Every htmx request: the CSRF token as the cookie holds it now, and failures in words.
//
// A login (or logout) in another tab rotates the token; a token baked into this page would be
// refused. The token is read from the cookie at each request instead, so the next send works.
// A failed request never puts the server's page into the chat: the message goes in the error
// slot near the form, and the form keeps what was typed.
const CSRF_COOKIE = "csrftoken"; // Django's CSRF_COOKIE_NAME (tests/test_csrf_pages.py checks it)
const CSRF_FAILURE_HEADER = "Vero-CSRF-Failure"; // vero.views.csrf_failure
const RETRIED = "data-csrf-retried";

function csrfToken() {
  const match = document.cookie.match(new RegExp(`(?:^|;\\s*)${CSRF_COOKIE}=([^;]+)`));
  return match ? decodeURIComponent(match[1]) : null;
}

// The tab that sends (static/js/cache/leader.js): the server names it as the origin of the
// events the request causes, so this tab can tell its own changes' echo from other tabs'.
function tabId() {
  if (window.veroCache) return window.veroCache.tabId;
  try { return sessionStorage.getItem("vero-tab"); } catch (error) { return null; }
}

document.addEventListener("htmx:configRequest", (event) => {
  const tab = tabId();
  if (tab) event.detail.headers["X-Vero-Tab"] = tab;
  const token = csrfToken();
  if (!token) return;
  event.detail.headers["X-CSRFToken"] = token;
  // Django reads a form's hidden field before the header: it must not be the page's old one.
  if (event.detail.parameters.csrfmiddlewaretoken !== undefined) {
    event.detail.parameters.csrfmiddlewaretoken = token;
  }
});

// Forms that are not htmx's (log out, delete a chat) post their hidden field: refresh it too.
document.addEventListener("submit", (event) => {
  const field = event.target instanceof HTMLFormElement
    ? event.target.querySelector("input[name=csrfmiddlewaretoken]") : null;
  const token = csrfToken();
  if (field && token) field.value = token;
}, true);

function failureMessage(status) {
  if (status === 0) return "Could not reach the server. Check your connection and try again.";
  if (status === 403) return "The server refused this request: reload the page and try again.";
  if (status === 404) return "This no longer exists (it may have been deleted in another tab).";
  if (status === 429) return "Too many requests: wait a moment and try again.";
  if (status >= 500) return `The server had a problem (error ${status}). Please try again in a moment.`;
  return `The request failed (error ${status}). Please try again.`;
}

// Near the form: the composer's error slot on a chat page, else the page's own.
function errorSlot() {
  return document.getElementById("composer-error") || document.getElementById("request-error");
}

function showFailure(message) {
  const slot = errorSlot();
  if (!slot) return;
  const line = document.createElement("p");
  line.className = "form-error";
  line.setAttribute("role", "alert");
  line.textContent = message;
  slot.replaceChildren(line);
  slot.hidden = false;
}

// Our error partials are fragments meant for the page; a whole document (Django's error pages,
// a proxy's) never is.
function isFragment(xhr) {
  return !/^\s*<(!doctype|html)/i.test(xhr.responseText || "");
}

// The same request again: htmx reads the form's values and the element's target and swap anew,
// and configRequest above puts in the token the cookie holds now.
function retry(detail) {
  const config = detail.requestConfig;
  window.htmx.ajax(config.verb, config.path, {
    source: config.elt,
    target: detail.target,
    values: Object.fromEntries(config.formData),
  });
}

document.addEventListener("htmx:beforeSwap", (event) => {
  const { xhr, requestConfig } = event.detail;
  if (xhr.status < 400) return;
  const elt = requestConfig.elt;
  if (xhr.status === 403 && xhr.getResponseHeader(CSRF_FAILURE_HEADER)) {
    event.detail.shouldSwap = false;
    if (!elt.hasAttribute(RETRIED)) {
      elt.setAttribute(RETRIED, "");
      retry(event.detail);
      return;
    }
    elt.removeAttribute(RETRIED);
  } else if (xhr.status < 500 && isFragment(xhr)) {
    // Errors we render (a refused send, a busy chat) come as 4xx partials aimed at their slot.
    event.detail.shouldSwap = true;
    event.detail.isError = false;
    return;
  }
  event.detail.shouldSwap = false;
  showFailure(failureMessage(xhr.status));
});

document.addEventListener("htmx:afterRequest", (event) => {
  const { xhr, requestConfig } = event.detail;
  if (!(xhr.status === 403 && xhr.getResponseHeader(CSRF_FAILURE_HEADER))) {
    requestConfig.elt.removeAttribute(RETRIED);
  }
});
document.addEventListener("htmx:sendError", () => showFailure(failureMessage(0)));
document.addEventListener("htmx:timeout", () => showFailure(failureMessage(0)));
document.addEventListener("htmx:beforeRequest", () => {
  const slot = document.getElementById("request-error");
  if (slot && !slot.hidden) { slot.hidden = true; slot.replaceChildren(); }
});
