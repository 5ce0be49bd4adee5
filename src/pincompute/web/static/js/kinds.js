// What the console knows of each workload kind, as a table: its REST plural, its label, how to
// read "ready of desired" and a one-word state from its status, and the operations its page
// offers (DESIGN §10), each with whether it disrupts (then the page asks first).

import { conditionTrue } from "./dom.js";

const queued = (obj) => obj.status?.admission?.state === "Queued" || obj.status?.admission?.state === "Preempted";

function admissionState(obj) {
  const adm = obj.status?.admission;
  if (adm?.state === "Queued") return `Queued${adm.position ? ` #${adm.position}` : ""}`;
  if (adm?.state === "Preempted") return "Preempted";
  return null;
}

export const KINDS = [
  {
    plural: "pinapps", kind: "PinApp", label: "App",
    ready: (o) => [o.status?.readyReplicas || 0, o.spec?.stopped ? 0 : (o.spec?.replicas ?? 1)],
    state: (o) => admissionState(o) || (o.spec?.stopped ? "Stopped" : o.spec?.paused ? "Paused"
      : (o.status?.readyReplicas || 0) >= (o.spec?.replicas ?? 1) ? "Ready" : o.status?.phase || "Progressing"),
    ops: [
      { op: "scale", label: "Scale", input: "replicas" },
      { op: "pause", label: "Pause", when: (o) => !o.spec?.paused },
      { op: "resume", label: "Resume", when: (o) => o.spec?.paused },
      { op: "stop", label: "Stop", disrupts: "Stop every replica of", when: (o) => !o.spec?.stopped },
      { op: "start", label: "Start", when: (o) => o.spec?.stopped },
      { op: "restart", label: "Restart", disrupts: "Restart every replica (rolling) of" },
      { op: "rollback", label: "Roll back", disrupts: "Roll back to the previous revision" },
    ],
    revisions: true, logs: true,
  },
  {
    plural: "pinpods", kind: "PinPod", label: "Pod",
    ready: (o) => [conditionTrue(o, "Ready") ? 1 : 0, 1],
    state: (o) => admissionState(o) || o.status?.phase || "Pending",
    ops: [{ op: "restart-container", label: "Restart container", input: "container",
      disrupts: "Restart a container of" }],
    logs: true,
  },
  {
    plural: "pinjobs", kind: "PinJob", label: "Job",
    ready: (o) => [o.status?.succeeded || 0, o.spec?.completions ?? o.spec?.parallelism ?? 1],
    state: (o) => admissionState(o) || (o.spec?.suspend ? "Suspended" : o.status?.phase || "Pending"),
    ops: [
      { op: "suspend", label: "Suspend", disrupts: "Suspend (its running pods stop)", when: (o) => !o.spec?.suspend },
      { op: "resume", label: "Resume", when: (o) => o.spec?.suspend },
    ],
    logs: true,
  },
  {
    plural: "pintrainingjobs", kind: "PinTrainingJob", label: "Training job",
    ready: (o) => {
      const roles = o.spec?.roles || [];
      const want = roles.reduce((n, r) => n + (r.replicas ?? 1), 0);
      const have = Object.values(o.status?.roles || {}).reduce((n, r) => n + (r.ready || 0), 0);
      return [have, want];
    },
    state: (o) => admissionState(o) || o.status?.phase || "Pending",
    ops: [],
    logs: true,
  },
  {
    plural: "pincronjobs", kind: "PinCronJob", label: "Cron job",
    ready: (o) => [(o.status?.active || []).length, null],
    state: (o) => (o.spec?.suspend ? "Suspended" : `Next ${o.status?.nextScheduleTime ? new Date(o.status.nextScheduleTime).toLocaleTimeString() : "—"}`),
    ops: [{ op: "trigger", label: "Run now" }],
  },
  {
    plural: "pinscalers", kind: "PinScaler", label: "Scaler",
    ready: (o) => [o.status?.currentReplicas ?? 0, o.status?.desiredReplicas ?? null],
    state: (o) => (conditionTrue(o, "AbleToScale") || o.status?.desiredReplicas !== undefined ? "Active" : "Pending"),
    ops: [],
  },
];

export const BY_PLURAL = Object.fromEntries(KINDS.map((k) => [k.plural, k]));
export const BY_KIND = Object.fromEntries(KINDS.map((k) => [k.kind, k]));

export function zones(obj) {
  const set = new Set();
  for (const p of obj.status?.placements || []) if (p.zone) set.add(p.zone);
  if (obj.status?.zone) set.add(obj.status.zone);
  return [...set].sort();
}

export function tier(obj) {
  return obj.spec?.tier || obj.status?.tier || "ondemand";
}

export { queued };
