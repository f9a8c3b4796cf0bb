// The reference web client: a hash router over a handful of screens. Plain ES modules,
// no build step (docs/web.md says why).
import { auth } from "./auth.js";
import { loadConfig } from "./config.js";
import { clear, h, latestOnly } from "./dom.js";
import { chatView } from "./chat.js";
import { practiceView, progressView } from "./practice.js";
import { signInView } from "./signin.js";
import { resumeActions } from "./outbox.js";
import { modelsView, reviewView } from "./staff.js";

const routes = {
  chat: chatView,
  practice: practiceView,
  progress: progressView,
  "staff-review": reviewView,
  "staff-models": modelsView,
};
const view = document.getElementById("view");
let cleanup = null;
const navigation = latestOnly(); // a screen that finishes loading after a newer one started is dropped

/** Show an error (an ApiError, or any Error) as a readable message with its request id. */
export function showError(err, where = "") {
  const box = document.getElementById("errors");
  if (err?.requestId && [...box.children].some((el) => el.dataset.requestId === err.requestId)) return; // shown
  const text = err?.readable || err?.message || String(err);
  const item = h(
    "div",
    { class: "error", dataset: { code: err?.code || "error", requestId: err?.requestId || "" } },
    h("span", {}, where ? `${where}: ${text}` : text),
    h("button", { type: "button", class: "link", "aria-label": "Dismiss this message", onclick: () => item.remove() }, "Dismiss"),
  );
  box.append(item);
  while (box.children.length > 3) box.firstChild.remove();
}

export function clearErrors() {
  clear(document.getElementById("errors"));
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "") || "chat";
  const [path, qs] = raw.split("?");
  const name = path.replace("/", "-");
  return { name, params: new URLSearchParams(qs || "") };
}

function renderChrome() {
  const user = auth.user;
  document.getElementById("nav").hidden = !user;
  document.getElementById("who").hidden = !user;
  for (const link of document.querySelectorAll("[data-admin]")) link.hidden = !user?.admin;
  if (user) document.getElementById("who-name").textContent = `${user.uid}${user.admin ? " (staff)" : ""}`;
}

/**
 * Show the screen the hash names. Screens load their data before they draw, so a second
 * navigation can start while the first screen still loads: each screen therefore draws
 * into a container of its own, and one that finishes after a newer navigation began is
 * dropped, its listeners removed, instead of being drawn beside the newer screen.
 */
async function route() {
  const current = navigation();
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  clearErrors();
  renderChrome();
  clear(view);
  if (!auth.user) {
    signInView(view, { onSignedIn: () => route() });
    return;
  }
  resumeActions(auth.user.uid); // what an earlier visit could not send (in the background)
  const { name, params } = parseHash();
  const render = routes[name] || routes.chat;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const screen = h("div", { class: "screen" });
  view.append(screen);
  let done = null;
  try {
    done = (await render(screen, { params, user: auth.user })) || null;
  } catch (err) {
    if (current()) showError(err);
  }
  if (!current()) {
    done?.(); // left while it loaded: its container is already out of the page
    return;
  }
  cleanup = done;
  const heading = screen.querySelector("h1");
  (heading || view).setAttribute("tabindex", "-1");
  (heading || view).focus({ preventScroll: true });
}

async function start() {
  try {
    await loadConfig();
  } catch (err) {
    clear(view).append(h("p", { class: "error" }, `The app could not load its configuration: ${err.message}`));
    return;
  }
  document.getElementById("sign-out").addEventListener("click", () => {
    auth.signOut();
    location.hash = "#/chat";
    route();
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("auth:expired", async (e) => {
    auth.signOut();
    await route();
    showError(e.detail, "Please sign in again");
  });
  route();
}

start();
