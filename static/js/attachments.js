// The composer's attachments (docs/attachments.md): a file chosen, dropped, pasted or recorded
// uploads at once (POST /attachments, the raw body); its chip shows a preview, the upload's
// progress or the server's error, and a Remove button; its id goes with the send as a hidden
// `attachments` input. What may be attached follows the chosen model's input modalities.

// The registry's modality of a file, from the browser's type (the server sniffs the bytes and
// has the last word; this only keeps a model from being offered what it cannot read).
const ACCEPT = {
  image: "image/jpeg,image/png,image/gif,image/webp",
  file: "application/pdf,.pdf",
  audio: "audio/wav,audio/x-wav,audio/mpeg,audio/ogg,audio/webm,audio/mp4,audio/x-m4a,audio/flac,.wav,.mp3,.ogg,.opus,.webm,.m4a,.flac",
};
import { humanSize } from "./file-parts.js";

const KIND_NAMES = { image: "images", file: "documents", audio: "audio" };

export function kindOf(file) {
  const type = file.type || "";
  if (type.startsWith("image/")) return "image";
  if (type.startsWith("audio/")) return "audio";
  if (type === "application/pdf" || /\.pdf$/i.test(file.name || "")) return "file";
  if (/\.(wav|mp3|ogg|opus|webm|m4a|flac)$/i.test(file.name || "")) return "audio";
  return null;
}

function csrfToken() {
  const cookie = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (cookie) return decodeURIComponent(cookie[1]);
  const field = document.querySelector("input[name=csrfmiddlewaretoken]");
  return field ? field.value : "";
}

function made(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// The modalities the picker's chosen model reads (beyond text).
function modelInputs(form) {
  const picker = form.querySelector("[data-model-picker]");
  const chosen = picker && picker.selectedOptions[0];
  return new Set((chosen?.dataset.inputs || "").split(" ").filter((kind) => kind in ACCEPT));
}

function modelName(form) {
  const picker = form.querySelector("[data-model-picker]");
  return (picker?.selectedOptions[0]?.textContent || "This model").trim();
}

function announce(form, text) {
  const status = form.querySelector("[data-attachment-status]");
  if (status) status.textContent = text;
}

// A file's place in the composer: its chip, its upload, its hidden input once stored.
function chipAdd(form, file) {
  const kind = kindOf(file);
  const list = form.querySelector("[data-attachment-chips]");
  const chip = made("li", "attachment-chip");
  chip.dataset.attachmentChip = "";
  chip.dataset.kind = kind || "";
  chip.dataset.state = "uploading";
  let preview = null;
  if (kind === "image") {
    preview = made("img", "attachment-thumb");
    preview.src = URL.createObjectURL(file);
    preview.alt = file.name || "Pasted image";
  } else if (kind === "audio") {
    preview = made("audio", "attachment-audio");
    preview.controls = true;
    preview.src = URL.createObjectURL(file);
  } else {
    preview = made("span", "attachment-icon", "PDF");
    preview.setAttribute("aria-hidden", "true");
  }
  const label = made("span", "attachment-label");
  label.append(made("span", "attachment-name", file.name || "file"), made("span", "attachment-size muted small", humanSize(file.size)));
  const progress = made("progress", "attachment-progress");
  progress.max = 100;
  progress.value = 0;
  progress.setAttribute("aria-label", `Uploading ${file.name}`);
  const error = made("span", "attachment-error");
  error.dataset.attachmentError = "";
  error.hidden = true;
  const remove = made("button", "icon-button attachment-remove", "×");
  remove.type = "button";
  remove.setAttribute("aria-label", `Remove ${file.name}`);
  chip.append(preview, label, progress, error, remove);
  list.append(chip);

  const request = new XMLHttpRequest();
  remove.addEventListener("click", () => {
    request.abort();
    if (preview.src && preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
    chip.remove();
    announce(form, `${file.name} removed.`);
    checkAgainstModel(form);
    form.querySelector("[data-composer-text]")?.focus();
  });
  const failed = (message) => {
    chip.dataset.state = "error";
    progress.hidden = true;
    error.hidden = false;
    error.textContent = message;
    error.setAttribute("role", "alert");
    checkAgainstModel(form);
  };
  request.open("POST", "/attachments");
  request.setRequestHeader("Content-Type", "application/octet-stream");
  request.setRequestHeader("X-Filename", encodeURIComponent(file.name || "file"));
  request.setRequestHeader("X-CSRFToken", csrfToken());
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) progress.value = Math.round((event.loaded / event.total) * 100);
  });
  request.addEventListener("load", () => {
    let body = {};
    try { body = JSON.parse(request.responseText); } catch (e) { /* not JSON: a proxy's page */ }
    if (request.status !== 200 && request.status !== 201) {
      failed(body.error || (request.status === 413 ? "This file is too large." : `The upload failed (error ${request.status}).`));
      return;
    }
    chip.dataset.state = "done";
    chip.dataset.kind = body.kind || kind || "";
    progress.hidden = true;
    const input = made("input");
    input.type = "hidden";
    input.name = "attachments";
    input.value = body.id;
    chip.append(input);
    announce(form, `${file.name} attached.`);
    checkAgainstModel(form);
  });
  request.addEventListener("error", () => failed("Could not reach the server: the file was not uploaded."));
  announce(form, `Uploading ${file.name}…`);
  request.send(file);
  checkAgainstModel(form);
}

export function filesAdd(form, files) {
  const inputs = modelInputs(form);
  const refused = [];
  for (const file of files) {
    const kind = kindOf(file);
    if (kind && inputs.has(kind)) chipAdd(form, file);
    else refused.push(file.name || "file");
  }
  if (refused.length) {
    const readable = [...inputs].map((kind) => KIND_NAMES[kind]).join(", ") || "no files";
    showWarning(form, `${modelName(form)} cannot read ${refused.join(", ")}: it reads ${readable}.`);
  }
}

function showWarning(form, text) {
  const warning = form.querySelector("[data-attachment-warning]");
  if (!warning) return;
  warning.textContent = text;
  warning.hidden = !text;
}

// Send waits while a file uploads, and while the chosen model cannot read an attached file.
export function checkAgainstModel(form) {
  const inputs = modelInputs(form);
  const chips = [...form.querySelectorAll("[data-attachment-chip]")];
  const unreadable = chips.filter((chip) => chip.dataset.kind && !inputs.has(chip.dataset.kind));
  const uploading = chips.some((chip) => chip.dataset.state === "uploading");
  const failed = chips.some((chip) => chip.dataset.state === "error");
  chips.forEach((chip) => chip.classList.toggle("attachment-unreadable", unreadable.includes(chip)));
  if (unreadable.length) {
    const names = unreadable.map((chip) => chip.querySelector(".attachment-name").textContent).join(", ");
    showWarning(form, `${modelName(form)} cannot read ${names}. Remove it or choose another model to send.`);
  } else {
    showWarning(form, "");
  }
  const button = form.querySelector("[data-send-button]");
  if (button && !button.hasAttribute("data-no-model")) {
    const blocked = unreadable.length > 0 || uploading || failed;
    if (blocked) {
      button.disabled = true;
      button.dataset.attachmentsBlock = "";
      button.title = uploading ? "Wait for the upload to finish" : "Remove the file the model cannot read first";
    } else if (button.hasAttribute("data-attachments-block")) {
      button.removeAttribute("data-attachments-block");
      button.disabled = document.querySelector("[data-stream-url]") !== null;
      button.title = "";
    }
  }
  return !(unreadable.length || uploading || failed);
}

// The controls offer only what the chosen model reads, and disappear for a text-only model.
function controlsShow(form) {
  const controls = form.querySelector("[data-attach-controls]");
  if (!controls) return;
  const inputs = modelInputs(form);
  controls.hidden = inputs.size === 0;
  const input = controls.querySelector("[data-attach-input]");
  input.accept = [...inputs].map((kind) => ACCEPT[kind]).join(",");
  input.setAttribute("aria-label", `Attach ${[...inputs].map((kind) => KIND_NAMES[kind]).join(", ")}`);
  const record = controls.querySelector("[data-record-button]");
  record.hidden = !(inputs.has("audio") && window.MediaRecorder && navigator.mediaDevices);
  checkAgainstModel(form);
}

// Recording: record / stop, then the recording uploads like a chosen file.
const recorders = new WeakMap();
async function recordToggle(form, button) {
  const label = button.querySelector("[data-record-label]");
  const running = recorders.get(button);
  if (running) {
    running.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (failure) {
    showWarning(form, "The microphone is not available: allow it in the browser to record.");
    return;
  }
  const recorder = new MediaRecorder(stream);
  const chunks = [];
  recorder.addEventListener("dataavailable", (event) => chunks.push(event.data));
  recorder.addEventListener("stop", () => {
    stream.getTracks().forEach((track) => track.stop());
    recorders.delete(button);
    button.setAttribute("aria-pressed", "false");
    label.textContent = "Record audio";
    const type = (recorder.mimeType || "audio/webm").split(";")[0];
    const extension = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
    filesAdd(form, [new File(chunks, `recording-${stamp}.${extension}`, { type })]);
  });
  recorders.set(button, recorder);
  recorder.start();
  button.setAttribute("aria-pressed", "true");
  label.textContent = "Stop recording";
  announce(form, "Recording…");
}

function composerOf(node) {
  return node instanceof Element ? node.closest("[data-composer]") : null;
}

document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement && target.matches("[data-attach-input]")) {
    filesAdd(composerOf(target), [...target.files]);
    target.value = "";
  } else if (target instanceof HTMLSelectElement && target.matches("[data-model-picker]")) {
    const form = composerOf(target);
    if (form) controlsShow(form);
  }
});

document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-record-button]") : null;
  if (button) recordToggle(composerOf(button), button);
});

document.addEventListener("paste", (event) => {
  const form = composerOf(event.target);
  const files = [...(event.clipboardData?.files || [])];
  if (!form || !files.length) return;
  event.preventDefault();
  filesAdd(form, files);
});

document.addEventListener("dragover", (event) => {
  const form = composerOf(event.target);
  if (!form || !event.dataTransfer?.types.includes("Files")) return;
  event.preventDefault();
  form.classList.add("composer-drop");
});
document.addEventListener("dragleave", (event) => {
  const form = composerOf(event.target);
  if (form && !form.contains(event.relatedTarget)) form.classList.remove("composer-drop");
});
document.addEventListener("drop", (event) => {
  const form = composerOf(event.target);
  if (!form || !event.dataTransfer?.files.length) return;
  event.preventDefault();
  form.classList.remove("composer-drop");
  filesAdd(form, [...event.dataTransfer.files]);
});

// A send that was accepted leaves the composer empty; a refused one keeps its files.
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.matches("[data-composer]")) return;
  if (!(event.detail.successful && event.detail.xhr.status < 400)) return;
  form.querySelectorAll("[data-attachment-chip]").forEach((chip) => {
    chip.querySelectorAll("img, audio").forEach((media) => {
      if (media.src.startsWith("blob:")) URL.revokeObjectURL(media.src);
    });
    chip.remove();
  });
  showWarning(form, "");
});

// Enter or Send never posts while a file uploads or cannot be read by the model.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.matches("[data-composer]") && !checkAgainstModel(form)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

function initComposer() {
  document.querySelectorAll("[data-composer]").forEach((form) => {
    if (form.dataset.attachmentsReady) return;
    form.dataset.attachmentsReady = "1";
    controlsShow(form);
  });
}
if (window.htmx) window.htmx.onLoad(initComposer);
else document.addEventListener("DOMContentLoaded", () => window.htmx ? window.htmx.onLoad(initComposer) : initComposer());

