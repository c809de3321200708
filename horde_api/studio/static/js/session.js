// Who the studio speaks for. The API key is kept in this browser only (localStorage when
// "remember me", else sessionStorage) and sent only in the `apikey` header of API calls: never in
// a URL, a cookie or a page. Anonymous users get a random library token of their own, made once.

const KEY = "studio.apikey";
const LIBRARY_TOKEN = "studio.libraryToken";
export const ANONYMOUS_KEY = "0000000000";

export function apiKey() {
  return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || null;
}

export function signIn(key, remember) {
  signOut();
  (remember ? localStorage : sessionStorage).setItem(KEY, key);
}

export function signOut() {
  localStorage.removeItem(KEY);
  sessionStorage.removeItem(KEY);
}

function randomToken() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

export function libraryToken() {
  let token = localStorage.getItem(LIBRARY_TOKEN);
  if (!token) {
    token = randomToken();
    localStorage.setItem(LIBRARY_TOKEN, token);
  }
  return token;
}

export function authHeaders() {
  const key = apiKey();
  if (key) return { apikey: key };
  return { apikey: ANONYMOUS_KEY, "library-token": libraryToken() };
}
