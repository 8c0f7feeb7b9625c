// The API client: the bearer token lives in this module's memory only (never in storage),
// so closing the tab signs the admin out. The token's expiry (its ``exp`` claim) sends the
// admin back to the login form with a message even on a page left idle; a 401 from the
// API (a token revoked, or the clocks disagreeing) does the same.

const EXPIRED = "Votre session a expiré ou le jeton n'est plus valide : reconnectez-vous.";
/** setTimeout's longest delay (about 24.8 days); a later expiry is re-armed from there. */
const MAX_DELAY_MS = 2 ** 31 - 1;
let token = null;
let expiryTimer = null;
let onExpired = () => {};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The token's ``exp`` (seconds since the epoch), or null when it has none or is unreadable:
 *  then only the API's 401 tells. The signature is the API's business, not the page's. */
function expiryOf(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    return typeof claims.exp === "number" ? claims.exp : null;
  } catch {
    return null;
  }
}

function armExpiry(exp) {
  const wait = exp * 1000 - Date.now();
  if (wait <= 0) {
    expire();
    return;
  }
  expiryTimer = setTimeout(() => armExpiry(exp), Math.min(wait, MAX_DELAY_MS));
}

function expire() {
  setToken(null);
  onExpired(EXPIRED);
}

export function setToken(value) {
  if (expiryTimer !== null) clearTimeout(expiryTimer);
  expiryTimer = null;
  token = value;
  const exp = value ? expiryOf(value) : null;
  if (exp !== null) expiryTimer = setTimeout(() => armExpiry(exp), 0);
}
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
    if (token !== null) expire(); // once, even when several calls were in flight
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
