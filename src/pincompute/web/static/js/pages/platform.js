// Platform admins: node pools, node images, rotations (with their progress) and the audit log,
// each a table declared here (columns as data); the live ones are watched.

import { get, key, listInto, watchList } from "../api.js";
import { age, announce, field, h, table } from "../dom.js";
import { LiveTable } from "../livetable.js";

const name = (o) => o.metadata.name;
const PAGES = {
  nodepools: { title: "Node pools", watch: false, columns: [
    ["Pool", name], ["Cluster", (o) => o.metadata.labels?.["pincompute.io/cluster"] || o.metadata.namespace || ""],
    ["Tier", (o) => o.spec?.tier || ""], ["Instance type", (o) => o.spec?.instanceType || ""],
    ["Nodes ready", (o) => `${o.status?.readyNodes ?? 0}/${o.status?.currentSize ?? 0}`],
    ["Size", (o) => `${o.spec?.minSize ?? 0}–${o.spec?.maxSize ?? ""} (want ${o.status?.desiredSize ?? o.spec?.desiredSize ?? "—"})`],
    ["Image", (o) => o.status?.nodeImage || o.spec?.nodeImage || ""], ["Updated", (o) => String(o.status?.updatedNodes ?? "")]] },
  nodeimages: { title: "Node images", columns: [
    ["Image", name], ["Type", (o) => o.spec?.type || ""], ["Version", (o) => o.spec?.version || ""],
    ["Parent", (o) => o.spec?.parent || ""], ["Phase", (o) => o.status?.phase || ""], ["Description", (o) => o.spec?.description || ""]] },
  rotations: { title: "Rotations", columns: [
    ["Rotation", name], ["Cluster", (o) => o.spec?.cluster || ""], ["Target image", (o) => o.spec?.targetImage || ""],
    ["Phase", (o) => (o.spec?.paused ? "Paused" : o.status?.phase || "Pending")],
    ["Progress", (o) => {
      const total = o.status?.totalNodes || 0, done = o.status?.replacedNodes || 0;
      return h("span", {}, h("progress", { max: total || 1, value: done, "aria-label": `${name(o)}: ${done} of ${total} nodes replaced` }), ` ${done}/${total}`);
    }],
    ["In progress", (o) => (o.status?.inProgress || []).join(", ")], ["Failed", (o) => (o.status?.failedNodes || []).join(", ")],
    ["Message", (o) => o.status?.message || ""]] },
};

async function audit(main, signal, query) {
  const user = h("input", { name: "user", value: query.user || "", autocomplete: "off" });
  const result = h("select", { name: "result" }, ["", "allowed", "denied", "failed"].map((r) =>
    h("option", { value: r, selected: query.result === r }, r || "Any result")));
  const form = h("form", { class: "filters", "aria-label": "Filter the audit log" },
    field("User", user, { id: "au-user" }), field("Result", result, { id: "au-result" }),
    h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const qs = new URLSearchParams(Object.entries({ user: user.value.trim(), result: result.value }).filter(([, v]) => v));
    location.hash = `#/platform/audit${qs.toString() ? `?${qs}` : ""}`;
  });
  main.append(h("h1", {}, "Audit log"), form);
  const answer = await get("audit", { query: { limit: 500, user: query.user, result: query.result }, signal });
  main.append(table("Mutations and denials, newest first", ["When", "User", "Verb", "Path", "Code", "Result", "Reason"],
    (answer.items || []).map((e) => h("tr", { class: e.result === "denied" ? "denied" : "" },
      h("td", { title: e.time || "" }, e.time ? `${age(e.time)} ago` : ""), h("td", {}, e.user || ""), h("td", {}, e.verb || ""),
      h("td", {}, e.path || ""), h("td", {}, String(e.code ?? "")), h("td", {}, e.result || ""), h("td", {}, e.reason || ""))),
    { id: "audit" }));
}

export async function render(main, { params, query, signal }) {
  if (params.resource === "audit") return audit(main, signal, query);
  const page = PAGES[params.resource];
  if (!page) { main.append(h("h1", {}, "Not found"), h("p", {}, `No platform page ${params.resource}.`)); return; }
  const live = new LiveTable({ caption: page.title, id: params.resource,
    columns: [...page.columns.map(([title, cell]) => ({ title, cell })), { title: "Age", cell: (o) => age(o.metadata.creationTimestamp) }] });
  main.append(h("h1", {}, page.title), live.el);
  if (page.watch === false) {
    await listInto(params.resource, live, { signal }).catch((err) => announce(err.message, { error: true }));
    return;
  }
  const { items } = watchList(params.resource, { signal, onOpen: () => live.loaded(), onChange(type, obj) {
    if (type === "reset") live.replaceAll([...items.entries()]);
    else if (type === "DELETED") live.remove(key(obj));
    else live.upsert(key(obj), obj);
  }, onError: (err) => announce(err.message, { error: true }) });
}
