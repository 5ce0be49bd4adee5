// The project's events timeline, kept live by watches of its workloads: a change to any of
// them re-reads what is new. Five kinds are watched (scalers' events are about their apps),
// leaving one of the browser's six connections per origin for the reads.

import { projectPath, watchList } from "../api.js";
import { h } from "../dom.js";
import { KINDS } from "../kinds.js";
import { timeline } from "../timeline.js";

export async function render(main, { params, signal }) {
  const events = timeline(projectPath(params.project, "events"), { signal, title: "Timeline", limit: 500 });
  main.append(h("h1", {}, `Events in ${params.project}`), events.el);
  for (const kind of KINDS.filter((k) => k.plural !== "pinscalers")) {
    watchList(projectPath(params.project, kind.plural), { signal, onChange: events.refresh });
  }
}
