// Quota and usage charts: one horizontal bar per resource and tier, drawn as SVG whose
// accessible name lists every bar's "used of quota", so the figures are readable without sight.

import { quantity } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const svg = (tag, attrs, text) => {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
};

const RESOURCES = ["cpu", "memory", "gpu", "pods"];
const TIERS = ["reserved", "ondemand", "preemptible"];

function pretty(resource, n) {
  if (!Number.isFinite(n)) return "—";
  if (resource === "memory") {
    for (const [unit, size] of [["Ti", 2 ** 40], ["Gi", 2 ** 30], ["Mi", 2 ** 20], ["Ki", 2 ** 10]]) if (Math.abs(n) >= size) return `${+(n / size).toFixed(1)}${unit}`;
    return `${n}`;
  }
  if (resource === "cpu" && n > 0 && n < 1) return `${Math.round(n * 1000)}m`;
  return `${+n.toFixed(2)}`;
}

/** Bars of usage against quota per tier: `quota` and `usage` map tier -> {cpu, memory, ...}. */
export function quotaChart(title, quota = {}, usage = {}) {
  const rows = [];
  for (const tier of TIERS) for (const resource of RESOURCES) {
    const limit = quantity(quota?.[tier]?.[resource]);
    const used = quantity(usage?.[tier]?.[resource]);
    if (!Number.isFinite(limit) && !(used > 0)) continue;
    rows.push({ tier, resource, limit, used: Number.isFinite(used) ? used : 0 });
  }
  const width = 560, bar = 18, gap = 10, left = 170;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${Math.max(1, rows.length) * (bar + gap) + 10}`, role: "img", class: "chart" });
  chart.append(svg("title", {}, title));
  if (!rows.length) chart.append(svg("text", { x: 0, y: 20 }, "No quota set and nothing used."));
  const texts = [];
  rows.forEach((r, i) => {
    const y = i * (bar + gap) + 5;
    const ratio = Number.isFinite(r.limit) && r.limit > 0 ? Math.min(1, r.used / r.limit) : r.used > 0 ? 1 : 0;
    const text = `${r.tier} ${r.resource}: ${pretty(r.resource, r.used)} of ${Number.isFinite(r.limit) ? pretty(r.resource, r.limit) : "no limit"}`;
    texts.push(text);
    const g = svg("g", {});
    g.append(svg("text", { x: 0, y: y + 13, class: "label" }, `${r.tier} ${r.resource}`),
      svg("rect", { x: left, y, width: width - left - 120, height: bar, class: "track" }),
      svg("rect", { x: left, y, width: (width - left - 120) * ratio, height: bar, class: ratio >= 0.9 ? "fill high" : "fill" }),
      svg("text", { x: width - 115, y: y + 13, class: "value" }, `${pretty(r.resource, r.used)} / ${Number.isFinite(r.limit) ? pretty(r.resource, r.limit) : "∞"}`));
    chart.append(g);
  });
  // One image with its figures as its name: what a screen reader says is what the bars show.
  chart.setAttribute("aria-label", `${title}: ${texts.join("; ") || "no quota set and nothing used"}`);
  return chart;
}
