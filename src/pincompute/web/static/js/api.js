// The console's only way to the region: the gateway's public REST API (DESIGN §10) with the
// signed-in user's bearer token, from the browser. Three shapes of call:
//   request()  one JSON call; a non-2xx answer throws ApiError carrying the Status body (its
//              message, and the fields an Invalid answer names, for the form to mark);
//   lines()    a streamed answer read line by line (logs, `?watch=true` newline-delimited JSON);
//   watchList() a collection kept current from one watch stream (resumed from the newest
//              version seen when it ends, relisted on 410 Gone); the caller gets a Map and a
//              callback per change.
// Websockets (exec) cannot carry an Authorization header from a browser: the token goes in the
// `access_token` query parameter over the same origin, which the gateway accepts for websockets.

import { session } from "./session.js";

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.reason = body?.reason || "";
    this.causes = body?.details?.causes || [];
  }
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  if (session.token) h.Authorization = `Bearer ${session.token}`;
  return h;
}

export function url(path, query = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (Array.isArray(v)) for (const item of v) params.append(k, item);
    else if (v !== undefined && v !== null && v !== "") params.set(k, v);
  }
  const qs = params.toString();
  return (path.startsWith("/") ? path : `${API}/${path}`) + (qs ? `?${qs}` : "");
}

async function failure(response) {
  let body = null;
  try { body = await response.json(); } catch { body = { message: response.statusText }; }
  if (response.status === 401) session.expired(body?.message || "Your token was refused.");
  return new ApiError(response.status, body);
}

export async function request(method, path, { body, query, signal, contentType } = {}) {
  const init = { method, headers: headers(), signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = contentType || "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(url(path, query), init);
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, opts) => request("GET", path, opts);
export const post = (path, body, opts = {}) => request("POST", path, { ...opts, body });
export const patch = (path, body, opts = {}) =>
  request("PATCH", path, { ...opts, body, contentType: "application/merge-patch+json" });
export const del = (path, opts) => request("DELETE", path, opts);

/**
 * A collection the gateway lists but does not watch (projects, clusters, node pools, nodes):
 * read once into `table` (a LiveTable); `refresh()` reads it again (after a change made here).
 */
export async function listInto(path, table, { signal, query } = {}) {
  const { items } = await getAll(path, { signal, query });
  table.replaceAll(items.map((o) => [key(o), o]));
  table.loaded();
  return items;
}

/** A whole collection: the gateway pages lists (`limit`, `continue`); follow every page. */
export async function getAll(path, { signal, query = {} } = {}) {
  const items = [];
  let list = null;
  let next = "";
  do {
    list = await get(path, { signal, query: { ...query, limit: 1000, continue: next || undefined } });
    items.push(...(list.items || []));
    const token = list.metadata?.continue || "";
    next = token && token !== next ? token : "";  // a route that ignores `continue` ends here
  } while (next);
  return { items, metadata: list.metadata || {} };
}

/** Call onLine for every line of a streamed answer until it ends or the signal aborts. */
export async function lines(path, { query, signal, onLine, onOpen }) {
  const response = await fetch(url(path, query), { headers: headers({ Accept: "*/*" }), signal });
  if (!response.ok) throw await failure(response);
  performance.mark(`stream-open ${path}`);  // for benchmarks/console.py's breakdown
  onOpen?.();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const parts = (rest + value).split("\n");
      rest = parts.pop();
      for (const part of parts) onLine(part);
    }
    if (rest) onLine(rest);
  } catch (err) {
    reader.cancel().catch(() => {});  // frees the connection (browsers allow six per origin)
    throw err;
  }
}

export const key = (obj) => obj.metadata.uid || `${obj.metadata.namespace}/${obj.metadata.name}`;

const newer = (a, b) => (!a ? b : /^\d+$/.test(a) && /^\d+$/.test(b) ? (BigInt(b) > BigInt(a) ? b : a) : b);

/**
 * Keep `items` (a Map key -> object) equal to the collection at `path`; onChange(type, obj) is
 * called for each change ("reset" after a relist), onOpen() when a stream is accepted. Stops
 * when `signal` aborts.
 *
 * The first request is a watch without a resourceVersion: the gateway serves it from its
 * informer, replaying the collection as ADDED events and then streaming changes, so a page
 * gets its first rows after one round trip. When a stream ends the watch resumes from the
 * newest version seen; a version too old for the store's history (410) relists.
 */
export function watchList(path, { query = {}, signal, onChange, onError, onOpen }) {
  const items = new Map();
  let version = "";
  const relist = async () => {
    const list = await getAll(path, { query, signal });
    items.clear();
    for (const obj of list.items) items.set(key(obj), obj);
    version = list.metadata?.resourceVersion || "";
    onChange("reset", null);
  };
  const follow = () => lines(path, {
    query: { ...query, watch: "true", resourceVersion: version || undefined },
    signal,
    onOpen,
    onLine(line) {
      if (!line.trim()) return;
      const event = JSON.parse(line);
      if (event.type === "ERROR") throw new ApiError(event.object?.code || 500, event.object);
      const obj = event.object;
      if (obj?.metadata?.resourceVersion) version = newer(version, obj.metadata.resourceVersion);
      if (event.type === "BOOKMARK") return;
      if (event.type === "DELETED") items.delete(key(obj));
      else items.set(key(obj), obj);
      onChange(event.type, obj);
    },
  });
  const run = async () => {
    let backoff = 250;
    let needList = false;
    while (!signal.aborted) {
      try {
        if (needList) { needList = false; await relist(); }
        const started = Date.now();
        await follow();
        if (Date.now() - started < 1000) await new Promise((r) => setTimeout(r, backoff));
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.status === 410) { needList = true; continue; }
        onError?.(err);
        if (err instanceof ApiError && err.status < 500 && err.status !== 429) return;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  };
  const done = run();
  return { items, done };
}

export function socketUrl(path, query = {}) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${url(path, { ...query, access_token: session.token })}`;
}

export const projectPath = (project, ...rest) =>
  [`projects/${encodeURIComponent(project)}`, ...rest.map(encodeURIComponent)].join("/");
