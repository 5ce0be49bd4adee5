// Platform admins: one cluster's nodes (ready, schedulable, pool, capacity) with cordon,
// uncordon and drain; drain asks first, as it evicts the node's pods.

import { getAll, post } from "../api.js";
import { age, confirmAction, h, table } from "../dom.js";

const ready = (n) => (n.status?.conditions || []).find((c) => c.type === "Ready")?.status === "True";

export async function render(main, { params, signal }) {
  const cluster = params.cluster;
  const path = `clusters/${encodeURIComponent(cluster)}/nodes`;
  const box = h("div");
  const result = h("p", { role: "status", class: "result" });
  main.append(h("h1", {}, `Nodes of ${cluster}`), h("p", {}, h("a", { href: "#/platform/clusters" }, "All clusters")), result, box);

  async function act(node, op, question) {
    if (question && !(await confirmAction(question, { action: op[0].toUpperCase() + op.slice(1) }))) return;
    result.textContent = `${op} ${node}…`;
    try {
      const answer = await post(`${path}/${encodeURIComponent(node)}/${op}`, {}, { signal });
      result.textContent = `${op} ${node}: done.${answer?.message ? ` ${answer.message}` : ""}`;
    } catch (err) {
      if (signal.aborted) return;
      result.textContent = `${op} ${node} refused: ${err.message}`;
    }
    await draw().catch((err) => { if (!signal.aborted) result.textContent = err.message; });
  }

  async function draw() {
    const nodes = (await getAll(path, { signal })).items;
    box.replaceChildren(table(`Nodes of ${cluster}`, ["Node", "Ready", "Schedulable", "Pool", "Zone", "CPU", "Memory", "Age", "Actions"],
      nodes.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1)).map((n) => {
        const labels = n.metadata.labels || {};
        const name = n.metadata.name;
        return h("tr", {}, h("td", {}, name), h("td", {}, ready(n) ? "Ready" : "NotReady"),
          h("td", {}, n.spec?.unschedulable ? "Cordoned" : "Yes"), h("td", {}, labels["pincompute.io/node-pool"] || ""),
          h("td", {}, labels["topology.kubernetes.io/zone"] || ""), h("td", {}, n.status?.allocatable?.cpu ?? ""),
          h("td", {}, n.status?.allocatable?.memory ?? ""), h("td", {}, age(n.metadata.creationTimestamp)),
          h("td", { class: "actions" }, n.spec?.unschedulable
            ? h("button", { type: "button", onclick: () => act(name, "uncordon") }, "Uncordon")
            : h("button", { type: "button", onclick: () => act(name, "cordon") }, "Cordon"),
          h("button", { type: "button", class: "danger", onclick: () => act(name, "drain", `Drain ${name}? Its pods are evicted and move elsewhere.`) }, "Drain")));
      }), { id: "nodes" }));
  }
  await draw();
}
