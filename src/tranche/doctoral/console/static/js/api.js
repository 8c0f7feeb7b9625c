// The API client: the bearer token lives in this module's memory only (never in storage),
// so closing the tab signs the admin out. A 401 sends the user back to the login form.

let token = null;
let onExpired = () => {};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function setToken(value) { token = value; }
export function hasToken() { return token !== null; }
export function onSessionExpired(handler) { onExpired = handler; }

async function errorOf(response) {
  try {
    const body = await response.json();
    return body.message || body.detail || `Erreur ${response.status}`;
  } catch {
    return `Erreur ${response.status}`;
  }
}

export async function call(path, { method = "GET", query = null, raw = false } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, String(v));
  }
  const response = await fetch(url, {
    method,
    headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    cache: "no-store",
  });
  if (response.status === 401) {
    token = null;
    onExpired("Votre session a expiré ou le jeton n'est plus valide : reconnectez-vous.");
    throw new ApiError(401, "Session expirée");
  }
  if (!response.ok) throw new ApiError(response.status, await errorOf(response));
  if (raw) return response;
  return { body: await response.json(), headers: response.headers };
}

export async function json(path, options) {
  return (await call(path, options)).body;
}

/** Downloads a file that needs the bearer token: fetched as a blob, saved through a link. */
export async function download(path, fileName) {
  const response = await call(path, { raw: true });
  const blob = await response.blob();
  const href = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = href;
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}

export async function signIn(email, password) {
  const response = await fetch("/console/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!response.ok) throw new ApiError(response.status, await errorOf(response));
  return (await response.json()).token;
}
