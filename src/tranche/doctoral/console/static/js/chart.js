// A small SVG chart drawn by hand: mean duration per day as bars (left axis, seconds)
// and the success rate as a line (right axis, 0–100 %). The same numbers are in a table
// next to it, for screen readers and for exact values.

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, text = null) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== null) el.textContent = text;
  return el;
}

export function timelineChart(days) {
  const width = 900, height = 320, left = 60, right = 60, top = 20, bottom = 50;
  const plotW = width - left - right, plotH = height - top - bottom;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "chart-title" });
  svg.append(s("title", { id: "chart-title" },
    "Taux de réussite et durée moyenne des exécutions par jour"));
  const maxSeconds = Math.max(1, ...days.map((d) => d.averageSeconds || 0));
  const step = plotW / Math.max(1, days.length);
  const y = (v, max) => top + plotH - (v / max) * plotH;
  svg.append(s("line", { class: "axis", x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH }));
  svg.append(s("line", { class: "axis", x1: left, y1: top, x2: left, y2: top + plotH }));
  svg.append(s("line", { class: "axis", x1: left + plotW, y1: top, x2: left + plotW, y2: top + plotH }));
  for (const frac of [0, 0.5, 1]) {
    const ty = top + plotH - frac * plotH;
    svg.append(s("text", { x: left - 6, y: ty + 4, "text-anchor": "end" }, `${(maxSeconds * frac).toFixed(1)} s`));
    svg.append(s("text", { x: left + plotW + 6, y: ty + 4 }, `${Math.round(frac * 100)} %`));
  }
  const points = [];
  days.forEach((d, i) => {
    const x = left + i * step;
    if (d.averageSeconds !== null) {
      const by = y(d.averageSeconds, maxSeconds);
      const barW = Math.min(step * 0.6, 48);
      svg.append(s("rect", { class: "duration", x: x + (step - barW) / 2, y: by, width: barW, height: top + plotH - by }));
    }
    points.push(`${x + step / 2},${y(d.successRate, 100)}`);
    if (days.length <= 31 && (days.length <= 10 || i % Math.ceil(days.length / 10) === 0)) {
      svg.append(s("text", { x: x + step / 2, y: top + plotH + 18, "text-anchor": "middle" },
        new Date(`${d.day}T00:00:00Z`).toLocaleDateString("fr-FR", { day: "2-digit", month: "2-digit", timeZone: "UTC" })));
    }
  });
  if (points.length) {
    svg.append(s("polyline", { class: "rate", points: points.join(" ") }));
    for (const p of points) {
      const [cx, cy] = p.split(",");
      svg.append(s("circle", { cx, cy, r: 4, class: "rate" }));
    }
  }
  svg.append(s("text", { x: left, y: height - 8 }, "Barres : durée moyenne (s) · Ligne : taux de réussite (%)"));
  return svg;
}
