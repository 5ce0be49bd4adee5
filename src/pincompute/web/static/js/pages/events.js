// The project's events timeline, live.
import { projectPath } from "../api.js";
import { h } from "../dom.js";
import { timeline } from "../timeline.js";

export async function render(main, { params, signal }) {
  main.append(h("h1", {}, `Events in ${params.project}`),
    timeline(projectPath(params.project, "events"), { signal, title: "Timeline", limit: 500 }));
}
