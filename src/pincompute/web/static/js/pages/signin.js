// Sign in with a token: a user's own (`pincompute token create`) or the local region's admin
// token that `pincompute up` prints on its first run.

import { ApiError } from "../api.js";
import { field, h } from "../dom.js";
import { refreshIdentity } from "../main.js";
import { session } from "../session.js";

export async function render(main) {
  const input = h("input", { name: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card narrow", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", {}, "Paste an API token. ", h("code", {}, "pincompute up"),
      " prints the local region's admin token on its first run; ",
      h("code", {}, "pincompute token create"), " makes one for a user."),
    field("Token", input, { id: "signin-token" }), error,
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    session.signIn(input.value);
    try {
      await refreshIdentity();
      const names = session.projects;
      if (names.length && !names.includes(session.project)) session.choose(names[0]);
      location.hash = session.project ? `#/projects/${encodeURIComponent(session.project)}/workloads` : "#/projects";
    } catch (err) {
      session.signOut();
      error.textContent = err instanceof ApiError && err.status === 401
        ? "This token is not valid (expired, revoked or mistyped)." : `Sign-in failed: ${err.message}`;
      input.focus();
    }
  });
  main.append(form);
  input.focus();
}
