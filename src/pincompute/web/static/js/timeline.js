// An events timeline, newest first, warnings marked. The gateway lists Events (no watch), so
// the timeline is kept live by the watches the page already has: `refresh()` is called when a
// watched workload changes (its status moves with nearly every Event about it) and reads only
// what is new (`since` the newest Event shown), at most once per 300 ms.

import { get, key } from "./api.js";
import { age, h } from "./dom.js";

export const eventTime = (e) =>
  e.lastTimestamp || e.eventTime || e.series?.lastObservedTime || e.firstTimestamp || e.metadata?.creationTimestamp || "";

function row(e) {
  const obj = e.involvedObject || e.regarding || {};
  return h("li", { class: `event ${e.type === "Warning" ? "warning" : ""}` },
    h("time", { datetime: eventTime(e), title: eventTime(e) }, age(eventTime(e))),
    h("span", { class: "reason" }, e.reason || ""),
    h("span", { class: "object" }, obj.kind ? `${obj.kind}/${obj.name}` : ""),
    h("span", { class: "message" }, e.message || e.note || ""),
    e.count > 1 ? h("span", { class: "count" }, `×${e.count}`) : null);
}

/** A timeline of the events at `path`: `{ el, refresh }`. */
export function timeline(path, { signal, title = "Events", limit = 200 }) {
  const list = h("ol", { class: "timeline", "aria-live": "polite", "aria-relevant": "additions" });
  const status = h("p", { class: "muted" }, "Loading…");
  const el = h("section", { "aria-label": title }, h("h2", {}, title), status, list);
  const events = new Map();
  let newest = "";
  let timer = null;
  let running = false;
  let again = false;

  const draw = () => {
    const shown = [...events.values()].sort((a, b) => (eventTime(a) < eventTime(b) ? 1 : -1)).slice(0, limit);
    list.replaceChildren(...shown.map(row));
    status.textContent = shown.length ? "" : "No events yet.";
  };

  async function load() {
    timer = null;
    if (running) { again = true; return; }
    running = true;
    try {
      const answer = await get(path, { signal, query: { limit, since: newest || undefined } });
      for (const e of answer.items || []) {
        events.set(key(e), e);
        if (eventTime(e) > newest) newest = eventTime(e);
      }
      draw();
    } catch (err) {
      if (!signal.aborted) status.textContent = `Events unavailable: ${err.message}`;
    } finally {
      running = false;
      if (again && !signal.aborted) { again = false; refresh(); }
    }
  }

  function refresh() {
    if (!timer && !signal.aborted) timer = setTimeout(load, 300);
  }

  signal.addEventListener("abort", () => clearTimeout(timer));
  load();
  return { el, refresh };
}
