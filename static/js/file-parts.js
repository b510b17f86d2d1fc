// A message's file parts (docs/attachments.md), shared by the composer (static/js/attachments.js)
// and the cache's painter (static/js/cache/paint.js): pure helpers, no listeners, so a second
// copy of this module (hashed and plain static URLs) changes nothing.

export function humanSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

function made(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A message's file parts as templates/chats/_message.html renders them (part-files), for a
// message painted from the cache.
export function filePartsElement(parts) {
  const fragment = document.createDocumentFragment();
  for (const part of parts || []) {
    // The sync's `files` hold the file parts' keys without their `type`.
    if (part.type !== undefined && part.type !== "file") continue;
    const url = `/attachments/${encodeURIComponent(part.attachment_id)}`;
    const figure = made("figure", `message-file message-file-${part.kind}`);
    figure.dataset.filePart = "";
    figure.dataset.attachmentId = part.attachment_id;
    if (part.kind === "image") {
      const link = made("a");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener";
      const image = made("img", "message-file-thumb");
      image.src = url;
      image.alt = part.name || "";
      image.loading = "lazy";
      link.append(image);
      figure.append(link);
    } else if (part.kind === "audio") {
      const audio = made("audio", "message-file-audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = url;
      audio.setAttribute("aria-label", part.name || "audio");
      figure.append(audio, made("figcaption", "small muted", part.name || ""));
    } else {
      const link = made("a", "message-file-chip");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener";
      const icon = made("span", "attachment-icon", "PDF");
      icon.setAttribute("aria-hidden", "true");
      link.append(icon, " ", made("span", "attachment-name", part.name || "file"), " ", made("span", "small muted", humanSize(part.size || 0)));
      figure.append(link);
    }
    fragment.append(figure);
  }
  return fragment;
}
