// What every page shares: who is signed in, the sign-in dialog, the dark-mode toggle, notices.
import { ApiError, json } from "./api.js";
import { byId } from "./dom.js";
import { apiKey, signIn, signOut } from "./session.js";

const THEME = "studio.theme";

export function notify(message, kind = "info") {
  const notice = byId("notice");
  notice.textContent = message;
  notice.dataset.kind = kind;
  notice.hidden = !message;
}

function setTheme(theme) {
  document.documentElement.setAttribute("data-theme", theme);
  localStorage.setItem(THEME, theme);
  const toggle = byId("theme-toggle");
  toggle.setAttribute("aria-pressed", String(theme === "dark"));
  toggle.textContent = theme === "dark" ? "Light mode" : "Dark mode";
}

function setupTheme() {
  const toggle = byId("theme-toggle");
  setTheme(document.documentElement.getAttribute("data-theme") === "dark" ? "dark" : "light");
  toggle.addEventListener("click", () => {
    const dark = document.documentElement.getAttribute("data-theme") === "dark";
    setTheme(dark ? "light" : "dark");
  });
}

async function whoAmI() {
  if (!apiKey()) return { username: "Anonymous", anonymous: true };
  const user = await json("/find_user");
  return { username: user.username, anonymous: false, kudos: user.kudos };
}

function showUser(user) {
  byId("user-name").textContent = user.anonymous
    ? "Anonymous"
    : `Signed in as ${user.username} · ${user.kudos.toFixed(2)} kudos`;
  byId("sign-in-open").textContent = user.anonymous ? "Sign in" : "Switch user";
}

function setupSignIn(onChange) {
  const dialog = byId("sign-in-dialog");
  const form = byId("sign-in-form");
  const error = byId("sign-in-error");
  const input = byId("sign-in-key");
  byId("sign-in-open").addEventListener("click", () => {
    error.hidden = true;
    input.value = "";
    dialog.showModal();
    input.focus();
  });
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });
  byId("sign-in-anonymous").addEventListener("click", () => {
    signOut();
    dialog.close();
    onChange();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      error.textContent = "Enter your API key, or use the studio anonymously.";
      error.hidden = false;
      return;
    }
    try {
      // Checked before it is stored, so a mistyped key never replaces a working one.
      await json("/find_user", { headers: { apikey: key } });
    } catch (failure) {
      error.textContent =
        failure instanceof ApiError ? failure.message : "The horde did not answer; try again.";
      error.hidden = false;
      return;
    }
    signIn(key, byId("sign-in-remember").checked);
    input.value = "";
    dialog.close();
    onChange();
  });
}

// The header again, e.g. after a request changed the balance (the horde settles within seconds).
export async function refreshUser() {
  try {
    showUser(await whoAmI());
  } catch {
    // The header keeps what it showed; the next page load tries again.
  }
}

// Sets up the page chrome; `onUser(user)` runs now and after every sign-in change.
export async function initChrome(onUser = () => {}) {
  setupTheme();
  const refresh = async () => {
    let user;
    try {
      user = await whoAmI();
    } catch (failure) {
      signOut();
      notify(`Your saved key was refused (${failure.message}); you are anonymous now.`, "error");
      user = { username: "Anonymous", anonymous: true };
    }
    showUser(user);
    await onUser(user);
    return user;
  };
  setupSignIn(refresh);
  return refresh();
}
