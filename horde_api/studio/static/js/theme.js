// Applies the remembered light/dark theme before the page paints (a classic script in <head>).
// The toggle itself lives in chrome.js.
(function () {
  var saved = null;
  try {
    saved = window.localStorage.getItem("studio.theme");
  } catch (error) {
    saved = null;
  }
  var prefersDark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  var theme = saved === "dark" || saved === "light" ? saved : prefersDark ? "dark" : "light";
  document.documentElement.setAttribute("data-theme", theme);
})();
