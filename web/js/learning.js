// Learning-loop client: training runs, model versions and rollback, for the staff
// "Models" screen (staff.js renders whatever this module returns).
//
// Wired to the feedback function's operator routes (functions/feedback/main.py,
// shared/learning/operators.py); the contract below is what they return.
//
// Contract (admin only; fields follow the training_runs / model_versions tables):
//   GET  runs      -> {runs: [{id, trigger, status, created_at, started_at, finished_at,
//                              produced_version, error, metrics: {...}, gate: {passed,
//                              reasons: [..], <numbers>...}}]}
//   GET  versions  -> {current: "vN", versions: [{version, parent_version, status,
//                              metrics: {...}, created_at, activated_at}]}
//   POST rollback  {version} -> {current: "vN", previous: "vM"}
import { api } from "./api.js";

export const LEARNING_ENDPOINTS = {
  runs: "/feedback/training-runs",
  versions: "/feedback/model-versions",
  rollback: "/feedback/model-versions/rollback",
};

/** Flatten the numbers of a nested object into [["a.b", 0.93], ...] (gate and metrics). */
export function numbers(obj, prefix = "", depth = 0, out = []) {
  if (!obj || typeof obj !== "object" || depth > 3) return out;
  for (const [key, value] of Object.entries(obj)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (typeof value === "number") out.push([name, value]);
    else if (value && typeof value === "object" && !Array.isArray(value)) numbers(value, name, depth + 1, out);
  }
  return out;
}

function normaliseRun(raw) {
  const gate = raw.gate || null;
  return {
    id: raw.id,
    trigger: raw.trigger || "",
    status: raw.status || "",
    createdAt: raw.created_at || null,
    finishedAt: raw.finished_at || null,
    producedVersion: raw.produced_version || null,
    error: raw.error || null,
    gatePassed: gate ? (gate.passed ?? (gate.decision ? gate.decision === "pass" : null)) : null,
    gateReasons: gate?.reasons || [],
    gateNumbers: numbers(gate),
  };
}

function normaliseVersion(raw, current) {
  return {
    version: raw.version,
    parent: raw.parent_version || null,
    status: raw.status || "",
    current: raw.version === current || raw.status === "current",
    createdAt: raw.created_at || null,
    activatedAt: raw.activated_at || null,
    metrics: numbers(raw.metrics).slice(0, 8),
  };
}

export async function listRuns() {
  const data = await api(LEARNING_ENDPOINTS.runs, { query: { limit: 50 } });
  return (data.runs || []).map(normaliseRun);
}

export async function listVersions() {
  const data = await api(LEARNING_ENDPOINTS.versions);
  return (data.versions || []).map((v) => normaliseVersion(v, data.current));
}

export async function rollback(version) {
  return api(LEARNING_ENDPOINTS.rollback, { method: "POST", body: { version } });
}
