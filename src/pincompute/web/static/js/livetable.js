// A table kept current by watch events without redrawing it: one <tr> per object, kept in a
// Map; a change marks its row dirty and the next animation frame rewrites only dirty rows, then
// re-orders the body (moving existing rows) when the set, the filter or the sort may have
// changed. A burst of a thousand events costs one frame, so the page stays responsive while a
// thousand workloads change.

import { h } from "./dom.js";

export class LiveTable {
  constructor({ caption, columns, filter = () => true, sortKey = (o) => o.metadata.name, id }) {
    this.columns = columns;
    this.filter = filter;
    this.sortKey = sortKey;
    this.rows = new Map();     // key -> { obj, tr }
    this.dirty = new Set();
    this.reorder = true;
    this.pending = false;
    this.onFlush = null;
    this.body = h("tbody");
    this.emptyText = h("td", { colspan: columns.length }, "Loading…");
    this.empty = h("tr", { class: "empty" }, this.emptyText);
    this.el = h("div", { class: "table-wrap" }, h("table", { id },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.title)))),
      this.body));
    this.schedule();
  }

  /** The collection has been read (it may be empty): say so instead of "Loading…". */
  loaded() {
    this.emptyText.textContent = "Nothing here yet.";
    this.refilter();
  }

  upsert(key, obj) {
    const row = this.rows.get(key);
    if (row) row.obj = obj; else { this.rows.set(key, { obj, tr: null }); this.reorder = true; }
    this.dirty.add(key);
    this.schedule();
  }

  remove(key) {
    const row = this.rows.get(key);
    if (!row) return;
    row.tr?.remove();
    this.rows.delete(key);
    this.dirty.delete(key);
    this.reorder = true;
    this.schedule();
  }

  replaceAll(entries) {
    for (const row of this.rows.values()) row.tr?.remove();
    this.rows.clear();
    this.dirty.clear();
    for (const [key, obj] of entries) { this.rows.set(key, { obj, tr: null }); this.dirty.add(key); }
    this.reorder = true;
    this.schedule();
  }

  refilter() {
    this.reorder = true;
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => this.flush());
  }

  // A changed row keeps its cells: text is set only where it differs (a status change rewrites
  // one or two cells, and leaves no garbage behind for a thousand rows changing).
  update(row) {
    const cells = row.tr.children;
    this.columns.forEach((c, i) => {
      if (c.stable) return;  // the same for the life of the row (a name, its link)
      const td = cells[i];
      const value = c.cell(row.obj);
      if (value instanceof Node) td.replaceChildren(value);
      else if (td.textContent !== String(value ?? "")) td.textContent = String(value ?? "");
      for (const [name, v] of Object.entries(c.attrs?.(row.obj) || {})) if (td.getAttribute(name) !== String(v)) td.setAttribute(name, v);
    });
  }

  flush() {
    this.pending = false;
    for (const key of this.dirty) {
      const row = this.rows.get(key);
      if (!row) continue;
      if (row.tr) this.update(row);
      else row.tr = h("tr", { "data-key": key }, this.columns.map((c) => h("td", c.attrs?.(row.obj) || {}, c.cell(row.obj))));
      const shown = this.filter(row.obj);
      if (shown !== row.shown || this.sortKey.volatile) this.reorder = true;
    }
    this.dirty.clear();
    if (this.reorder) {
      this.reorder = false;
      const visible = [];
      for (const row of this.rows.values()) {
        row.shown = this.filter(row.obj);
        if (row.shown) visible.push(row);
      }
      const keyed = visible.map((row) => [this.sortKey(row.obj), row]);
      keyed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      this.visible = keyed.length;
      this.body.replaceChildren(...(keyed.length ? keyed.map(([, row]) => row.tr) : [this.empty]));
    }
    this.onFlush?.(this);
  }
}
