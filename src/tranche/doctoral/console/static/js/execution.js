// One execution, live: its steps' counters and progress, polled every second while it runs
// (no reload), with Stop while running and Restart / Abandon once FAILED or STOPPED.

import { json } from "./api.js";
import { RUNNING, STATUS_FR, badge, fill, h, number, table, when } from "./dom.js";
import { confirmDialog, say } from "./ui.js";

const POLL_MS = 1000;
let timer = null;

export function stopPolling() {
  if (timer !== null) clearTimeout(timer);
  timer = null;
}

async function act(execution, action, label, text) {
  const ok = await confirmDialog({ title: `${label} l'exécution n° ${execution.executionId} ?`, text, okLabel: label });
  if (ok === null) return;
  try {
    const answer = await json(`/api/batch/jobs/executions/${execution.executionId}/${action}`, { method: "POST" });
    say(answer.message);
    if (action === "restart") window.location.hash = `#/executions/${answer.executionId}`;
  } catch (error) {
    if (error.status !== 401) say(`${label} refusé : ${error.message}`, true);
  }
}

function actions(e) {
  const buttons = [];
  if (RUNNING.has(e.status)) {
    buttons.push(h("button", { type: "button", class: "danger", onclick: () => act(e, "stop", "Arrêter",
      "L'exécution s'arrêtera après le lot en cours ; elle pourra être relancée.") }, "Arrêter"));
  }
  if (e.status === "FAILED" || e.status === "STOPPED") {
    buttons.push(
      h("button", { type: "button", onclick: () => act(e, "restart", "Relancer",
        "Une nouvelle exécution reprend au dernier lot validé.") }, "Relancer"),
      h("button", { type: "button", class: "danger", onclick: () => act(e, "abandon", "Abandonner",
        "L'exécution ne pourra plus jamais être relancée.") }, "Abandonner"));
  }
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

function render(root, e) {
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
    h("td", {}, d.recipient), h("td", {}, d.status), h("td", { class: "num" }, d.attempts), h("td", {}, d.lastError || "—")));
  fill(root, 
    h("h2", {}, `Exécution n° ${e.executionId} — `, h("span", { class: "mono" }, e.jobName)),
    h("dl", { class: "facts" },
      h("dt", {}, "État"), h("dd", { id: "execution-status" }, badge(e.status)),
      h("dt", {}, "Début"), h("dd", {}, when(e.startTime)),
      h("dt", {}, "Fin"), h("dd", {}, when(e.endTime)),
      h("dt", {}, "Durée"), h("dd", {}, e.duration),
      h("dt", {}, "Éléments traités"), h("dd", {}, number(e.itemsProcessed)),
      h("dt", {}, "Éléments en échec"), h("dd", {}, number(e.itemsFailed)),
      h("dt", {}, "Code de sortie"), h("dd", {}, h("code", {}, e.exitCode)),
      h("dt", {}, "Lancé par"), h("dd", {}, e.triggeredBy || "—"),
      e.exitMessage ? [h("dt", {}, "Message"), h("dd", {}, e.exitMessage)] : null),
    progress(e),
    actions(e),
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
  let last = null;
  const tick = async () => {
    const e = await json(`/api/batch/jobs/executions/${encodeURIComponent(id)}`);
    const focused = document.activeElement;
    const keepFocus = focused && root.contains(focused) ? focused.textContent : null;
    render(root, e);
    if (keepFocus) {
      const again = [...root.querySelectorAll("button")].find((b) => b.textContent === keepFocus);
      if (again) again.focus();
    }
    if (last !== null && last !== e.status) say(`Exécution n° ${e.executionId} : ${STATUS_FR[e.status] || e.status}.`);
    last = e.status;
    if (RUNNING.has(e.status) && window.location.hash === `#/executions/${id}`) {
      timer = setTimeout(() => tick().catch(() => {}), POLL_MS);
    }
  };
  await tick();
}
