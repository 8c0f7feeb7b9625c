// One execution, live: its steps' counters and progress, polled every second while it runs
// (no reload), with Stop while running and Restart / Abandon once FAILED or STOPPED.
// A poll that fails (the service restarting, a network blip) says so and tries again,
// less often, rather than leaving a frozen page that looks live.

import { ApiError, json } from "./api.js";
import { RUNNING, STATUS_FR, badge, fill, h, number, table, when } from "./dom.js";
import { clearStatus, confirmDialog, say } from "./ui.js";

const POLL_MS = 1000;
const DELIVERY_FR = { SENT: "Envoyé", FAILED: "Échec", SKIPPED: "Non envoyé" };
const MAX_RETRY_MS = 10_000;
let timer = null;

export function stopPolling() {
  if (timer !== null) clearTimeout(timer);
  timer = null;
}

/** What each operator action is called, asks and says (the API answers in English). */
const ACTIONS = {
  stop: {
    label: "Arrêter", refused: "Arrêt refusé",
    text: "L'exécution s'arrêtera après le lot en cours ; elle pourra être relancée.",
    done: (e, a) => (a.status === "STOPPED" ? `Exécution n° ${e.executionId} arrêtée.`
      : `Arrêt demandé : l'exécution n° ${e.executionId} s'arrêtera après le lot en cours.`),
  },
  restart: {
    label: "Relancer", refused: "Relance refusée",
    text: "Une nouvelle exécution reprend au dernier lot validé.",
    done: (e, a) => `Exécution n° ${e.executionId} relancée : nouvelle exécution n° ${a.executionId}.`,
  },
  abandon: {
    label: "Abandonner", refused: "Abandon refusé",
    text: "L'exécution ne pourra plus jamais être relancée.",
    done: (e) => `Exécution n° ${e.executionId} abandonnée : elle ne sera jamais relancée.`,
  },
};

/** Asks, sends, reports the answer; then shows the execution as it now is. */
async function act(execution, action, refresh) {
  const { label, refused, text, done } = ACTIONS[action];
  const ok = await confirmDialog({ title: `${label} l'exécution n° ${execution.executionId} ?`, text, okLabel: label });
  if (ok === null) return;
  let answer;
  try {
    answer = await json(`/api/batch/jobs/executions/${execution.executionId}/${action}`, { method: "POST" });
  } catch (error) {
    // The service's reason is quoted as it gave it.
    if (error.status !== 401) say(`${refused} par le service : « ${error.message} »`, true);
    return;
  }
  say(done(execution, answer));
  if (action === "restart") window.location.hash = `#/executions/${answer.executionId}`;
  else await refresh();
}

function actions(e, refresh) {
  const button = (action, cls = null) =>
    h("button", { type: "button", class: cls, onclick: () => act(e, action, refresh) }, ACTIONS[action].label);
  const buttons = [];
  if (RUNNING.has(e.status)) buttons.push(button("stop", "danger"));
  if (e.status === "FAILED" || e.status === "STOPPED") buttons.push(button("restart"), button("abandon", "danger"));
  return h("div", { class: "actions" }, buttons);
}

function progress(e) {
  if (!e.progress) {
    return h("p", { id: "progress-text" }, RUNNING.has(e.status)
      ? "Progression : ce traitement ne peut pas estimer son volume à l'avance."
      : `${number(e.itemsProcessed)} élément(s) traité(s).`);
  }
  const pct = e.progress.percent;
  return h("div", {},
    h("label", { for: "progress-bar" }, "Progression"),
    h("progress", { id: "progress-bar", max: 100, value: pct }, `${pct} %`),
    h("p", { id: "progress-text" },
      `${pct.toLocaleString("fr-FR")} % — ${number(e.progress.done)} sur ${number(e.progress.total)} élément(s) estimé(s)`));
}

function render(root, e, refresh) {
  const steps = e.steps.map((s) => h("tr", {},
    h("th", { scope: "row" }, h("span", { class: "mono" }, s.stepName)),
    h("td", {}, badge(s.status)),
    h("td", { class: "num" }, number(s.readCount)),
    h("td", { class: "num" }, number(s.writeCount)),
    h("td", { class: "num" }, number(s.filterCount)),
    h("td", { class: "num" }, number(s.skipCount)),
    h("td", { class: "num" }, number(s.commitCount)),
    h("td", {}, when(s.startTime)),
    h("td", {}, when(s.endTime))));
  const counts = Object.entries(e.counts).map(([k, v]) => h("tr", {},
    h("th", { scope: "row" }, h("span", { class: "mono" }, k)), h("td", { class: "num" }, number(v))));
  const deliveries = (e.reportDeliveries || []).map((d) => h("tr", {},
    h("td", {}, d.recipient), h("td", {}, DELIVERY_FR[d.status] || d.status), h("td", { class: "num" }, d.attempts), h("td", {}, d.lastError || "—")));
  fill(root, 
    h("h2", {}, `Exécution n° ${e.executionId} — `, h("span", { class: "mono" }, e.jobName)),
    h("dl", { class: "facts" },
      h("dt", {}, "État"), h("dd", { id: "execution-status" }, badge(e.status)),
      h("dt", {}, "Début"), h("dd", {}, when(e.startTime)),
      h("dt", {}, "Fin"), h("dd", {}, when(e.endTime)),
      h("dt", {}, "Durée"), h("dd", {}, e.endTime ? e.duration : "en cours"),
      h("dt", {}, "Éléments traités"), h("dd", {}, number(e.itemsProcessed)),
      h("dt", {}, "Éléments en échec"), h("dd", {}, number(e.itemsFailed)),
      h("dt", {}, "Code de sortie"), h("dd", {}, h("code", {}, e.exitCode)),
      h("dt", {}, "Lancé par"), h("dd", {}, e.triggeredBy || "—"),
      e.exitMessage ? [h("dt", {}, "Message"), h("dd", {}, e.exitMessage)] : null),
    progress(e),
    actions(e, refresh),
    h("h3", {}, "Étapes"),
    table("Compteurs des étapes (lots validés)",
      ["Étape", "État", ["Lus", "num"], ["Écrits", "num"], ["Filtrés", "num"], ["Ignorés", "num"],
        ["Lots", "num"], "Début", "Fin"], steps, "Aucune étape n'a encore démarré."),
    h("h3", {}, "Résultats"),
    table("Ce que le traitement a fait", ["Compteur", ["Valeur", "num"]], counts, "Aucun compteur."),
    deliveries.length ? [h("h3", {}, "Envoi du rapport"),
      table("Destinataires du rapport mensuel", ["Destinataire", "État", ["Tentatives", "num"], "Dernière erreur"], deliveries)] : null,
    e.failureDetail ? [h("h3", {}, "Détail de l'échec"), h("pre", { class: "trace" }, e.failureDetail)] : null);
}

export async function executionPage(root, id) {
  stopPolling();
  const here = () => window.location.hash === `#/executions/${id}`;
  let last = null;
  let failures = 0;
  const show = async () => {
    const e = await json(`/api/batch/jobs/executions/${encodeURIComponent(id)}`);
    if (failures) {
      failures = 0;
      clearStatus(); // the interruption notice: following again
    }
    const focused = document.activeElement;
    const keepFocus = focused && root.contains(focused) ? focused.textContent : null;
    render(root, e, refresh);
    if (keepFocus) {
      const again = [...root.querySelectorAll("button")].find((b) => b.textContent === keepFocus);
      if (again) again.focus();
    }
    if (last !== null && last !== e.status && here()) {
      say(`Exécution n° ${e.executionId} : ${STATUS_FR[e.status] || e.status}.`);
    }
    last = e.status;
    return e;
  };
  // One pending poll at most: a refresh after an action may overlap a poll in flight.
  const later = (ms) => {
    if (here() && timer === null) timer = setTimeout(poll, ms);
  };
  async function poll() {
    timer = null;
    let e;
    try {
      e = await show();
    } catch (error) {
      if (error.status === 401 || !here()) return; // signed out, or the admin moved on
      failures += 1;
      const why = error instanceof ApiError ? error.message : "le service ne répond pas";
      say(`Suivi de l'exécution n° ${id} interrompu (${why}) : nouvel essai automatique.`, true);
      later(Math.min(POLL_MS * 2 ** failures, MAX_RETRY_MS));
      return;
    }
    if (RUNNING.has(e.status)) later(POLL_MS);
  }
  async function refresh() {
    stopPolling();
    await poll();
  }
  const first = await show(); // a failure here is the page's: route() reports it
  if (RUNNING.has(first.status)) later(POLL_MS);
}
