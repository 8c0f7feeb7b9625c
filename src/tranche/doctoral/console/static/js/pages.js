// Statistics (with the chart), reports, anomalies of the last consistency run, audit log.

import { download, json } from "./api.js";
import { timelineChart } from "./chart.js";
import { STATUS_FR, badge, bytes, fill, h, number, pager, table, when } from "./dom.js";
import { say } from "./ui.js";

export async function statsPage(root) {
  const [stats, days] = await Promise.all([
    json("/api/batch/jobs/stats"),
    json("/api/batch/console/timeline", { query: { days: 30 } }),
  ]);
  const card = (label, value) => h("div", { class: "card" }, label, h("span", { class: "value" }, value));
  const rows = days.map((d) => h("tr", {},
    h("td", {}, new Date(`${d.day}T00:00:00Z`).toLocaleDateString("fr-FR", { timeZone: "UTC" })),
    h("td", { class: "num" }, number(d.executions)),
    h("td", { class: "num" }, number(d.completed)),
    h("td", { class: "num" }, number(d.failed)),
    h("td", { class: "num" }, `${d.successRate.toLocaleString("fr-FR")} %`),
    h("td", { class: "num" }, d.averageSeconds === null ? "—" : `${d.averageSeconds.toLocaleString("fr-FR")} s`)));
  const failure = stats.lastFailure;
  fill(root, 
    h("h2", {}, "Statistiques globales"),
    h("div", { class: "cards" },
      card("Exécutions", number(stats.totalExecutions)),
      card("Réussies", number(stats.successfulExecutions)),
      card("En échec", number(stats.failedExecutions)),
      card("Taux de réussite", `${stats.successRate.toLocaleString("fr-FR")} %`),
      card("Durée moyenne", stats.averageDuration === "N/A" ? "—" : stats.averageDuration)),
    failure ? h("p", {}, "Dernier échec : ", h("a", { href: `#/executions/${failure.executionId}` },
      `${failure.jobName} n° ${failure.executionId}`), " le ", when(failure.failureTime),
      failure.exitMessage ? ` — ${failure.exitMessage}` : "") : h("p", {}, "Aucun échec enregistré."),
    h("h3", {}, "Sur les 30 derniers jours"),
    days.length ? h("figure", { class: "chart" }, timelineChart(days),
      h("figcaption", { class: "legend" }, h("span", { class: "l-rate" }, "Taux de réussite (%)"),
        h("span", { class: "l-duration" }, "Durée moyenne (s)"))) : null,
    table("Exécutions par jour (UTC)", ["Jour", ["Exécutions", "num"], ["Réussies", "num"], ["En échec", "num"],
      ["Taux de réussite", "num"], ["Durée moyenne", "num"]], rows, "Aucune exécution sur cette période."));
}

export async function reportsPage(root) {
  const reports = await json("/api/batch/reports");
  const rows = reports.map((r) => h("tr", { "data-report": r.fileName },
    h("th", { scope: "row" }, h("span", { class: "mono" }, r.fileName)),
    h("td", {}, r.fileName.startsWith("anomaly_") ? "Rapport d'anomalies" : "Rapport mensuel"),
    h("td", {}, when(r.generatedDate)),
    h("td", { class: "num" }, bytes(r.fileSizeBytes)),
    h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": `Télécharger ${r.fileName}`,
      onclick: async () => {
        try {
          await download(r.downloadUrl, r.fileName);
          say(`${r.fileName} téléchargé.`);
        } catch (error) {
          if (error.status !== 401) say(`Téléchargement impossible : ${error.message}`, true);
        }
      } }, "Télécharger"))));
  fill(root, h("h2", {}, "Rapports"),
    table("Rapports générés, les plus récents d'abord", ["Fichier", "Type", "Généré le", ["Taille", "num"], "Action"],
      rows, "Aucun rapport pour l'instant : lancez monthlyReportJob."));
}

export async function anomaliesPage(root) {
  const last = await json("/api/batch/console/anomalies");
  if (last.executionId === null) {
    fill(root, h("h2", {}, "Anomalies"), h("p", {}, "dataConsistencyJob n'a encore jamais été exécuté."));
    return;
  }
  const sections = last.checks.map((c) => h("section", { "aria-label": c.title },
    h("h3", {}, `${c.title} — ${number(c.corrected + c.manual)} (${number(c.corrected)} corrigée(s), ${number(c.manual)} à traiter)`),
    table(`Enregistrements : ${c.title}`, ["Enregistrement", "Action", "État"], c.records.map((r) => h("tr", {},
      h("td", {}, r.record), h("td", {}, r.action),
      h("td", {}, r.corrected ? h("span", { class: "badge ok" }, "Corrigée") : h("span", { class: "badge ko" }, "À traiter")))))));
  fill(root, 
    h("h2", {}, "Anomalies de la dernière vérification de cohérence"),
    h("p", {}, "Exécution ", h("a", { href: `#/executions/${last.executionId}` }, `n° ${last.executionId}`),
      " du ", when(last.startTime), " ", badge(last.status),
      last.dryRun ? " — simulation (dry run) : rien n'a été modifié." : "",
      last.report ? [" Rapport : ", h("span", { class: "mono" }, last.report), "."] : ""),
    sections.length ? sections : h("p", {}, "Aucune anomalie trouvée."));
}

/** The audit's results: executions' statuses, and those of operator requests, downloads and mails. */
const RESULT_FR = {
  ...STATUS_FR, ACCEPTED: "Accepté", REFUSED: "Refusé", NOT_FOUND: "Introuvable", SUCCESS: "Réussi",
  SENT: "Envoyé",
};

/** verify_chain's reasons (English, as the CLI prints them), said in French. */
function chainReasonFr(reason) {
  const missing = /^row (\d+) is missing$/.exec(reason || "");
  if (missing) return `l'entrée n° ${missing[1]} manque (supprimée)`;
  const known = {
    "prev_hash does not match row before":
      "son empreinte de chaînage ne correspond pas à l'entrée précédente (entrée insérée, supprimée ou déplacée)",
    "row content does not match its hash": "son contenu ne correspond plus à son empreinte (entrée modifiée)",
  };
  return known[reason] || reason;
}

export async function auditPage(root, params) {
  const page = Math.max(0, Number(params.get("page") || 0));
  const size = 50;
  const found = await json("/api/batch/console/audit", { query: { page, size } });
  const v = found.verification;
  const verdict = v.ok
    ? h("p", { class: "card", id: "chain-result" }, h("span", { class: "badge ok" }, "Chaîne intègre"),
      ` ${number(v.rows)} entrée(s) vérifiée(s) ; empreinte de tête `, h("code", {}, v.headHash.slice(0, 16)), "…")
    : h("p", { class: "notice", id: "chain-result", role: "alert" }, h("span", { class: "badge ko" }, "Chaîne rompue"),
      ` à l'entrée n° ${v.brokenSeq} : ${chainReasonFr(v.reason)} (${number(v.rows)} entrée(s) vérifiée(s) avant).`);
  const rows = found.entries.map((e) => h("tr", {},
    h("td", { class: "num" }, e.seq),
    h("td", {}, when(e.timestamp)),
    h("td", {}, h("span", { class: "mono" }, e.eventType), " / ", e.eventAction),
    h("td", {}, e.jobName || "—", e.executionId ? [" ", h("a", { href: `#/executions/${e.executionId}` }, `n° ${e.executionId}`)] : ""),
    h("td", {}, e.userId || "—"),
    h("td", {}, e.status ? RESULT_FR[e.status] || e.status : "—"),
    h("td", {}, e.details || "")));
  fill(root, h("h2", {}, "Journal d'audit"),
    h("p", { class: "help" }, "En lecture seule. Chaque entrée est chaînée à la précédente par son empreinte SHA-256 ; la chaîne est recalculée à chaque affichage."),
    verdict,
    table("Entrées, les plus récentes d'abord", [["N°", "num"], "Date", "Événement", "Traitement", "Utilisateur", "Résultat", "Détails"], rows),
    pager(page, size, found.total, (p) => { window.location.hash = `#/audit?page=${p}`; }));
}
