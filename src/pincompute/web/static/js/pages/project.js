// A project's self-service page: members and their roles, API tokens (created, shown once,
// revoked), and quota against usage per tier as charts. Members are changed through the
// members routes (project admins), each change answered with the new list.

import { ApiError, del, get, post } from "../api.js";
import { age, announce, confirmAction, field, h, table } from "../dom.js";
import { quotaChart } from "../charts.js";

const ROLES = ["viewer", "editor", "admin"];

export async function render(main, { params, signal }) {
  const name = params.project;
  const path = `projects/${encodeURIComponent(name)}`;
  const membersBox = h("div");
  const quotaBox = h("section", { "aria-labelledby": "quota-h" }, h("h2", { id: "quota-h" }, "Quota and usage"));
  const tokensBox = h("div");
  const result = h("p", { role: "status", class: "result" });
  main.append(h("h1", {}, `Project ${name}`), result,
    h("section", { "aria-labelledby": "members-h" }, h("h2", { id: "members-h" }, "Members"), membersBox),
    h("section", { "aria-labelledby": "tokens-h" }, h("h2", { id: "tokens-h" }, "API tokens"), tokensBox), quotaBox);

  let members = [];
  const change = async (call, what) => {
    try {
      members = (await call()).items || [];
      result.textContent = what;
      result.className = "result";
      drawMembers();
    } catch (err) {
      result.textContent = `Not changed: ${err.message}`;
      result.className = "result error";
    }
  };

  function drawMembers() {
    const user = h("input", { name: "user", required: true, autocomplete: "off" });
    const role = h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r }, r)));
    const form = h("form", { class: "inline-form", "aria-label": "Add a member" },
      field("User", user, { id: "m-user" }), field("Role", role, { id: "m-role" }),
      h("button", { type: "submit" }, "Add member"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const who = user.value.trim();
      change(() => post(`${path}/members`, { user: who, role: role.value }, { signal }), `${who} is now ${role.value}.`);
    });
    membersBox.replaceChildren(table(`Members of ${name}`, ["User", "Role", ""], members.map((m) => h("tr", {},
      h("td", {}, m.user), h("td", {}, m.role || "viewer"),
      h("td", {}, h("button", { type: "button", class: "link", "aria-label": `Remove ${m.user}`, onclick: async () => {
        if (!(await confirmAction(`Remove ${m.user} from ${name}?`, { action: "Remove" }))) return;
        change(async () => { await del(`${path}/members/${encodeURIComponent(m.user)}`, { signal }); return get(`${path}/members`, { signal }); }, `${m.user} removed.`);
      } }, "Remove")))), { id: "members" }), form);
  }

  async function drawQuota() {
    const usage = await get(`${path}/usage`, { signal });
    const tiers = Object.entries(usage.tiers || {});
    const queued = tiers.filter(([, t]) => t.queued).map(([tier, t]) => `${tier} ${t.queued}`);
    quotaBox.replaceChildren(h("h2", { id: "quota-h" }, "Quota and usage"),
      quotaChart(`Usage of ${name} against its quota, per tier`,
        Object.fromEntries(tiers.map(([tier, t]) => [tier, t.quota || {}])),
        Object.fromEntries(tiers.map(([tier, t]) => [tier, t.used || {}]))),
      queued.length ? h("p", {}, `Queued for quota: ${queued.join(", ")}`) : "");
  }

  async function drawTokens() {
    const user = h("input", { name: "user", required: true, autocomplete: "off" });
    const role = h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r }, r)));
    const description = h("input", { name: "description", autocomplete: "off" });
    const shown = h("div", { role: "status" });
    const form = h("form", { class: "inline-form", "aria-label": "Create a token" },
      field("User", user, { id: "t-user" }), field("Role", role, { id: "t-role" }),
      field("Description", description, { id: "t-description" }), h("button", { type: "submit" }, "Create token"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const created = await post("tokens", { user: user.value.trim(), project: name, role: role.value, description: description.value }, { signal });
        shown.replaceChildren(h("p", {}, "The new token (shown once; copy it now):"),
          h("input", { readonly: true, value: created.token, id: "new-token", class: "code", "aria-label": "New token", onfocus: (ev) => ev.target.select() }));
        announce("Token created");
        listTokens();
      } catch (err) {
        shown.replaceChildren(h("p", { class: "error" }, `No token: ${err.message}`));
      }
    });
    const listBox = h("div");
    tokensBox.replaceChildren(listBox, form, shown);
    async function listTokens() {
      try {
        const tokens = ((await get("tokens", { signal })).items || []).filter((t) => t.project === name);
        listBox.replaceChildren(table(`Tokens for ${name}`, ["Id", "User", "Role", "Created", "Expires", "Description", ""],
          tokens.map((t) => h("tr", {}, h("td", {}, t.id), h("td", {}, t.user), h("td", {}, t.role || (t.admin ? "platform admin" : "")),
            h("td", {}, age(t.created)), h("td", {}, t.expires || "never"), h("td", {}, t.description || ""),
            h("td", {}, h("button", { type: "button", class: "link", "aria-label": `Revoke token ${t.id}`, onclick: async () => {
              if (!(await confirmAction(`Revoke token ${t.id} of ${t.user}? Programs using it stop working.`, { action: "Revoke" }))) return;
              try { await del(`tokens/${encodeURIComponent(t.id)}`, { signal }); announce("Token revoked"); } catch (err) { announce(err.message, { error: true }); }
              listTokens();
            } }, "Revoke")))), { id: "tokens" }));
      } catch (err) {
        listBox.replaceChildren(h("p", { class: "muted" }, err instanceof ApiError && err.status === 403
          ? "Only the project's admins see its tokens." : `Tokens unavailable: ${err.message}`));
      }
    }
    listTokens();
  }

  try {
    members = (await get(`${path}/members`, { signal })).items || [];
  } catch (err) {
    if (signal.aborted) return;
    result.textContent = err instanceof ApiError && err.status === 403 ? `You may not see ${name}: ${err.message}` : err.message;
    result.className = "result error";
    return;
  }
  drawMembers();
  drawTokens();
  await drawQuota().catch((err) => quotaBox.append(h("p", { class: "error" }, err.message)));
}
