// Execution history across jobs, with job / status filters and paging (the URL keeps them).

import { call, json } from "./api.js";
import { STATUS_FR, badge, fill, h, number, pager, table, when } from "./dom.js";

const SIZE = 20;

function go(params) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== null && v !== undefined));
  window.location.hash = `#/history?${q}`;
}

export async function historyPage(root, params) {
  const job = params.get("job") || "";
  const status = params.get("status") || "";
  const page = Math.max(0, Number(params.get("page") || 0));
  const [jobs, found] = await Promise.all([
    json("/api/batch/jobs"),
    call("/api/batch/console/history", { query: { job, status, page, size: SIZE } }),
  ]);
  const total = Number(found.headers.get("X-Total-Count") || 0);
  const jobSelect = h("select", { id: "filter-job", name: "job" },
    h("option", { value: "" }, "Tous les traitements"),
    jobs.map((j) => h("option", { value: j.name, selected: j.name === job }, j.name)));
  const statusSelect = h("select", { id: "filter-status", name: "status" },
    h("option", { value: "" }, "Tous les états"),
    ["COMPLETED", "FAILED", "STOPPED", "ABANDONED"].map((s) => h("option", { value: s, selected: s === status }, STATUS_FR[s])));
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filtrer l'historique",
    onsubmit: (event) => { event.preventDefault(); go({ job: jobSelect.value, status: statusSelect.value, page: 0 }); } },
    h("div", {}, h("label", { for: "filter-job" }, "Traitement"), jobSelect),
    h("div", {}, h("label", { for: "filter-status" }, "État"), statusSelect),
    h("button", { type: "submit" }, "Filtrer"));
  const rows = found.body.map((e) => h("tr", {},
    h("td", {}, h("a", { href: `#/executions/${e.executionId}` }, `n° ${e.executionId}`)),
    h("td", {}, h("span", { class: "mono" }, e.jobName)),
    h("td", {}, badge(e.status)),
    h("td", {}, when(e.startTime)),
    h("td", {}, e.duration),
    h("td", { class: "num" }, number(e.itemsProcessed)),
    h("td", { class: "num" }, number(e.itemsFailed)),
    h("td", {}, e.triggeredBy || "—")));
  fill(root, 
    h("h2", {}, "Historique des exécutions"),
    form,
    table("Exécutions terminées, les plus récentes d'abord",
      ["Exécution", "Traitement", "État", "Début", "Durée", ["Traités", "num"], ["En échec", "num"], "Lancé par"],
      rows, "Aucune exécution ne correspond à ces filtres."),
    pager(page, SIZE, total, (p) => go({ job, status, page: p })));
}
