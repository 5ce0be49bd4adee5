// Projects the token may see (all of them for a platform admin), live; create a project.
import { ApiError, listInto, post } from "../api.js";
import { age, announce, field, h } from "../dom.js";
import { LiveTable } from "../livetable.js";
import { session } from "../session.js";

export async function render(main, { signal }) {
  const live = new LiveTable({ caption: "Projects you can use", id: "projects", columns: [
    { title: "Name", cell: (p) => h("a", { href: `#/projects/${encodeURIComponent(p.metadata.name)}/workloads`, onclick: () => session.choose(p.metadata.name) }, p.metadata.name) },
    { title: "Description", cell: (p) => p.spec?.displayName || p.spec?.description || "" },
    { title: "Members", cell: (p) => String((p.spec?.members || []).length) },
    { title: "State", cell: (p) => p.status?.phase || "" },
    { title: "Age", cell: (p) => age(p.metadata.creationTimestamp) },
    { title: "", cell: (p) => h("a", { href: `#/projects/${encodeURIComponent(p.metadata.name)}` }, "Members, tokens & quota") },
  ] });
  const name = h("input", { name: "name", required: true, autocomplete: "off", pattern: "[a-z0-9]([-a-z0-9]*[a-z0-9])?" });
  const description = h("input", { name: "description", autocomplete: "off" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card", "aria-labelledby": "new-project-h" },
    h("h2", { id: "new-project-h" }, "Create a project"),
    h("div", { class: "grid" }, field("Name", name, { id: "np-name", hint: "Lower-case letters, digits and dashes." }),
      field("Description", description, { id: "np-description" })), error,
    h("button", { type: "submit", class: "primary" }, "Create project"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      const created = await post("projects", { apiVersion: "pincompute.io/v1alpha1", kind: "Project",
        metadata: { name: name.value.trim() }, spec: description.value.trim() ? { description: description.value.trim() } : {} }, { signal });
      announce(`Project ${created.metadata.name} created`);
      session.projects = [...new Set([...session.projects, created.metadata.name])].sort();
      session.choose(created.metadata.name);
      location.hash = `#/projects/${encodeURIComponent(created.metadata.name)}`;
    } catch (err) {
      const cause = err instanceof ApiError ? err.causes.find((c) => (c.field || "").includes("name")) : null;
      error.textContent = cause ? `Name: ${cause.message}` : err.message;
      name.setAttribute("aria-invalid", cause ? "true" : "false");
    }
  });
  // Projects change rarely and the gateway lists them per caller (no watch): read once.
  main.append(h("h1", {}, "Projects"), live.el, session.isAdmin ? form
    : h("p", { class: "muted" }, "Platform admins create projects; ask one for yours."));
  await listInto("projects", live, { signal }).catch((err) => announce(err.message, { error: true }));
}
