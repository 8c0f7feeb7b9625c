// The console's entry point: login, hash routing between pages, session expiry.

import { ApiError, hasToken, json, onSessionExpired, setToken, signIn } from "./api.js";
import { executionPage, stopPolling } from "./execution.js";
import { historyPage } from "./history.js";
import { jobsPage } from "./jobs.js";
import { anomaliesPage, auditPage, reportsPage, statsPage } from "./pages.js";
import { clearStatus, say } from "./ui.js";

const $ = (id) => document.getElementById(id);
let renders = 0;

const ROUTES = [
  [/^#\/jobs$/, (root) => jobsPage(root), "Traitements"],
  [/^#\/executions\/(\d+)$/, (root, m) => executionPage(root, m[1]), "Exécution"],
  [/^#\/history$/, (root, _m, q) => historyPage(root, q), "Historique"],
  [/^#\/stats$/, (root) => statsPage(root), "Statistiques"],
  [/^#\/reports$/, (root) => reportsPage(root), "Rapports"],
  [/^#\/anomalies$/, (root) => anomaliesPage(root), "Anomalies"],
  [/^#\/audit$/, (root, _m, q) => auditPage(root, q), "Journal d'audit"],
];

function showLogin(message) {
  stopPolling();
  setToken(null);
  const dialog = $("confirm");
  if (dialog.open) dialog.close("cancel"); // nothing may be confirmed on an ended session
  clearStatus();
  $("nav").hidden = true;
  $("page").replaceChildren();
  $("login").hidden = false;
  const box = $("login-message");
  box.hidden = !message;
  box.textContent = message || "";
  document.title = "Connexion — traitements de l'école doctorale";
  const field = $("password-form").hidden ? $("login-token") : $("login-email");
  field.focus();
}

async function route() {
  if (!hasToken()) return;
  stopPolling();
  const [path, query] = (window.location.hash || "#/jobs").split("?");
  const found = ROUTES.find(([pattern]) => pattern.test(path));
  if (!found) {
    window.location.hash = "#/jobs";
    return;
  }
  const [pattern, render, title] = found;
  for (const link of $("nav").querySelectorAll("a")) {
    const current = path.startsWith(link.getAttribute("href")) ||
      (path.startsWith("#/executions") && link.getAttribute("href") === "#/history");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${title} — traitements de l'école doctorale`;
  const root = $("page");
  root.setAttribute("aria-busy", "true");
  // Rendered aside and shown only if no later navigation started meanwhile: a slow page
  // must never overwrite the one the admin moved on to.
  const generation = ++renders;
  const view = document.createElement("div");
  try {
    await render(view, path.match(pattern), new URLSearchParams(query || ""));
    if (generation === renders) root.replaceChildren(view);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    say(`Impossible d'afficher la page : ${error.message}`, true);
  } finally {
    root.removeAttribute("aria-busy");
  }
}

async function start(token) {
  setToken(token.trim());
  try {
    await json("/api/batch/jobs");
  } catch (error) {
    if (error.status === 401) return; // showLogin was called with the expiry message
    const message = error.status === 403
      ? "Accès refusé : ce compte n'a pas le rôle ROLE_ADMIN."
      : `Connexion impossible : ${error.message}`;
    showLogin(message);
    return;
  }
  $("login").hidden = true;
  $("login-token").value = "";
  $("login-password").value = "";
  $("nav").hidden = false;
  clearStatus();
  if (!window.location.hash || window.location.hash === "#") window.location.hash = "#/jobs";
  else await route();
  $("main").focus();
}

function setUp() {
  onSessionExpired((message) => showLogin(message));
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    start($("login-token").value);
  });
  $("password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await start(await signIn($("login-email").value, $("login-password").value));
    } catch (error) {
      showLogin(`Connexion refusée : ${error.message}`);
    }
  });
  $("logout").addEventListener("click", () => {
    showLogin("Vous êtes déconnecté.");
  });
  window.addEventListener("hashchange", () => {
    route().then(() => {
      if (hasToken()) $("main").focus(); // else the login form has the focus
    });
  });
  fetch("/console/config.json").then((r) => r.json()).then((config) => {
    $("password-form").hidden = !config.passwordLogin;
    showLogin(null);
  }).catch(() => showLogin(null));
}

setUp();
