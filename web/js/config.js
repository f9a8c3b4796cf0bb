// The client's configuration: /config.json, fetched at start (no build step, no inline
// script). web/config.json is the deployed one; the local server answers /config.json
// itself with the local values (local/web.py).
let config = null;

export async function loadConfig() {
  const res = await fetch("/config.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`config.json: HTTP ${res.status}`);
  config = await res.json();
  return config;
}

export function getConfig() {
  if (!config) throw new Error("config not loaded");
  return config;
}
