// Sign-in. Two modes, chosen by /config.json:
//  - "firebase": Firebase Auth email/password through its REST API (the same calls the
//    Firebase SDK makes, without the SDK: no bundler, nothing from a CDN, a strict CSP).
//    Locally point `identityUrl`/`tokenUrl` at the Auth emulator
//    (http://127.0.0.1:9099/identitytoolkit.googleapis.com ...).
//  - "dev": the local stack's POST /api/dev/token, which mints an emulator token. Only
//    the local server offers it (and only in COGNITIVE_ENV=local); it does not exist in
//    a cloud build, whose config.json always says "firebase".
import { getConfig } from "./config.js";

const KEY = "cc.session";
let session = load();
const listeners = new Set();

function load() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || "null");
    return s && s.expiresAt > Date.now() ? s : null;
  } catch {
    return null;
  }
}

function save(s) {
  session = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
  for (const fn of listeners) fn(s);
}

export function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return {};
  }
}

function fromToken(token, refreshToken = null) {
  const c = claims(token);
  return {
    token,
    refreshToken,
    uid: c.user_id || c.sub,
    email: c.email || null,
    // The UI hides staff screens from students; the server refuses them anyway.
    admin: c.role === "admin" || c.admin === true,
    expiresAt: (c.exp || 0) * 1000,
  };
}

async function postJson(url, body) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = data.error || {};
    const e = new Error(err.message || `Sign-in failed (HTTP ${res.status}).`);
    e.requestId = err.request_id || res.headers.get("X-Request-Id");
    throw e;
  }
  return data;
}

export const auth = {
  get user() {
    return session;
  },
  mode() {
    return getConfig().auth?.mode || "firebase";
  },
  onChange(fn) {
    listeners.add(fn);
  },
  async devSignIn(uid, admin) {
    const data = await postJson(`${getConfig().apiBase}/dev/token`, { uid, admin });
    save(fromToken(data.token));
  },
  async firebaseSignIn(email, password) {
    const a = getConfig().auth;
    const url = `${a.identityUrl}/v1/accounts:signInWithPassword?key=${encodeURIComponent(a.apiKey)}`;
    const data = await postJson(url, { email, password, returnSecureToken: true });
    save(fromToken(data.idToken, data.refreshToken));
  },
  async token() {
    if (!session) return null;
    if (session.expiresAt - Date.now() < 60_000 && session.refreshToken) {
      const a = getConfig().auth;
      const url = `${a.tokenUrl}/v1/token?key=${encodeURIComponent(a.apiKey)}`;
      try {
        const data = await postJson(url, { grant_type: "refresh_token", refresh_token: session.refreshToken });
        save(fromToken(data.id_token, data.refresh_token));
      } catch {
        save(null);
        return null;
      }
    }
    return session.token;
  },
  signOut() {
    save(null);
  },
};
