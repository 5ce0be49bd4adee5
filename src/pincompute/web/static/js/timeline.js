// An events timeline kept live: the events route listed, then watched (`?watch=true`), newest
// first, warnings marked. Used on a workload's page and on the project's events page.

import { ApiError, get, key, watchList } from "./api.js";
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

/** A live timeline of the events at `path`; returns its element. */
export function timeline(path, { signal, title = "Events", limit = 200 }) {
  const list = h("ol", { class: "timeline", "aria-live": "polite", "aria-relevant": "additions" });
  const status = h("p", { class: "muted" }, "Loading…");
  const el = h("section", { "aria-label": title }, h("h2", {}, title), status, list);
  let pending = false;
  let source = new Map();
  const draw = () => {
    pending = false;
    const events = [...source.values()].sort((a, b) => (eventTime(a) < eventTime(b) ? 1 : -1)).slice(0, limit);
    list.replaceChildren(...events.map(row));
    status.textContent = events.length ? "" : "No events yet.";
  };
  const schedule = () => { if (!pending) { pending = true; requestAnimationFrame(draw); } };
  const watched = watchList(path, {
    signal,
    onChange: () => schedule(),
    async onError(err) {
      // A route without watch support: show the list once rather than nothing.
      if (err instanceof ApiError && err.status === 400) {
        const once = await get(path, { signal });
        source = new Map((once.items || []).map((e) => [key(e), e]));
        schedule();
      } else {
        status.textContent = `Events unavailable: ${err.message}`;
      }
    },
  });
  source = watched.items;
  return el;
}
