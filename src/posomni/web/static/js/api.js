// The one way the screens talk to the server: the same JSON API as every other client.
// Browser sessions authenticate with the HttpOnly session cookie; every state-changing request echoes the
// CSRF token (readable cookie `posomni_csrf`) in X-CSRF-Token, as the server requires.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function csrfToken() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("posomni_csrf="));
  return found ? decodeURIComponent(found.slice("posomni_csrf=".length)) : "";
}

export function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

const SAFE = new Set(["GET", "HEAD"]);

// api("POST", "/sales", {body}) → parsed JSON (or text when `as: "text"`); throws ApiError on any refusal.
export async function api(method, path, { body, form, headers = {}, as = "json", idempotencyKey } = {}) {
  const init = { method, headers: { Accept: as === "json" ? "application/json" : "*/*", ...headers }, credentials: "same-origin" };
  if (!SAFE.has(method)) init.headers["X-CSRF-Token"] = csrfToken();
  if (idempotencyKey) init.headers["Idempotency-Key"] = idempotencyKey;
  if (form) {
    init.body = form;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network_error", "The server cannot be reached. Check the network; nothing was changed.");
  }
  if (response.status === 204) return null;
  if (!response.ok) {
    let error = {};
    try {
      error = (await response.json()).error || {};
    } catch {
      error = {};
    }
    if (response.status === 401 && !path.startsWith("/auth/")) {
      // The session ended (signed out elsewhere, expired): back to the sign-in page, then here again.
      window.location.assign(`/?next=${encodeURIComponent(window.location.pathname)}`);
    }
    throw new ApiError(response.status, error.code || "http_error", error.message || response.statusText, error.details);
  }
  return as === "text" ? response.text() : response.json();
}

export async function signOut() {
  try {
    await api("POST", "/auth/logout");
  } finally {
    window.location.assign("/");
  }
}
