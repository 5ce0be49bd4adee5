// Platform admins: the region's member clusters with their health, nodes and capacity per tier
// (read when the page opens and on Refresh: the gateway lists clusters without a watch).

import { listInto } from "../api.js";
import { age, announce, h, quantity } from "../dom.js";
import { LiveTable } from "../livetable.js";

const share = (a, b) => {
  const x = quantity(a), y = quantity(b);
  return Number.isFinite(x) && Number.isFinite(y) && y > 0 ? `${Math.round((100 * x) / y)}%` : "—";
};

export async function render(main, { signal }) {
  const live = new LiveTable({ caption: "Member clusters", id: "clusters", columns: [
    { title: "Cluster", stable: true, cell: (c) => h("a", { href: `#/platform/clusters/${encodeURIComponent(c.metadata.name)}` }, c.metadata.name) },
    { title: "Zone", cell: (c) => c.spec?.zone || "" },
    { title: "Health", cell: (c) => c.status?.health || "Unknown", attrs: (c) => ({ "data-state": c.status?.health || "Unknown" }) },
    { title: "Nodes ready", cell: (c) => `${c.status?.nodes?.ready ?? 0}/${c.status?.nodes?.total ?? 0}` },
    { title: "CPU allocated", cell: (c) => `${share(c.status?.allocated?.cpu, c.status?.allocatable?.cpu)} of ${c.status?.allocatable?.cpu ?? "—"}` },
    { title: "Memory allocated", cell: (c) => `${share(c.status?.allocated?.memory, c.status?.allocatable?.memory)} of ${c.status?.allocatable?.memory ?? "—"}` },
    { title: "Tiers", cell: (c) => Object.entries(c.status?.tiers || {}).map(([t, v]) => `${t}: ${share(v.allocated?.cpu, v.allocatable?.cpu)} cpu`).join("; ") },
    { title: "Version", cell: (c) => c.status?.kubernetesVersion || "" },
    { title: "Probed", cell: (c) => age(c.status?.lastProbeTime) },
  ] });
  const load = () => listInto("clusters", live, { signal }).catch((err) => announce(err.message, { error: true }));
  main.append(h("div", { class: "page-head" }, h("h1", {}, "Clusters"),
    h("button", { type: "button", onclick: load }, "Refresh")), live.el);
  await load();
}
