// Deploy: a short form for a PinApp, or YAML pasted or uploaded (any workload kind, several
// documents). Each object is POSTed to its kind's collection; an Invalid answer names fields
// (Status details.causes[].field) and each message is shown on the form field it names.

import { ApiError, post, projectPath } from "../api.js";
import { announce, field, h } from "../dom.js";
import { BY_KIND } from "../kinds.js";

// API field path (prefix) -> form field; the longest matching prefix wins.
const FIELD_OF = [
  ["metadata.name", "name"], ["spec.replicas", "replicas"], ["spec.tier", "tier"],
  ["spec.template.spec.containers[0].image", "image"], ["spec.template.spec.containers[0].command", "command"],
  ["spec.template.spec.containers[0].ports", "ports"],
  ["spec.template.spec.containers[0].resources.requests.cpu", "cpu"],
  ["spec.template.spec.containers[0].resources.requests.memory", "memory"],
];

export function formField(apiField) {
  const f = (apiField || "").replace(/^\./, "");
  let best = null;
  for (const [prefix, name] of FIELD_OF) if (f.startsWith(prefix) && (!best || prefix.length > best[0].length)) best = [prefix, name];
  return best?.[1] || null;
}

function appFrom(values) {
  const container = { name: "main", image: values.image.trim() };
  if (values.command.trim()) container.command = ["sh", "-c", values.command.trim()];
  const ports = values.ports.split(",").map((p) => p.trim()).filter(Boolean);
  if (ports.length) container.ports = ports.map((p) => ({ containerPort: /^\d+$/.test(p) ? Number(p) : p }));
  const requests = {};
  if (values.cpu.trim()) requests.cpu = values.cpu.trim();
  if (values.memory.trim()) requests.memory = values.memory.trim();
  if (Object.keys(requests).length) container.resources = { requests };
  const replicas = /^\d+$/.test(values.replicas.trim()) ? Number(values.replicas) : values.replicas;
  return {
    apiVersion: "pincompute.io/v1alpha1", kind: "PinApp",
    metadata: { name: values.name.trim(), labels: { app: values.name.trim() } },
    spec: { replicas, tier: values.tier, template: { metadata: { labels: { app: values.name.trim() } }, spec: { containers: [container] } } },
  };
}

const refusal = (err, project) => (err.status === 403
  ? `You may not deploy to ${project}: ${err.message}` : err.message);

function showErrors(form, general, err, project) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const leftover = [];
  for (const cause of err.causes || []) {
    const name = formField(cause.field);
    const input = name && form.elements[name];
    if (input) {
      input.setAttribute("aria-invalid", "true");
      document.getElementById(`${input.id}-error`).textContent = cause.message || cause.reason;
    } else leftover.push(`${cause.field || ""}: ${cause.message || ""}`);
  }
  general.textContent = (err.causes?.length ? "The API refused some fields. " : "") + (leftover.length ? leftover.join("; ") : err.causes?.length ? "" : refusal(err, project));
  form.querySelector("[aria-invalid]")?.focus();
}

export async function render(main, { params, signal }) {
  const project = params.project;
  const done = (obj) => {
    announce(`${obj.kind} ${obj.metadata.name} created`);
    const plural = BY_KIND[obj.kind]?.plural || "pinapps";
    location.hash = `#/projects/${encodeURIComponent(project)}/workloads/${plural}/${encodeURIComponent(obj.metadata.name)}`;
  };

  const input = (name, attrs = {}) => h("input", { name, autocomplete: "off", ...attrs });
  const general = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card", "aria-labelledby": "form-h", novalidate: true },
    h("h2", { id: "form-h" }, "An app from a form"),
    h("div", { class: "grid" },
      field("Name", input("name", { required: true, placeholder: "web" }), { id: "f-name" }),
      field("Image", input("image", { required: true, placeholder: "python:3.11-slim" }), { id: "f-image" }),
      field("Command", input("command", { placeholder: "python3 -m http.server 8080" }), { id: "f-command", hint: "Run with sh -c; empty: the image's own." }),
      field("Replicas", input("replicas", { inputmode: "numeric", value: "1" }), { id: "f-replicas" }),
      field("Tier", h("select", { name: "tier" }, ["ondemand", "reserved", "preemptible"].map((t) => h("option", { value: t }, t))), { id: "f-tier" }),
      field("Ports", input("ports", { placeholder: "8080" }), { id: "f-ports", hint: "Comma-separated container ports." }),
      field("CPU request", input("cpu", { placeholder: "100m" }), { id: "f-cpu" }),
      field("Memory request", input("memory", { placeholder: "64Mi" }), { id: "f-memory" })),
    general, h("button", { type: "submit", class: "primary" }, "Deploy app"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = Object.fromEntries(new FormData(form));
    const obj = appFrom(values);
    try {
      done(await post(projectPath(project, "pinapps"), obj, { signal }));
    } catch (err) {
      if (err instanceof ApiError) showErrors(form, general, err, project); else general.textContent = err.message;
    }
  });

  const text = h("textarea", { name: "yaml", rows: 14, spellcheck: "false", class: "code" });
  const file = h("input", { type: "file", name: "file", accept: ".yaml,.yml,.json" });
  file.addEventListener("change", async () => { if (file.files[0]) text.value = await file.files[0].text(); });
  const yamlError = h("div", { class: "error", role: "alert" });
  const yamlForm = h("form", { class: "card", "aria-labelledby": "yaml-h" },
    h("h2", { id: "yaml-h" }, "From YAML"),
    field("Manifest (YAML or JSON; several documents allowed)", text, { id: "f-yaml" }),
    field("Or upload a file", file, { id: "f-file" }), yamlError,
    h("button", { type: "submit", class: "primary" }, "Apply"));
  yamlForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    yamlError.replaceChildren();
    let docs;
    try {
      const yaml = await import("/console/vendor/js-yaml.mjs");
      docs = yaml.loadAll(text.value).filter(Boolean);
    } catch (err) {
      yamlError.textContent = `Not valid YAML: ${err.message}`;
      return;
    }
    let last = null;
    for (const doc of docs) {
      const kind = BY_KIND[doc?.kind];
      const label = `${doc?.kind || "?"} ${doc?.metadata?.name || ""}`;
      if (!kind) { yamlError.append(h("p", {}, `${label}: kind must be one of ${Object.keys(BY_KIND).join(", ")}`)); return; }
      try {
        last = await post(projectPath(project, kind.plural), doc, { signal });
      } catch (err) {
        const causes = (err.causes || []).map((c) => h("li", {}, h("code", {}, c.field || ""), `: ${c.message || c.reason}`));
        yamlError.append(h("p", {}, `${label}: ${refusal(err, project)}`), causes.length ? h("ul", {}, causes) : null);
        return;
      }
    }
    if (last) done(last);
  });

  main.append(h("h1", {}, `Deploy to ${project}`), form, yamlForm);
  form.elements.name.focus();
}
