// Calls to the horde's API (same origin) with the caller's headers, and images fetched with them.
import { authHeaders } from "./session.js";

export class ApiError extends Error {
  constructor(message, status, rc) {
    super(message);
    this.status = status;
    this.rc = rc;
  }
}

async function failure(reply) {
  let message = `${reply.status} ${reply.statusText}`;
  let rc = "";
  try {
    const body = await reply.json();
    if (body && body.message) message = body.message;
    rc = (body && body.rc) || "";
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(message, reply.status, rc);
}

export async function call(path, { method = "GET", body, signal, headers = {} } = {}) {
  const init = { method, signal, headers: { ...authHeaders(), ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let reply;
  try {
    reply = await fetch(path.startsWith("/api/") ? path : `/api/v2${path}`, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("The horde cannot be reached; check your connection", 0, "");
  }
  if (!reply.ok) throw await failure(reply);
  return reply;
}

export async function json(path, options) {
  return (await call(path, options)).json();
}

// path -> object URL, so a library image is fetched once per page.
const blobs = new Map();

export async function imageUrl(path, { fresh = false } = {}) {
  if (!fresh && blobs.has(path)) return blobs.get(path);
  const reply = await call(path);
  const url = URL.createObjectURL(await reply.blob());
  if (fresh && blobs.has(path)) URL.revokeObjectURL(blobs.get(path));
  blobs.set(path, url);
  return url;
}

export async function imageBlob(path) {
  return (await call(path)).blob();
}
