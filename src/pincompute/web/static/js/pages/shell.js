// A shell in a container: xterm.js (a real terminal emulator) over the gateway's exec websocket.
// Each binary message starts with its channel byte, as Kubernetes' channel.k8s.io: 0 stdin,
// 1 stdout, 2 stderr, 3 status (JSON with the exit code, the last message), 4 resize
// ({"width": cols, "height": rows}). The command is split on spaces, one `command` parameter
// per argument. The socket closes when the user leaves the page (the command is killed).

import { projectPath, socketUrl } from "../api.js";
import { field, h } from "../dom.js";

const STDIN = 0, STDOUT = 1, STDERR = 2, STATUS = 3, RESIZE = 4;
const encoder = new TextEncoder();

function frame(channel, data) {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const out = new Uint8Array(bytes.length + 1);
  out[0] = channel;
  out.set(bytes, 1);
  return out;
}

export async function render(main, { params, query, signal }) {
  const { project, pod } = params;
  const css = h("link", { rel: "stylesheet", href: "/console/vendor/xterm.css" });
  document.head.append(css);
  signal.addEventListener("abort", () => css.remove());
  const [{ Terminal }, { FitAddon }] = await Promise.all([
    import("/console/vendor/xterm.mjs"), import("/console/vendor/addon-fit.mjs")]);

  const containerSel = h("select", { name: "container" });
  const commandInput = h("input", { name: "command", value: query.command || "sh" });
  const status = h("p", { class: "muted", role: "status" }, "Connecting…");
  const screen = h("div", { class: "terminal", id: "terminal", role: "application", "aria-label": `Terminal in ${pod}` });
  const form = h("form", { class: "filters" }, field("Container", containerSel, { id: "sh-container" }),
    field("Command", commandInput, { id: "sh-command" }), h("button", { type: "submit" }, "Reconnect"));
  main.append(h("h1", {}, `Shell in ${pod}`), form, status, screen);

  // The pod's containers come in the address (the workload page's links list them).
  const names = (query.containers || query.container || "").split(",").filter(Boolean);
  for (const c of names) containerSel.append(h("option", { value: c, selected: c === query.container }, c));
  if (!containerSel.options.length) containerSel.append(h("option", { value: "" }, "(the first)"));

  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000,
    theme: { background: "#111418", foreground: "#e8eaed" } });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  fit.fit();

  let ws = null;
  const send = (channel, data) => { if (ws?.readyState === WebSocket.OPEN) ws.send(frame(channel, data)); };
  const resize = () => { fit.fit(); send(RESIZE, JSON.stringify({ width: term.cols, height: term.rows })); };
  const decoder = new TextDecoder();

  function connect() {
    ws?.close(1000);
    status.textContent = "Connecting…";
    const command = (commandInput.value || "sh").trim().split(/\s+/);
    const q = { container: containerSel.value, command, tty: "true" };
    ws = new WebSocket(socketUrl(projectPath(project, "pods", pod, "exec"), q));
    ws.binaryType = "arraybuffer";
    const mine = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true; status.textContent = `Connected to ${pod}${containerSel.value ? ` (${containerSel.value})` : ""}.`;
      resize();
      term.focus();
    };
    ws.onmessage = (msg) => {
      const bytes = typeof msg.data === "string" ? encoder.encode(msg.data) : new Uint8Array(msg.data);
      const channel = bytes[0], data = bytes.subarray(1);
      if (channel === STDOUT || channel === STDERR) term.write(data);
      else if (channel === STATUS) {
        let text = decoder.decode(data);
        try { const s = JSON.parse(text); text = s.exitCode !== undefined ? `exited with code ${s.exitCode}` : s.message || text; } catch { /* plain text */ }
        status.textContent = `The command ${text}.`;
      }
    };
    ws.onclose = (e) => {
      if (mine !== ws || signal.aborted) return;
      if (status.textContent.startsWith("The command")) return;
      status.textContent = e.code >= 4000 ? `Refused (${e.code - 4000}): ${e.reason}`
        : e.reason ? `Closed: ${e.reason}` : opened ? "The connection closed."
          : "The shell could not connect: no such pod or container, or you may not open a shell here (editors may).";
    };
  }

  term.onData((data) => send(STDIN, data));
  const observer = new ResizeObserver(() => resize());
  observer.observe(screen);
  form.addEventListener("submit", (e) => { e.preventDefault(); term.reset(); connect(); });
  signal.addEventListener("abort", () => { observer.disconnect(); ws?.close(1000, "page closed"); term.dispose(); });
  connect();
}
