// Every workload of the project in one live table: one watch stream per kind (list, then
// `?watch=true` from the list's resourceVersion), rows updated in place as events arrive.
// Filters (kind, tier, state, text) live in the address, so a filtered view is a deep link.

import { key, projectPath, watchList } from "../api.js";
import { age, announce, field, h } from "../dom.js";
import { BY_PLURAL, KINDS, tier, zones } from "../kinds.js";
import { LiveTable } from "../livetable.js";

const STATES = ["", "Ready", "Not ready", "Queued"];

function matches(obj, f) {
  const kind = BY_PLURAL[obj._plural];
  if (f.tier && tier(obj) !== f.tier) return false;
  if (f.state) {
    const state = kind.state(obj);
    const [have, want] = kind.ready(obj);
    if (f.state === "Queued" && !state.startsWith("Queued")) return false;
    if (f.state === "Ready" && !(want !== null && have >= want && !state.startsWith("Queued"))) return false;
    if (f.state === "Not ready" && want !== null && have >= want) return false;
  }
  if (f.q) {
    const labels = Object.entries(obj.metadata.labels || {}).map(([k, v]) => `${k}=${v}`).join(" ");
    if (!`${obj.metadata.name} ${labels}`.toLowerCase().includes(f.q)) return false;
  }
  return true;
}

export async function render(main, { params, query, signal }) {
  const project = params.project;
  const f = { kind: query.kind || "", tier: query.tier || "", state: query.state || "", q: (query.q || "").toLowerCase() };
  const base = `#/projects/${encodeURIComponent(project)}/workloads`;
  const columns = [
    { title: "Name", stable: true, cell: (o) => h("a", { href: `${base}/${o._plural}/${encodeURIComponent(o.metadata.name)}` }, o.metadata.name) },
    { title: "Kind", cell: (o) => BY_PLURAL[o._plural].label },
    { title: "Ready", cell: (o) => { const [a, b] = BY_PLURAL[o._plural].ready(o); return b === null ? String(a) : `${a}/${b}`; } },
    { title: "State", cell: (o) => BY_PLURAL[o._plural].state(o), attrs: (o) => ({ "data-state": BY_PLURAL[o._plural].state(o).split(" ")[0] }) },
    { title: "Tier", cell: tier },
    { title: "Zones", cell: (o) => zones(o).join(", ") },
    { title: "Age", cell: (o) => age(o.metadata.creationTimestamp) },
  ];
  const live = new LiveTable({ caption: `Workloads of ${project}`, columns, id: "workloads", filter: (o) => matches(o, f) });
  const count = h("p", { class: "count", "aria-live": "polite" });
  live.onFlush = (t) => { count.textContent = `${t.visible} of ${t.rows.size} workloads`; };

  const search = h("input", { type: "search", name: "q", value: query.q || "", placeholder: "name or label" });
  const kindSel = h("select", { name: "kind" }, h("option", { value: "" }, "All kinds"),
    KINDS.map((k) => h("option", { value: k.plural, selected: f.kind === k.plural }, k.label)));
  const tierSel = h("select", { name: "tier" }, ["", "reserved", "ondemand", "preemptible"].map((t) =>
    h("option", { value: t, selected: f.tier === t }, t || "All tiers")));
  const stateSel = h("select", { name: "state" }, STATES.map((s) =>
    h("option", { value: s, selected: f.state === s }, s || "Any state")));
  const keep = () => {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries({ kind: kindSel.value, tier: tierSel.value, state: stateSel.value, q: search.value })) if (v) qs.set(k, v);
    const hash = `${base}${qs.toString() ? `?${qs}` : ""}`;
    history.replaceState(null, "", hash);
    return hash;
  };
  const refilter = () => {
    f.tier = tierSel.value; f.state = stateSel.value; f.q = search.value.trim().toLowerCase();
    keep();
    live.refilter();
  };
  search.addEventListener("input", refilter);
  tierSel.addEventListener("change", refilter);
  stateSel.addEventListener("change", refilter);
  // Another kind is another set of watch streams: render the page again for it.
  kindSel.addEventListener("change", () => { const hash = keep(); location.hash = ""; location.hash = hash; });

  main.append(
    h("div", { class: "page-head" }, h("h1", {}, "Workloads"),
      h("a", { class: "button primary", href: `#/projects/${encodeURIComponent(project)}/deploy` }, "Deploy")),
    h("form", { class: "filters", role: "search", "aria-label": "Filter workloads", onsubmit: (e) => e.preventDefault() },
      field("Search", search, { id: "wl-search" }), field("Kind", kindSel, { id: "wl-kind" }),
      field("Tier", tierSel, { id: "wl-tier" }), field("State", stateSel, { id: "wl-state" })),
    count, live.el);

  const kinds = f.kind ? [BY_PLURAL[f.kind]].filter(Boolean) : KINDS;
  let open = 0;
  for (const kind of kinds) {
    const { items } = watchList(projectPath(project, kind.plural), {
      signal,
      onOpen: () => { if (++open === kinds.length) live.loaded(); },
      onChange(type, obj) {
        if (type === "reset") {
          const entries = [];
          for (const [k, o] of items) { o._plural = kind.plural; entries.push([`${kind.plural}/${k}`, o]); }
          for (const [k, row] of live.rows) if (row.obj._plural === kind.plural && !items.has(k.slice(kind.plural.length + 1))) live.remove(k);
          for (const [k, o] of entries) live.upsert(k, o);
          return;
        }
        const k = `${kind.plural}/${key(obj)}`;
        if (type === "DELETED") live.remove(k);
        else { obj._plural = kind.plural; live.upsert(k, obj); }
      },
      onError(err) {
        announce(`${kind.label}s: ${err.message}`, { error: true });
      },
    });
  }
}
