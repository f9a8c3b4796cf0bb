// Staff screens: the review queue (keyboard-driven labelling) and the learning loop's
// runs and versions. Hidden from students in the navigation; the server refuses them
// anyway (403, shown with its request id).
import { api } from "./api.js";
import { showError } from "./app.js";
import { clear, h, pct } from "./dom.js";
import { listRuns, listVersions, LEARNING_ENDPOINTS, rollback } from "./learning.js";

function refusal(view, err) {
  view.append(
    h(
      "div",
      { class: "notice refused", id: "refused", role: "alert" },
      h("p", {}, err.status === 403 ? "This screen is for staff only." : "This screen could not be loaded."),
      h("p", { class: "meta" }, err.readable || err.message),
    ),
  );
}

export async function reviewView(view) {
  view.append(h("h1", {}, "Review queue"));
  let items;
  let taxonomy;
  try {
    // The labels the intent model in service accepts (GET /feedback/taxonomy), so the
    // keys follow the model, not a copy of its taxonomy in the client.
    const [queue, served] = await Promise.all([
      api("/feedback/review-queue", { query: { limit: 100 } }),
      api("/feedback/taxonomy"),
    ]);
    items = queue.items;
    taxonomy = [...served.taxonomy.labels];
  } catch (err) {
    refusal(view, err);
    return null;
  }
  const seen = new Set();
  const addLabels = (list) => {
    for (const it of list) {
      seen.add(it.id);
      for (const k of Object.keys(it.intent_probs || {})) if (!taxonomy.includes(k)) taxonomy.push(k);
    }
  };
  addLabels(items);
  let index = 0;
  let labelled = 0;

  const counter = h("p", { id: "queue-count", class: "meta", role: "status" });
  const list = h("ol", { id: "queue", class: "queue", "aria-label": "Queries awaiting a label" });
  const help = h(
    "p",
    { class: "keys" },
    "Keys: ",
    taxonomy.map((t, i) => (i < 9 ? h("kbd", {}, String(i + 1)) : null)),
    " label · ",
    h("kbd", {}, "Enter"),
    " accept the model's guess · ",
    h("kbd", {}, "↓"),
    "/",
    h("kbd", {}, "j"),
    " skip · ",
    h("kbd", {}, "↑"),
    "/",
    h("kbd", {}, "k"),
    " back",
  );
  view.append(help, counter, list);

  function render() {
    clear(list);
    counter.textContent = items.length
      ? `${items.length} waiting · ${labelled} labelled in this session`
      : `The queue is empty · ${labelled} labelled in this session`;
    items.forEach((it, i) => {
      const top = Object.entries(it.intent_probs || {})
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3);
      const current = i === index;
      const li = h(
        "li",
        {
          class: `qitem${current ? " current" : ""}`,
          tabindex: current ? "0" : "-1",
          "aria-current": current ? "true" : null,
          dataset: { id: it.id },
          onfocus: () => {
            if (index !== i) {
              index = i;
              render();
            }
          },
        },
        h("p", { class: "query" }, it.query),
        h(
          "p",
          { class: "meta" },
          `Model: ${it.intent?.replaceAll("_", " ") || "?"} (${pct(it.intent_confidence ?? 0)}) · next: `,
          top
            .slice(1)
            .map(([k, p]) => `${k.replaceAll("_", " ")} ${pct(p)}`)
            .join(", "),
        ),
        current
          ? h(
              "div",
              { class: "labels", role: "group", "aria-label": "Label this query" },
              taxonomy.map((t, n) =>
                h(
                  "button",
                  { type: "button", class: t === it.intent ? "label guess" : "label", onclick: () => label(t) },
                  n < 9 ? h("kbd", {}, String(n + 1)) : null,
                  ` ${t.replaceAll("_", " ")}`,
                ),
              ),
            )
          : null,
      );
      list.append(li);
    });
    const cur = list.children[index];
    if (cur && document.activeElement !== cur && !cur.contains(document.activeElement)) cur.focus({ preventScroll: false });
  }

  const inFlight = new Set(); // ids whose label is on its way: a second key press on one is ignored

  async function label(name) {
    const it = items[index];
    if (!it || inFlight.has(it.id)) return;
    inFlight.add(it.id);
    try {
      await api("/feedback/label", { method: "POST", body: { interaction_id: it.id, label: name } });
      // By identity, not position: the list may have moved on (↓) while the label was sent.
      const at = items.indexOf(it);
      if (at >= 0) {
        items.splice(at, 1);
        if (at < index) index -= 1;
      }
      labelled += 1;
      if (index >= items.length) index = Math.max(0, items.length - 1);
      if (items.length < 5) await more();
      render();
    } catch (err) {
      showError(err, "Label");
    } finally {
      inFlight.delete(it.id);
    }
  }

  async function more() {
    try {
      const fresh = (await api("/feedback/review-queue", { query: { limit: 100 } })).items.filter((x) => !seen.has(x.id));
      addLabels(fresh);
      items.push(...fresh);
    } catch (err) {
      showError(err, "Review queue");
    }
  }

  function onKey(e) {
    if (e.target.closest?.("input, textarea, select") || e.altKey || e.ctrlKey || e.metaKey) return;
    const it = items[index];
    if (/^[1-9]$/.test(e.key) && it) {
      const name = taxonomy[Number(e.key) - 1];
      if (name) {
        e.preventDefault();
        label(name);
      }
    } else if (e.key === "Enter" && it && e.target.tagName !== "BUTTON") {
      e.preventDefault();
      label(it.intent);
    } else if ((e.key === "ArrowDown" || e.key === "j") && index < items.length - 1) {
      e.preventDefault();
      index += 1;
      render();
    } else if ((e.key === "ArrowUp" || e.key === "k") && index > 0) {
      e.preventDefault();
      index -= 1;
      render();
    }
  }
  document.addEventListener("keydown", onKey);
  render();
  return () => document.removeEventListener("keydown", onKey);
}

export async function modelsView(view, { user }) {
  view.append(h("h1", {}, "Models and training runs"));
  if (!user.admin) {
    // The server decides: ask it, and show its refusal.
    try {
      await api("/feedback/review-queue", { query: { limit: 1 } });
    } catch (err) {
      refusal(view, err);
      return;
    }
  }
  const runsBox = h("section", { "aria-labelledby": "runs-h" }, h("h2", { id: "runs-h" }, "Training runs"));
  const versionsBox = h("section", { "aria-labelledby": "versions-h" }, h("h2", { id: "versions-h" }, "Model versions"));
  view.append(runsBox, versionsBox);

  const unavailable = (box, err, what) => {
    if (err.status === 404) {
      box.append(
        h(
          "p",
          { class: "notice not-wired" },
          `${what} are not available on this server yet (the learning-loop routes, ${LEARNING_ENDPOINTS.runs} and ${LEARNING_ENDPOINTS.versions}, are not deployed). `,
          h("span", { class: "meta" }, err.readable),
        ),
      );
    } else {
      box.append(h("p", { class: "error" }, err.readable || err.message));
    }
  };

  try {
    const runs = await listRuns();
    runsBox.append(
      runs.length
        ? h(
            "table",
            { class: "data" },
            h(
              "thead",
              {},
              h("tr", {}, ["Started", "Trigger", "Status", "Gate", "Gate numbers", "Version"].map((c) => h("th", { scope: "col" }, c))),
            ),
            h(
              "tbody",
              {},
              runs.map((r) =>
                h(
                  "tr",
                  {},
                  h("td", {}, r.createdAt ? new Date(r.createdAt).toLocaleString() : ""),
                  h("td", {}, r.trigger),
                  h("td", {}, r.status, r.error ? h("div", { class: "meta" }, r.error) : null),
                  h(
                    "td",
                    {},
                    r.gatePassed === null ? "—" : r.gatePassed ? "passed" : "refused",
                    r.gateReasons.map((x) => h("div", { class: "meta" }, String(x))),
                  ),
                  h("td", {}, h("ul", { class: "nums" }, r.gateNumbers.map(([k, v]) => h("li", {}, `${k}: ${fmt(v)}`)))),
                  h("td", {}, r.producedVersion || "—"),
                ),
              ),
            ),
          )
        : h("p", {}, "No training runs yet."),
    );
  } catch (err) {
    unavailable(runsBox, err, "Training runs");
  }

  async function loadVersions() {
    clear(versionsBox).append(h("h2", { id: "versions-h" }, "Model versions"));
    try {
      const versions = await listVersions();
      versionsBox.append(
        h(
          "table",
          { class: "data" },
          h("thead", {}, h("tr", {}, ["Version", "Status", "Parent", "Metrics", "Activated", ""].map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            {},
            versions.map((v) =>
              h(
                "tr",
                { class: v.current ? "current" : "" },
                h("th", { scope: "row" }, v.version),
                h("td", {}, v.current ? "in service" : v.status),
                h("td", {}, v.parent || "—"),
                h("td", {}, h("ul", { class: "nums" }, v.metrics.map(([k, n]) => h("li", {}, `${k}: ${fmt(n)}`)))),
                h("td", {}, v.activatedAt ? new Date(v.activatedAt).toLocaleString() : "—"),
                h(
                  "td",
                  {},
                  v.current || v.status === "rejected"
                    ? null
                    : h(
                        "button",
                        {
                          type: "button",
                          class: "danger",
                          onclick: async () => {
                            if (!window.confirm(`Put ${v.version} back in service?`)) return;
                            try {
                              await rollback(v.version);
                              await loadVersions();
                            } catch (err) {
                              showError(err, "Rollback");
                            }
                          },
                        },
                        `Roll back to ${v.version}`,
                      ),
                ),
              ),
            ),
          ),
        ),
      );
    } catch (err) {
      unavailable(versionsBox, err, "Model versions");
    }
  }
  await loadVersions();
  return null;
}

const fmt = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(3));
