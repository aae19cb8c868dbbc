// The control service's REST API (/api/v1) as promises; an error reply becomes an ApiError.
export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "error";
    this.field = err.field || null;
  }
}

export function user() {
  return localStorage.getItem("cauchy.user") || "";
}

export function setUser(name) {
  localStorage.setItem("cauchy.user", name);
}

export async function api(method, path, body) {
  const headers = {Accept: "application/json"};
  if (user()) headers["X-Cauchy-User"] = user();
  const init = {method, headers};
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch (exc) {
    throw new ApiError(0, {error: {code: "offline", message: "The control service cannot be reached."}});
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
