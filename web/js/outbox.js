// Writes that must arrive exactly once: grading an answer, rating a reply, reporting a
// task's outcome. (Chat turns have their own outbox in chat.js, on the same principle.)
//
// Each user action becomes one outbox entry in localStorage, with one Idempotency-Key
// made by crypto.randomUUID() and the request body, both fixed when the action is taken.
// Every resend carries the same key and the same body, so when an earlier send reached
// the server and only its response was lost, the server answers the resend with the
// first result and counts the action once (shared/http/idempotency.py). A network
// failure, or "the first send is still running" (409), keeps the entry and retries with
// backoff; a refusal (4xx) drops it and is shown; an expired sign-in (401) keeps it for
// the next sign-in, which resends what is left (`resumeActions`).
import { api } from "./api.js";
import { sleep } from "./dom.js";

const RETRY_DELAYS_MS = [1000, 2000, 3000, 5000, 8000, 10_000];
const storeKey = (uid) => `cc.actions.${uid}`;

export function pendingActions(uid) {
  try {
    return JSON.parse(localStorage.getItem(storeKey(uid)) || "[]");
  } catch {
    return [];
  }
}

function save(uid, entries) {
  localStorage.setItem(storeKey(uid), JSON.stringify(entries));
}

function update(uid, entry) {
  save(uid, pendingActions(uid).map((e) => (e.key === entry.key ? entry : e)));
}

function remove(uid, key) {
  save(uid, pendingActions(uid).filter((e) => e.key !== key));
}

/** Worth sending again with the same key: the network, or the server for a moment. */
function retryable(err) {
  return err.network || err.code === "idempotency_in_progress" || [502, 503, 504].includes(err.status);
}

const inFlight = new Set(); // keys being sent by this page: never two loops for one entry

async function send(uid, entry, onRetry) {
  inFlight.add(entry.key);
  try {
    for (let failures = 0; ; failures += 1) {
      entry.attempts += 1;
      update(uid, entry);
      try {
        const result = await api(entry.path, { method: "POST", body: entry.body, idempotencyKey: entry.key });
        remove(uid, entry.key);
        return result;
      } catch (err) {
        if (err.status === 401) throw err; // kept: resent after the next sign-in
        if (!retryable(err)) {
          remove(uid, entry.key);
          throw err;
        }
        onRetry?.(err, failures);
        await sleep(RETRY_DELAYS_MS[Math.min(failures, RETRY_DELAYS_MS.length - 1)]);
      }
    }
  } finally {
    inFlight.delete(entry.key);
  }
}

/**
 * Take one action: POST `body` to `path` until it arrives; resolves to the answer.
 * `onRetry(err, failures)` is told each time a send failed and another will follow.
 */
export function deliver(uid, path, body, { onRetry } = {}) {
  const entry = { key: crypto.randomUUID(), path, body, createdAt: new Date().toISOString(), attempts: 0 };
  save(uid, [...pendingActions(uid), entry]);
  return send(uid, entry, onRetry);
}

/** Resend the actions a closed tab (or an expired sign-in) left behind. */
export async function resumeActions(uid) {
  for (const entry of pendingActions(uid)) {
    if (inFlight.has(entry.key)) continue;
    try {
      await send(uid, entry);
    } catch (err) {
      console.warn("a saved action could not be sent", entry.path, err.code || err);
    }
  }
}
