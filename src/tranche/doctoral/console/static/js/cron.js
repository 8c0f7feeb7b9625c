// Quartz cron expressions (sec min hour day-of-month month day-of-week [year]) in French words.
// Covers the shapes the jobs use; anything else is shown as the expression itself.

const DAYS = { SUN: "dimanche", MON: "lundi", TUE: "mardi", WED: "mercredi", THU: "jeudi", FRI: "vendredi", SAT: "samedi" };
const DAY_NUMBERS = ["", "dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"];
const MONTHS = ["", "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
  "septembre", "octobre", "novembre", "décembre"];
const MONTH_NAMES = { JAN: 1, FEB: 2, MAR: 3, APR: 4, MAY: 5, JUN: 6, JUL: 7, AUG: 8, SEP: 9, OCT: 10, NOV: 11, DEC: 12 };

function list(words) {
  return words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} et ${words.at(-1)}`;
}

function isNum(field) { return /^\d+$/.test(field); }

export function describeCron(expression) {
  const fields = (expression || "").trim().split(/\s+/);
  if (fields.length < 6) return null;
  const [sec, min, hour, dom, month, dow] = fields;
  if (![sec, min, hour].every(isNum)) return null;
  const time = `${hour.padStart(2, "0")}:${min.padStart(2, "0")}`;
  const any = (f) => f === "*" || f === "?";
  let months = null;
  if (!any(month)) {
    const parts = month.split(",").map((m) => MONTH_NAMES[m.toUpperCase()] || Number(m));
    if (parts.some((m) => !(m >= 1 && m <= 12))) return null;
    months = list(parts.map((m) => MONTHS[m]));
  }
  if (any(dom) && any(dow)) return months ? `Tous les jours de ${months}, à ${time}` : `Tous les jours à ${time}`;
  if (any(dom)) {
    const days = dow.split(",").map((d) => DAYS[d.toUpperCase()] || DAY_NUMBERS[Number(d)]);
    if (days.some((d) => !d)) return null;
    return `Chaque ${list(days)}${months ? ` de ${months}` : ""}, à ${time}`;
  }
  if (isNum(dom) && any(dow)) {
    const day = dom === "1" ? "1er" : dom;
    return months ? `Le ${day} ${months}, à ${time}` : `Le ${day} de chaque mois, à ${time}`;
  }
  return null;
}
