// Calls to the functions. Every failure becomes an ApiError whose `readable` text names
// the request id, so a student can quote it and staff can find it in the logs.
import { auth } from "./auth.js";
import { getConfig } from "./config.js";

export class ApiError extends Error {
  constructor({ status, code, message, requestId }) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId || null;
  }
  get network() {
    return this.status === 0;
  }
  get readable() {
    return this.requestId ? `${this.message} (request id ${this.requestId})` : this.message;
  }
}

export function newRequestId() {
  return `web-${crypto.randomUUID().replaceAll("-", "")}`;
}

async function toApiError(res, requestId) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const err = body && body.error;
  return new ApiError({
    status: res.status,
    code: err?.code || `http_${res.status}`,
    message: err?.message || `The server answered ${res.status} ${res.statusText || ""}`.trim() + ".",
    requestId: err?.request_id || res.headers.get("X-Request-Id") || requestId,
  });
}

/** A 401 means the sign-in is over (expired or revoked): the app shows the sign-in screen. */
function expired(err) {
  if (err.status === 401) window.dispatchEvent(new CustomEvent("auth:expired", { detail: err }));
  return err;
}

async function headers(requestId, accept, json, idempotencyKey) {
  const out = { Accept: accept, "X-Request-Id": requestId };
  const token = await auth.token();
  if (token) out.Authorization = `Bearer ${token}`;
  if (json) out["Content-Type"] = "application/json";
  // One key per user action, the same on every resend: the server answers a resend with
  // the first result and counts the action once (shared/http/idempotency.py).
  if (idempotencyKey) out["Idempotency-Key"] = idempotencyKey;
  return out;
}

async function send(url, init, requestId) {
  try {
    return await fetch(url, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError({
      status: 0,
      code: "network",
      message: "The server could not be reached; check your connection.",
      requestId,
    });
  }
}

/**
 * JSON request to `<apiBase><path>`; resolves to the parsed body or throws ApiError.
 * `idempotencyKey`: the key of the user action this request (re)sends (see outbox.js).
 */
export async function api(path, { method = "GET", body, query, signal, idempotencyKey } = {}) {
  const url = new URL(getConfig().apiBase + path, location.origin);
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null) url.searchParams.set(k, v);
  const requestId = newRequestId();
  const init = {
    method,
    headers: await headers(requestId, "application/json", body !== undefined, idempotencyKey),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  };
  const res = await send(url, init, requestId);
  if (!res.ok) throw expired(await toApiError(res, requestId));
  return res.json();
}

/**
 * POST and read Server-Sent Events (`metadata`, `delta`, `reset`, `final`, `error`) with
 * fetch streaming (EventSource cannot POST or send a bearer token). A server that answers
 * JSON instead (no streaming) is accepted: its body is delivered as the `final` event
 * (so is a resend the server answers from its stored result: `Idempotent-Replayed`).
 */
export async function streamPost(url, body, { onEvent, signal, idempotencyKey } = {}) {
  const requestId = newRequestId();
  const init = {
    method: "POST",
    headers: await headers(requestId, "text/event-stream", true, idempotencyKey),
    body: JSON.stringify(body),
    signal,
  };
  const res = await send(new URL(url, location.origin), init, requestId);
  if (!res.ok) throw expired(await toApiError(res, requestId));
  if (!(res.headers.get("Content-Type") || "").includes("text/event-stream")) {
    const data = await res.json();
    onEvent?.("final", data);
    return data;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let final = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (!line || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event = text;
          else if (field === "data") data.push(text);
        }
        if (!data.length) continue;
        const parsed = JSON.parse(data.join("\n"));
        if (event === "error") {
          const e = parsed.error || {};
          throw new ApiError({ status: 500, code: e.code, message: e.message, requestId: e.request_id || requestId });
        }
        if (event === "final") final = parsed;
        onEvent?.(event, parsed);
      }
    }
  } catch (err) {
    if (err instanceof ApiError || err.name === "AbortError") throw err;
    throw new ApiError({ status: 0, code: "network", message: "The reply was cut off.", requestId });
  }
  if (!final) {
    throw new ApiError({ status: 0, code: "network", message: "The reply was cut off before it finished.", requestId });
  }
  return final;
}
