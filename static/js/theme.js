// Apply the saved theme before the first paint (loaded synchronously in <head>).
(function () {
  var saved = null;
  try { saved = localStorage.getItem("vero-theme"); } catch (e) { /* storage may be blocked */ }
  if (saved === "light" || saved === "dark") document.documentElement.dataset.theme = saved;
})();
