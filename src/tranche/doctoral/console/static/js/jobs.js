// The jobs page: each job's description, schedule (words + cron), next fire, last status, Run.

import { json } from "./api.js";
import { describeCron } from "./cron.js";
import { badge, fill, h, table, when } from "./dom.js";
import { confirmDialog, say } from "./ui.js";

const MONTHLY = "monthlyReportJob";
const DRY_RUN_JOBS = new Set(["dataConsistencyJob"]);
/** The API describes the jobs in English (as the original did); the console speaks French. */
const DESCRIPTIONS_FR = {
  tokenCleanupJob: "Supprime de userdb les jetons de rafraîchissement et de réinitialisation de mot de passe expirés",
  dureeDoctoratAlertJob: "Surveille la durée des doctorats et alerte doctorants et directeurs à 3 ans, 6 ans et au-delà (réinscription bloquée)",
  monthlyReportJob: "Rapport mensuel de l'école doctorale (inscriptions, soutenances, notifications, utilisateurs, durées de thèse) en PDF, envoyé aux administrateurs",
  archiveJob: "Archive les inscriptions et soutenances closes depuis plus d'un an (ZIP chiffré AES-256 par dossier), purge les anciens journaux",
  dataConsistencyJob: "Vérification de cohérence entre services chaque nuit : utilisateurs disparus, soutenances sans inscription, rôles, fichiers orphelins, notifications bloquées ; rapport d'anomalies si besoin",
};
const describe = (job) => DESCRIPTIONS_FR[job.name] || job.description;

function lastMonth() {
  const now = new Date();
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

function parameterFields(job) {
  const fields = [];
  if (job.name === MONTHLY) {
    fields.push(
      h("label", { for: "param-month" }, "Mois du rapport (facultatif)"),
      h("input", { id: "param-month", name: "month", type: "month", min: "2000-01", max: "2999-12",
        placeholder: lastMonth(), "aria-describedby": "param-month-help" }),
      h("p", { id: "param-month-help", class: "help" },
        `Laissé vide : le mois précédent (${lastMonth()}).`));
  }
  if (DRY_RUN_JOBS.has(job.name)) {
    fields.push(h("label", { for: "param-dry-run" },
      h("input", { id: "param-dry-run", name: "dryRun", type: "checkbox", value: "true" }),
      " Simulation (dry run) : rechercher et signaler seulement, ne rien modifier"));
  }
  return fields;
}

async function run(job) {
  const values = await confirmDialog({
    title: `Lancer ${job.name} ?`,
    text: `${describe(job)}. Le traitement démarre immédiatement en arrière-plan.`,
    fields: parameterFields(job),
    okLabel: "Lancer maintenant",
  });
  if (values === null) return;
  const query = {};
  if (values.get("month")) query.month = values.get("month");
  if (values.get("dryRun")) query.dryRun = "true";
  try {
    const started = await json(`/api/batch/jobs/${encodeURIComponent(job.name)}/run`, { method: "POST", query });
    say(`${job.name} lancé : exécution n° ${started.executionId}.`);
    window.location.hash = `#/executions/${started.executionId}`;
  } catch (error) {
    if (error.status !== 401) say(`Lancement refusé par le service : « ${error.message} »`, true);
  }
}

export async function jobsPage(root) {
  const jobs = await json("/api/batch/jobs");
  const rows = jobs.map((job) => h("tr", { "data-job": job.name },
    h("th", { scope: "row" }, h("span", { class: "mono" }, job.name)),
    h("td", {}, describe(job)),
    h("td", {}, describeCron(job.cronExpression) || "Planification personnalisée",
      h("br"), h("code", {}, job.cronExpression)),
    h("td", {}, job.nextFireTime ? when(job.nextFireTime) : "Planificateur désactivé"),
    h("td", {}, job.isRunning ? badge("STARTED") : badge(job.lastStatus),
      job.lastExecution ? h("div", { class: "help" }, "le ", when(job.lastExecution)) : null),
    h("td", {},
      h("button", { type: "button", class: "run", "aria-label": `Lancer ${job.name}`, onclick: () => run(job) },
        "Lancer…"),
      " ",
      h("a", { href: `#/history?job=${encodeURIComponent(job.name)}` }, "Historique"))));
  fill(root, 
    h("h2", {}, "Traitements"),
    table("Les traitements planifiés et leur dernier état",
      ["Traitement", "Description", "Planification", "Prochaine exécution", "Dernier état", "Actions"], rows));
}
