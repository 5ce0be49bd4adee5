// The start page: the chosen project's workloads, or the project list when none is chosen.
import { session } from "../session.js";

export async function render() {
  location.replace(session.project ? `#/projects/${encodeURIComponent(session.project)}/workloads` : "#/projects");
}
