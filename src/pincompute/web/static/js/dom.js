// Building the page: h() makes elements (text always as text nodes, never parsed as HTML, so
// nothing a user or a workload wrote can inject markup), and the small shared widgets: a
// confirmation dialog, a status announcer, formatters for ages and quantities.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "value") {
      el.value = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

/** Speak (for screen readers) and show a short status line. */
export function announce(message, { error = false } = {}) {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = message;
  el.className = error ? "toast error" : "toast";
  announce.at = Date.now();
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => { el.textContent = ""; el.className = "toast"; }, 6000);
}

/** A navigation clears a status line the previous page showed (one just shown stays). */
export function clearStale() {
  const el = document.getElementById("toast");
  if (el && Date.now() - (announce.at || 0) > 1500) { el.textContent = ""; el.className = "toast"; }
}

/** Ask before something disruptive; resolves true only on an explicit yes. */
export function confirmAction(question, { action = "Confirm" } = {}) {
  return new Promise((resolve) => {
    const yes = h("button", { type: "button", class: "danger" }, action);
    const no = h("button", { type: "button" }, "Cancel");
    const dialog = h("dialog", { "aria-labelledby": "confirm-q", class: "confirm" },
      h("p", { id: "confirm-q" }, question), h("div", { class: "row" }, no, yes));
    const done = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    yes.addEventListener("click", () => done(true));
    no.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", (e) => { e.preventDefault(); done(false); });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

export function age(timestamp, now = Date.now()) {
  if (!timestamp) return "";
  const seconds = Math.max(0, Math.floor((now - Date.parse(timestamp)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

const SUFFIXES = { n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50 };

/** A Kubernetes quantity ("500m", "2Gi", 3) as a number; NaN when it is not one. */
export function quantity(value) {
  if (value === undefined || value === null || value === "") return NaN;
  if (typeof value === "number") return value;
  const match = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$/.exec(String(value).trim());
  if (!match) return NaN;
  const scale = match[2] ? SUFFIXES[match[2]] : 1;
  return scale === undefined ? NaN : Number(match[1]) * scale;
}

export function conditionTrue(obj, type) {
  return (obj?.status?.conditions || []).some((c) => c.type === type && c.status === "True");
}

export function field(label, control, { hint, id } = {}) {
  const errorId = `${id}-error`;
  control.id = id;
  control.setAttribute("aria-describedby", errorId);
  return h("div", { class: "field", "data-field": control.name || id },
    h("label", { for: id }, label), control,
    hint ? h("small", {}, hint) : null,
    h("p", { id: errorId, class: "field-error", role: "alert" }));
}

export function table(caption, headers, rows, { id } = {}) {
  return h("div", { class: "table-wrap" }, h("table", { id },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length }, "None")))));
}
