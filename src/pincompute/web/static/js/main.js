// The console's entry: signs in from the session, draws the navigation, and renders the page
// the address names (router.js), one at a time.

import { get } from "./api.js";
import { announce, clear, clearStale, h } from "./dom.js";
import { parse, route } from "./router.js";
import { session, tokenFromAddress } from "./session.js";

const page = (name) => () => import(`./pages/${name}.js`);

route("/signin", page("signin"));
route("/", page("home"));
route("/projects", page("projects"));
route("/projects/:project", page("project"));
route("/projects/:project/workloads", page("workloads"));
route("/projects/:project/deploy", page("deploy"));
route("/projects/:project/events", page("events"));
route("/projects/:project/workloads/:plural/:name", page("workload"));
route("/projects/:project/workloads/:plural/:name/logs", page("logs"));
route("/projects/:project/pods/:pod/shell", page("shell"));
route("/platform/clusters", page("clusters"));
route("/platform/clusters/:cluster", page("nodes"));
route("/platform/:resource", page("platform"));

let current = null;

/** Who the token stands for (its own record, `/api/v1/tokens/self`): user, platform admin. */
export async function refreshIdentity() {
  const self = await get("tokens/self");
  session.user = self.user;
  session.isAdmin = Boolean(self.admin);
  const projects = await get("projects", { query: { limit: 1000 } }).catch(() => ({ items: [] }));
  session.projects = (projects.items || []).map((p) => p.metadata.name);
}

function projectPicker() {
  const names = session.projects || [];
  if (names.length < 2) return session.project ? h("span", { class: "project-badge" }, "Project: ", h("strong", {}, session.project)) : "";
  const select = h("select", { id: "project-picker", class: "picker" },
    names.map((n) => h("option", { value: n, selected: n === session.project }, n)));
  // The same page of the other project where there is one; its workloads otherwise.
  select.addEventListener("change", () => {
    const page = /^#\/projects\/[^/]+\/(workloads|deploy|events)(?:$|[/?])/.exec(location.hash)?.[1] || "workloads";
    session.choose(select.value);
    location.hash = `#/projects/${encodeURIComponent(select.value)}/${page}`;
  });
  return h("span", { class: "project-badge" }, h("label", { for: "project-picker" }, "Project "), select);
}

function nav() {
  const el = clear(document.getElementById("nav"));
  if (!session.token) return;
  const p = session.project ? encodeURIComponent(session.project) : "";
  const items = [["#/projects", "Projects"]];
  if (p) {
    items.push([`#/projects/${p}/workloads`, "Workloads"], [`#/projects/${p}/deploy`, "Deploy"],
      [`#/projects/${p}/events`, "Events"], [`#/projects/${p}`, "Members & quota"]);
  }
  if (session.isAdmin) {
    items.push(["#/platform/clusters", "Clusters"], ["#/platform/nodepools", "Node pools"],
      ["#/platform/nodeimages", "Node images"], ["#/platform/rotations", "Rotations"],
      ["#/platform/audit", "Audit log"]);
  }
  const here = location.hash.split("?")[0];
  el.append(h("ul", {}, items.map(([href, text]) =>
    h("li", {}, h("a", { href, "aria-current": here === href ? "page" : null }, text)))));
  const who = clear(document.getElementById("who"));
  who.append(
    h("span", {}, session.user, session.isAdmin ? " (platform admin)" : ""),
    projectPicker(),
    h("button", { type: "button", class: "link", onclick: () => { session.signOut(); location.hash = "#/signin"; } }, "Sign out"));
}

async function render() {
  const found = parse(location.hash);
  if (!session.token && found?.path !== "/signin") {
    location.hash = "#/signin";
    return;
  }
  current?.abort();
  current = new AbortController();
  const signal = current.signal;
  const main = clear(document.getElementById("main"));
  clearStale();
  if (found?.params.project && found.params.project !== session.project) session.choose(found.params.project);
  nav();
  if (!found) {
    main.append(h("h1", {}, "Not found"), h("p", {}, "No console page has this address."));
    return;
  }
  try {
    const module = await found.route.load();
    if (signal.aborted) return;
    await module.render(main, { params: found.params, query: found.query, signal });
  } catch (err) {
    if (signal.aborted) return;
    main.append(h("p", { class: "error", role: "alert" }, `Could not show this page: ${err.message}`));
  }
  const heading = main.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · PinCompute`;
  // After a navigation, keyboard and screen-reader users start at the new page's content
  // (unless the page focused a field itself); the first load starts at the skip link.
  if (!firstRender && !main.contains(document.activeElement)) main.focus({ preventScroll: true });
  firstRender = false;
}

let firstRender = true;

session.onExpired = (message) => {
  session.signOut();
  announce(message, { error: true });
  location.hash = "#/signin";
};

window.addEventListener("hashchange", render);
// Close the page's streams before a reload or another site is requested: the browser's six
// connections to the gateway may all be watch streams, and the new page's request would queue
// behind them.
window.addEventListener("beforeunload", () => current?.abort());
// Work a page had in flight when the user left it ends with an AbortError: not a failure.
window.addEventListener("unhandledrejection", (e) => { if (e.reason?.name === "AbortError") e.preventDefault(); });
window.addEventListener("pagehide", () => current?.abort());
window.addEventListener("DOMContentLoaded", async () => {
  // The address's fragment is the page: the skip link focuses the content instead of routing.
  document.querySelector(".skip")?.addEventListener("click", (e) => { e.preventDefault(); document.getElementById("main").focus(); });
  tokenFromAddress();
  // Who the token is only changes the navigation: the page does not wait for it.
  if (session.token) refreshIdentity().then(nav, () => { /* onExpired redirects to sign-in */ });
  await render();
});
