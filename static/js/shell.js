// The layout's small behaviours: theme toggle, the phone sidebar, keyboard shortcuts.
const root = document.documentElement;
const shell = document.querySelector("[data-shell]");

function currentTheme() {
  if (root.dataset.theme === "light" || root.dataset.theme === "dark") return root.dataset.theme;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target : null;
  if (!target) return;
  if (target.closest("[data-theme-toggle]")) {
    const next = currentTheme() === "dark" ? "light" : "dark";
    root.dataset.theme = next;
    try { localStorage.setItem("vero-theme", next); } catch (e) { /* ignore */ }
  } else if (target.closest("[data-sidebar-open]")) {
    shell?.setAttribute("data-sidebar-open", "");
  } else if (target.closest("[data-sidebar-close]") || (shell?.hasAttribute("data-sidebar-open") && !target.closest("#sidebar"))) {
    shell?.removeAttribute("data-sidebar-open");
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    shell?.removeAttribute("data-sidebar-open");
    document.querySelectorAll("details.menu[open]").forEach((menu) => menu.removeAttribute("open"));
  }
  // Ctrl/Cmd+Shift+O: new chat, as in other chat apps.
  if ((event.ctrlKey || event.metaKey) && event.shiftKey && event.key.toLowerCase() === "o") {
    event.preventDefault();
    window.location.href = "/";
  }
});
