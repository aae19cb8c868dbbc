// The control service's REST API (/api/v1) as promises; an error reply becomes an ApiError.
// The session is the service's HttpOnly cookie; every state-changing call carries the session's CSRF
// token in X-CSRF-Token, which a page on another site cannot read and so cannot send.
export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "error";
    this.field = err.field || null;
    this.retryAfter = retryAfter;
  }
}

const SAFE = ["GET", "HEAD"];
const session = {user: null, csrf: ""};
const inflight = new Set();  // requests not answered yet: sign-out waits for them (see signOut)

// The signed-in user ({name, display_name, role, groups, max_priority}), or null.
export function me() {
  return session.user;
}

function remember(reply) {
  session.user = reply.user;
  session.csrf = reply.csrf_token;
  return reply.user;
}

function forget() {
  session.user = null;
  session.csrf = "";
}

export async function api(method, path, body) {
  const headers = {Accept: "application/json"};
  if (!SAFE.includes(method) && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const init = {method, headers, credentials: "same-origin"};
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  const request = fetch(`/api/v1${path}`, init);
  inflight.add(request);
  try {
    response = await request;
  } catch (exc) {
    throw new ApiError(0, {error: {code: "offline", message: "The control service cannot be reached."}});
  } finally {
    inflight.delete(request);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new ApiError(response.status, data, Number(response.headers.get("Retry-After")) || null);
    if (response.status === 401 && session.user) {
      forget();
      window.dispatchEvent(new CustomEvent("cauchy:signed-out", {detail: error}));
    }
    throw error;
  }
  return data;
}

// One chunk of an upload: PUT the bytes with their Content-Range; the reply says how many bytes the
// service holds (resume from there after a dropped connection).
export async function putChunk(path, blob, first, total) {
  const response = await fetch(`/api/v1${path}`, {method: "PUT", credentials: "same-origin", body: blob,
    headers: {"Content-Range": `bytes ${first}-${first + blob.size - 1}/${total}`, "X-CSRF-Token": session.csrf,
      "Content-Type": "application/octet-stream", Accept: "application/json"}});
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

// Who is signed in: the user, or null when the service answers 401 (any other error is thrown).
export async function loadSession() {
  try {
    return remember(await get("/auth/me"));
  } catch (exc) {
    if (exc.status !== 401) throw exc;
    forget();
    return null;
  }
}

export async function signIn(name, password) {
  return remember(await post("/auth/login", {name, password}));
}

// The caller stops its polling first. A reply still on its way may carry the session cookie again
// (the service refreshes it on every answer), so sign-out waits for those before it ends the session.
export async function signOut() {
  while (inflight.size) await Promise.allSettled([...inflight]);
  try {
    await post("/auth/logout");
  } finally {
    forget();
  }
}

// Whether the signed-in user may stop, resume, publish or share what `owner` owns: the owner and admins.
export function mayManage(owner) {
  return Boolean(session.user) && (session.user.role === "admin" || session.user.name === owner);
}

// The API's priority range, and the highest priority the signed-in user may ask for (/auth/me says:
// what an admin allowed them, the top of the range for admins).
export const PRIORITY_RANGE = [-100, 100];
export function maxPriority() {
  return session.user ? session.user.max_priority : 0;
}
