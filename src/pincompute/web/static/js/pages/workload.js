// One workload: its spec in short, why it is pending (admission queue, excluded clusters), its
// placements per zone and cluster, conditions, revisions, pods, and the operations its kind
// offers (kinds.js). The object is watched; the pods are re-read when the object changes (the
// federation writes its status as pods come and go), never on a timer.

import { ApiError, get, post, projectPath, watchList } from "../api.js";
import { age, announce, confirmAction, h, table } from "../dom.js";
import { BY_PLURAL, tier, zones } from "../kinds.js";
import { timeline } from "../timeline.js";

const dl = (pairs) => h("dl", { class: "summary" },
  pairs.filter(([, v]) => v !== undefined && v !== null && v !== "").flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));

function containers(obj) {
  const spec = obj.spec?.template?.spec || obj.spec?.jobTemplate?.spec?.template?.spec || obj.spec || {};
  return spec.containers || [];
}

function summary(obj, kind) {
  const [have, want] = kind.ready(obj);
  return h("section", { "aria-labelledby": "summary-h" }, h("h2", { id: "summary-h" }, "Summary"), dl([
    ["Kind", obj.kind], ["State", kind.state(obj)], ["Ready", want === null ? String(have) : `${have}/${want}`],
    ["Tier", tier(obj)], ["Zones", zones(obj).join(", ") || "—"],
    ["Images", containers(obj).map((c) => `${c.name}: ${c.image}`).join(", ")],
    ["Schedule", obj.spec?.schedule], ["Created", `${obj.metadata.creationTimestamp} (${age(obj.metadata.creationTimestamp)} ago)`],
    ["Labels", Object.entries(obj.metadata.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ")],
    ["Generation", `${obj.metadata.generation ?? ""} (observed ${obj.status?.observedGeneration ?? "—"})`],
  ]));
}

function pending(obj) {
  const adm = obj.status?.admission;
  const excluded = obj.status?.excludedClusters || [];
  if (adm?.state !== "Queued" && adm?.state !== "Preempted" && !excluded.length) return null;
  return h("section", { class: "callout", "aria-labelledby": "why-h" }, h("h2", { id: "why-h" }, "Why is this pending"),
    adm ? dl([["Admission", adm.state], ["Queue", adm.queue], ["Position", adm.position],
      ["Reason", adm.reason], ["What would help", adm.hint], ["Not before", adm.notBefore]]) : null,
    excluded.length ? table("Clusters excluded by the cluster scheduler", ["Cluster", "Filter", "Reason"],
      excluded.map((x) => h("tr", {}, h("td", {}, x.cluster), h("td", {}, x.plugin || "—"), h("td", { class: "wrap" }, x.reason)))) : null);
}

function placements(obj) {
  const shards = new Map((obj.status?.clusters || []).map((c) => [c.cluster, c]));
  const rows = (obj.status?.placements || []).map((p) => {
    const s = shards.get(p.cluster) || {};
    return h("tr", {}, h("td", {}, p.zone || s.zone || ""), h("td", {}, p.cluster), h("td", {}, p.replicas ?? ""),
      h("td", {}, s.readyReplicas ?? ""), h("td", {}, s.phase || s.message || ""));
  });
  return table("Placements per zone and cluster", ["Zone", "Cluster", "Assigned", "Ready", "Shard state"], rows, { id: "placements" });
}

function conditions(obj) {
  return table("Conditions", ["Type", "Status", "Reason", "Message", "Since"], (obj.status?.conditions || []).map((c) =>
    h("tr", {}, h("td", {}, c.type), h("td", {}, c.status), h("td", {}, c.reason || ""), h("td", { class: "wrap" }, c.message || ""),
      h("td", {}, age(c.lastTransitionTime)))));
}

export async function render(main, { params, signal }) {
  const { project, plural, name } = params;
  const kind = BY_PLURAL[plural];
  if (!kind) throw new Error(`unknown kind ${plural}`);
  const path = projectPath(project, plural, name);
  const base = `#/projects/${encodeURIComponent(project)}`;
  const heading = h("h1", {}, `${kind.label} ${name}`);
  const actions = h("div", { class: "actions", role: "group", "aria-label": "Operations" });
  const result = h("p", { class: "result", role: "status" });
  const body = h("div", { class: "workload-body" });
  const podsSection = h("section", { "aria-labelledby": "pods-h" }, h("h2", { id: "pods-h" }, "Pods"), h("p", { class: "muted" }, "Loading…"));
  const links = h("p", { class: "links" },
    kind.logs ? h("a", { href: `${base}/workloads/${plural}/${encodeURIComponent(name)}/logs`, class: "button" }, "Live logs") : null,
    h("a", { href: `${base}/workloads` }, "All workloads"));
  const events = timeline(`${path}/events`, { signal, title: "Events" });
  const history = historySection(path, signal);
  const revisions = kind.revisions ? revisionsSection(path, name, signal, (r) => operate("rollback",
    `Roll back to revision ${r.number}`, { revision: String(r.number) })) : null;
  main.append(h("div", { class: "page-head" }, heading, links), actions, result, body, revisions?.el || "",
    podsSection, events.el, history.el);

  async function operate(op, label, payload) {
    result.textContent = `${label}…`;
    try {
      const answer = await post(`${path}/${op}`, payload || {}, { signal });
      result.textContent = `${label}: done.${answer?.message ? ` ${answer.message}` : ""}`;
      announce(`${label} ${name}: done`);
      revisions?.refresh();
    } catch (err) {
      result.textContent = `${label} refused: ${err.message}`;
      result.className = "result error";
      return;
    }
    result.className = "result";
  }

  // Redrawn only when what they offer changes, and never under the user's hands (a watch event
  // must not reset the replicas being typed).
  let offered = "";
  function drawActions(obj) {
    const now = JSON.stringify([kind.ops.filter((op) => !op.when || op.when(obj)).map((op) => op.op),
      obj.spec?.replicas, containers(obj).map((c) => c.name)]);
    const focused = actions.contains(document.activeElement) ? document.activeElement : null;
    if (now === offered || (focused && /^(INPUT|SELECT)$/.test(focused.tagName))) return;
    offered = now;
    actions.replaceChildren();
    for (const op of kind.ops) {
      if (op.when && !op.when(obj)) continue;
      if (op.input === "replicas") {
        const input = h("input", { type: "number", min: 0, id: "scale-replicas", value: obj.spec?.replicas ?? 1, class: "small" });
        actions.append(h("form", { class: "inline", onsubmit: async (e) => {
          e.preventDefault();
          const n = Number(input.value);
          if (!Number.isInteger(n) || n < 0) { result.textContent = "Replicas must be a whole number, 0 or more."; return; }
          if (n < (obj.spec?.replicas ?? 1) && !(await confirmAction(`Scale ${name} down to ${n}?`, { action: "Scale down" }))) return;
          await operate("scale", `Scale to ${n}`, { replicas: n });
        } }, h("label", { for: "scale-replicas" }, "Replicas"), input, h("button", { type: "submit" }, op.label)));
      } else if (op.input === "container") {
        const select = h("select", { id: "restart-container" }, containers(obj).map((c) => h("option", { value: c.name }, c.name)));
        actions.append(h("form", { class: "inline", onsubmit: async (e) => {
          e.preventDefault();
          if (!(await confirmAction(`${op.disrupts} ${name}: ${select.value}?`, { action: op.label }))) return;
          await operate(op.op, `${op.label} ${select.value}`, { container: select.value });
        } }, h("label", { for: "restart-container" }, "Container"), select, h("button", { type: "submit" }, op.label)));
      } else {
        actions.append(h("button", { type: "button", class: op.disrupts ? "danger" : "", onclick: async () => {
          if (op.disrupts && !(await confirmAction(`${op.disrupts} ${name}?`, { action: op.label }))) return;
          await operate(op.op, op.label);
        } }, op.label));
      }
    }
    if (focused) actions.querySelector("button")?.focus();  // the button pressed may be gone
  }

  let podsTimer = null;
  async function drawPods() {
    podsTimer = null;
    if (!["pinapps", "pinpods", "pinjobs", "pintrainingjobs"].includes(plural)) { podsSection.remove(); return; }
    let pods;
    try { pods = (await get(`${path}/pods`, { signal })).items || []; } catch (err) {
      if (!signal.aborted) podsSection.replaceChildren(h("h2", { id: "pods-h" }, "Pods"), h("p", { class: "error" }, err.message));
      return;
    }
    const rows = pods.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1)).map((p) => {
      const statuses = p.status?.containerStatuses || [];
      const restarts = statuses.reduce((n, c) => n + (c.restartCount || 0), 0);
      const ready = statuses.filter((c) => c.ready).length;
      const labels = p.metadata.labels || {};
      const pod = encodeURIComponent(p.metadata.name);
      return h("tr", { "data-pod": p.metadata.name }, h("td", {}, p.metadata.name), h("td", {}, p.spec?.nodeName || ""),
        h("td", {}, labels["topology.kubernetes.io/zone"] || ""), h("td", {}, labels["pincompute.io/cluster"] || ""),
        h("td", {}, p.status?.podIP || ""), h("td", {}, `${ready}/${(p.spec?.containers || []).length}`), h("td", {}, String(restarts)),
        h("td", {}, p.metadata.deletionTimestamp ? "Terminating" : p.status?.phase || ""),
        h("td", { class: "actions" }, h("a", { href: `${base}/workloads/${plural}/${encodeURIComponent(name)}/logs?pod=${pod}` }, "Logs"), " ",
          h("a", { href: `${base}/pods/${pod}/shell?containers=${encodeURIComponent((p.spec?.containers || []).map((c) => c.name).join(","))}` }, "Shell"),
          plural === "pinapps" && labels["pincompute.io/workload"] ? (p.spec?.containers || []).map((c) =>
            h("button", { type: "button", class: "link", onclick: async () => {
              if (!(await confirmAction(`Restart container ${c.name} of ${p.metadata.name}?`, { action: "Restart container" }))) return;
              await operate("restart-container", `Restart ${c.name} of ${p.metadata.name}`, { pod: labels["pincompute.io/workload"], container: c.name });
            } }, `Restart ${c.name}`)) : null));
    });
    podsSection.replaceChildren(h("h2", { id: "pods-h" }, "Pods"),
      table(`Pods of ${name}`, ["Pod", "Node", "Zone", "Cluster", "IP", "Ready", "Restarts", "State", ""], rows, { id: "pods" }));
  }

  function draw(obj) {
    events.refresh();
    history.refresh();
    revisions?.refresh();
    drawActions(obj);
    body.replaceChildren(...[summary(obj, kind), pending(obj), placements(obj), conditions(obj)].filter(Boolean));
    if (!podsTimer) podsTimer = setTimeout(drawPods, 300);
  }

  const refused = (err) => {
    actions.replaceChildren();
    body.replaceChildren(h("p", { class: "error", role: "alert" }, err instanceof ApiError && err.status === 403
      ? `You may not see ${project}: ${err.message}` : err instanceof ApiError && err.status === 404
        ? `No ${kind.label.toLowerCase()} named ${name} in ${project}.` : err.message));
  };
  try {
    draw(await get(path, { signal }));
  } catch (err) {
    if (signal.aborted) return;
    // Just created: the gateway's cache may not have it yet; the watch below will bring it.
    if (!(err instanceof ApiError && err.status === 404)) { refused(err); podsSection.remove(); return; }
    body.replaceChildren(h("p", { role: "status" }, `Waiting for ${kind.label.toLowerCase()} ${name} to appear…`));
  }
  // The gateway watches collections (no field selector): follow the kind, keep this one.
  const list = watchList(projectPath(project, plural), {
    signal,
    onChange(type, obj) {
      if (type === "reset") obj = [...list.items.values()].find((o) => o.metadata.name === name);
      if (!obj || obj.metadata.name !== name) return;
      if (type === "DELETED") { body.replaceChildren(h("p", { role: "alert" }, `${name} was deleted.`)); actions.replaceChildren(); offered = ""; return; }
      draw(obj);
    },
    onError: refused,
  });
  signal.addEventListener("abort", () => clearTimeout(podsTimer));
}

// A PinApp's revisions (from its shards' histories, GET .../revisions), each but the current one
// with a button that rolls the app back to it after asking; re-read when the app changes, at
// most once per 500 ms, and after an operation.
function revisionsSection(path, name, signal, rollback) {
  const heading = h("h2", { id: "revisions-h" }, "Revisions");
  const el = h("section", { "aria-labelledby": "revisions-h" }, heading, h("p", { class: "muted" }, "Loading…"));
  let timer = null;
  const load = async () => {
    timer = null;
    let items;
    try { items = (await get(`${path}/revisions`, { signal })).items || []; } catch (err) {
      if (!signal.aborted) el.replaceChildren(heading, h("p", { class: "muted" }, `Revisions unavailable: ${err.message}`));
      return;
    }
    const focused = el.contains(document.activeElement) ? document.activeElement.dataset.revision : null;
    el.replaceChildren(heading, table("Revisions, oldest first", ["Number", "Revision", "Images", "Change", "Created", ""],
      items.map((r) => h("tr", { "data-revision": String(r.number), class: r.current ? "current" : "" },
        h("td", {}, String(r.number ?? "")), h("td", {}, r.revision || ""),
        h("td", {}, Object.entries(r.images || {}).map(([c, i]) => `${c}: ${i}`).join(", ")),
        h("td", { class: "wrap" }, r.change || ""), h("td", { title: r.created || "" }, r.created ? `${age(r.created)} ago` : ""),
        h("td", {}, r.current ? h("strong", {}, "current") : h("button", { type: "button", "data-revision": String(r.number),
          onclick: async () => {
            if (!(await confirmAction(`Roll ${name} back to revision ${r.number} (${Object.values(r.images || {}).join(", ")})?`,
              { action: "Roll back" }))) return;
            await rollback(r);
          } }, "Roll back to this revision")))), { id: "revisions" }));
    if (focused) el.querySelector(`button[data-revision="${focused}"]`)?.focus();  // keyboard users keep their place
  };
  signal.addEventListener("abort", () => clearTimeout(timer));
  return { el, refresh: () => { if (!timer) timer = setTimeout(load, 500); } };
}

// The workload's state transitions (admitted, placed, rolled out, scaled...), re-read when the
// workload changes, at most once per 500 ms.
function historySection(path, signal) {
  const heading = h("h2", { id: "history-h" }, "History");
  const el = h("section", { "aria-labelledby": "history-h" }, heading);
  let timer = null;
  const load = async () => {
    timer = null;
    try {
      const items = (await get(`${path}/history`, { signal })).items || [];
      el.replaceChildren(heading, table("State transitions, oldest first", ["When", "State", "Reason", "Message", "Source"],
        items.map((i) => h("tr", {}, h("td", { title: i.time || "" }, i.time ? `${age(i.time)} ago` : ""), h("td", {}, i.state || ""),
          h("td", {}, i.reason || ""), h("td", { class: "wrap" }, i.message || ""), h("td", {}, i.source || ""))), { id: "history" }));
    } catch (err) {
      if (!signal.aborted) el.replaceChildren(heading, h("p", { class: "muted" }, `History unavailable: ${err.message}`));
    }
  };
  signal.addEventListener("abort", () => clearTimeout(timer));
  return { el, refresh: () => { if (!timer) timer = setTimeout(load, 500); } };
}
