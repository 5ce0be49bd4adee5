// Live logs of a workload: one pod's container, or all its replicas interleaved with a pod
// prefix (one stream per pod, the pods re-read when the workload's pods change). Follow keeps
// the view at the bottom; Pause stops drawing (lines are kept); the search box filters what is
// shown; "previous" reads the last terminated container; Download saves what was received.

import { get, lines, projectPath } from "../api.js";
import { field, h } from "../dom.js";

const MAX_LINES = 20000;
const MAX_STREAMS = 4;  // browsers open six connections per origin: leave some for the page

export async function render(main, { params, query, signal }) {
  const { project, plural, name } = params;
  const pods = ((await get(projectPath(project, plural, name, "pods"), { signal })).items || [])
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  const podSel = h("select", { name: "pod" }, h("option", { value: "" }, "All replicas"),
    pods.map((p) => h("option", { value: p.metadata.name, selected: p.metadata.name === query.pod }, p.metadata.name)));
  const names = new Set();
  for (const p of pods) for (const c of p.spec?.containers || []) names.add(c.name);
  const containerSel = h("select", { name: "container" }, [...names].map((c) => h("option", { value: c, selected: c === query.container }, c)));
  const follow = h("input", { type: "checkbox", name: "follow", checked: query.follow !== "false" });
  const previous = h("input", { type: "checkbox", name: "previous", checked: query.previous === "true" });
  const search = h("input", { type: "search", name: "grep", value: query.grep || "" });
  const pause = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
  const download = h("button", { type: "button" }, "Download");
  const status = h("p", { class: "muted", role: "status" });
  const out = h("pre", { class: "logs", id: "logs", tabindex: "0", "aria-label": "Log lines", "aria-live": "off" });
  const form = h("form", { class: "filters", "aria-label": "Log options" },
    field("Pod", podSel, { id: "lg-pod" }), field("Container", containerSel, { id: "lg-container" }),
    field("Search", search, { id: "lg-grep" }),
    h("div", { class: "checks" }, h("label", {}, follow, " Follow"), h("label", {}, previous, " Previous container")),
    h("div", { class: "row" }, pause, download));
  main.append(h("h1", {}, `Logs of ${name}`), form, status, out);

  const received = [];
  let paused = false, pending = false, stream = null;
  const shown = (line) => !search.value || line.toLowerCase().includes(search.value.toLowerCase());
  const draw = () => {
    pending = false;
    if (paused) return;
    const text = received.filter(shown).slice(-5000).join("\n");
    out.textContent = text;
    if (follow.checked) out.scrollTop = out.scrollHeight;
  };
  const schedule = () => { if (!pending) { pending = true; requestAnimationFrame(draw); } };

  function start() {
    stream?.abort();
    stream = new AbortController();
    const inner = stream.signal;
    received.length = 0;
    schedule();
    const chosen = podSel.value ? pods.filter((p) => p.metadata.name === podSel.value) : pods.slice(0, MAX_STREAMS);
    const prefix = !podSel.value;
    status.textContent = pods.length > chosen.length && prefix
      ? `Showing the first ${chosen.length} of ${pods.length} replicas; pick one to read it.` : `Streaming ${chosen.length} pod(s).`;
    if (!chosen.length) status.textContent = "No pods yet.";
    for (const p of chosen) {
      const pod = p.metadata.name;
      const container = (p.spec?.containers || []).some((c) => c.name === containerSel.value) ? containerSel.value : undefined;
      lines(projectPath(project, "pods", pod, "logs"), {
        query: { container, follow: follow.checked && !previous.checked ? "true" : "false", previous: previous.checked ? "true" : undefined, tailLines: 1000 },
        signal: inner,
        onLine(line) {
          received.push(prefix ? `[${pod}] ${line}` : line);
          if (received.length > MAX_LINES) received.splice(0, received.length - MAX_LINES);
          schedule();
        },
      }).catch((err) => { if (!inner.aborted) status.textContent = `${pod}: ${err.message}`; });
    }
  }

  signal.addEventListener("abort", () => stream?.abort());
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) schedule();
  });
  download.addEventListener("click", () => {
    const blob = new Blob([received.join("\n") + "\n"], { type: "text/plain" });
    const a = h("a", { href: URL.createObjectURL(blob), download: `${name}-logs.txt` });
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  });
  search.addEventListener("input", schedule);
  for (const el of [podSel, containerSel, follow, previous]) el.addEventListener("change", start);
  form.addEventListener("submit", (e) => e.preventDefault());
  start();
}
