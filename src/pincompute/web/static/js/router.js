// Pages by address: the URL fragment is the page (`#/projects/demo/workloads`), so every view
// has a deep link that survives a reload. A route table maps patterns to page modules; each
// page gets an AbortSignal that fires when the user leaves it, which closes its watch streams,
// log streams and websockets (a page never leaks a connection to the next).

const routes = [];

export function route(pattern, load) {
  const names = [];
  const regex = new RegExp("^" + pattern.replace(/:(\w+)/g, (_, n) => { names.push(n); return "([^/]+)"; }) + "$");
  routes.push({ regex, names, load });
}

export function parse(hash) {
  const raw = hash.replace(/^#/, "") || "/";
  const [path, qs = ""] = raw.split("?");
  for (const r of routes) {
    const m = r.regex.exec(path);
    if (!m) continue;
    const params = {};
    r.names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
    return { route: r, params, query: Object.fromEntries(new URLSearchParams(qs)), path };
  }
  return null;
}

export function go(path) {
  location.hash = path;
}

export function href(...parts) {
  return "#/" + parts.map((p) => encodeURIComponent(p)).join("/");
}
