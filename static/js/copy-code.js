// Copy buttons on rendered code blocks. Listens on document so blocks swapped in by htmx or
// streamed in later need no wiring.
const COPIED_FOR_MS = 1500;

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-HTTP self-hosted installs have no Clipboard API; the deprecated command still works.
  const scratch = document.createElement("textarea");
  scratch.value = text;
  scratch.setAttribute("readonly", "");
  scratch.style.position = "fixed";
  scratch.style.opacity = "0";
  document.body.append(scratch);
  scratch.select();
  try {
    if (!document.execCommand("copy")) throw new Error("copy command refused");
  } finally {
    scratch.remove();
  }
}

document.addEventListener("click", async (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-copy-code]") : null;
  const code = button?.closest(".code-block")?.querySelector("pre code");
  if (!button || !code) return;
  const label = button.dataset.label ?? button.textContent;
  button.dataset.label = label;
  try {
    await copyText(code.textContent ?? "");
    button.textContent = "Copied";
  } catch (error) {
    button.textContent = "Copy failed";
  }
  clearTimeout(Number(button.dataset.resetTimer));
  button.dataset.resetTimer = String(setTimeout(() => { button.textContent = label; }, COPIED_FOR_MS));
});
