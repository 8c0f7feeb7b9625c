// Small DOM helpers: every value goes in as text (never innerHTML), so data cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces ``root``'s content with ``children`` (nested arrays and null allowed). */
export function fill(root, ...children) {
  root.replaceChildren();
  append(root, children);
}

export const STATUS_FR = {
  COMPLETED: "Terminé",
  FAILED: "Échec",
  STARTED: "En cours",
  STARTING: "Démarrage",
  STOPPING: "Arrêt en cours",
  STOPPED: "Arrêté",
  ABANDONED: "Abandonné",
  UNKNOWN: "Inconnu",
};
export const RUNNING = new Set(["STARTING", "STARTED", "STOPPING"]);

export function badge(status) {
  if (!status) return h("span", { class: "badge none" }, "Jamais exécuté");
  return h("span", { class: `badge ${status}`, "data-status": status }, STATUS_FR[status] || status);
}

/** API times are UTC without an offset (``2024-01-15T02:00:00``): shown in the browser's zone. */
export function when(value) {
  if (!value) return "—";
  const date = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(value) ? value : `${value}Z`);
  if (Number.isNaN(date.getTime())) return value;
  return h("time", { datetime: date.toISOString(), title: `${value} UTC` },
    date.toLocaleString("fr-FR", { dateStyle: "short", timeStyle: "medium" }));
}

export function number(n) {
  return typeof n === "number" ? n.toLocaleString("fr-FR") : "—";
}

export function bytes(n) {
  if (n < 1024) return `${n} o`;
  if (n < 1024 * 1024) return `${(n / 1024).toLocaleString("fr-FR", { maximumFractionDigits: 1 })} Kio`;
  return `${(n / 1024 / 1024).toLocaleString("fr-FR", { maximumFractionDigits: 1 })} Mio`;
}

export function table(caption, headers, rows, empty = "Aucune donnée.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("table", {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((t) => {
      const [label, cls] = Array.isArray(t) ? t : [t, null];
      return h("th", { scope: "col", class: cls }, label);
    }))),
    h("tbody", {}, rows));
}

export function pager(page, size, total, go) {
  const pages = Math.max(1, Math.ceil(total / size));
  return h("nav", { class: "pager", "aria-label": "Pagination" },
    h("button", { type: "button", class: "secondary", disabled: page <= 0, onclick: () => go(page - 1) },
      "Page précédente"),
    h("span", { "aria-live": "polite" }, `Page ${page + 1} sur ${pages} (${number(total)} au total)`),
    h("button", { type: "button", class: "secondary", disabled: page + 1 >= pages, onclick: () => go(page + 1) },
      "Page suivante"));
}
