// Student chat: streamed replies and the front-end contract of the roadmap.
//  - a typing indicator shown for at least TYPING_MIN_MS;
//  - confidence < REPHRASE_BELOW (or needs_rephrase): ask the student to rephrase;
//  - is_confused: a simpler, supportive mode;
//  - no reply event for REPLY_TIMEOUT_MS: offline mode. Every message goes through an
//    outbox in localStorage first and leaves it only once answered, so nothing is lost
//    (not even on reload). Each message has one Idempotency-Key (its outbox `key`, made
//    with crypto.randomUUID()) and one frozen request body, sent unchanged on every
//    resend: if an earlier send reached the server and only its response was lost, the
//    server answers the resend with that first reply and counts the turn once.
import { api, streamPost } from "./api.js";
import { deliver } from "./outbox.js";
import { showError } from "./app.js";
import { getConfig } from "./config.js";
import { clear, h, latestOnly, pct, sleep } from "./dom.js";

export const TYPING_MIN_MS = 800;
export const REPHRASE_BELOW = 0.4;
export const REPLY_TIMEOUT_MS = 10_000;
const RETRY_DELAYS_MS = [2000, 3000, 5000, 8000, 10_000];

const outboxKey = (uid) => `cc.outbox.${uid}`;
const sessionKey = (uid) => `cc.chat.session.${uid}`;

function readOutbox(uid) {
  try {
    return JSON.parse(localStorage.getItem(outboxKey(uid)) || "[]");
  } catch {
    return [];
  }
}

function writeOutbox(uid, items) {
  localStorage.setItem(outboxKey(uid), JSON.stringify(items.map(({ el, ...rest }) => rest)));
}

// Material Design "thumb_up" (Apache-2.0), drawn as SVG: no emoji font needed.
const THUMB = "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z";

function thumbIcon(down) {
  return h(
    "svg:svg",
    { viewBox: "0 0 24 24", width: 16, height: 16, "aria-hidden": "true", class: "icon" },
    h("svg:path", { d: THUMB, transform: down ? "rotate(180 12 12)" : null }),
  );
}

/** The reply's text with its **bold** spans as <strong> (text nodes only, never markup). */
export function richText(text) {
  return text.split(/\*\*([^*\n]+)\*\*/).map((part, i) => (i % 2 ? h("strong", {}, part) : part));
}

export async function chatView(view, { user }) {
  const state = {
    uid: user.uid,
    sessionId: sessionStorage.getItem(sessionKey(user.uid)) || null,
    topics: [],
    queue: readOutbox(user.uid),
    offline: false,
    pumping: false,
    stopped: false,
    wake: null,
  };

  // -- layout ---------------------------------------------------------------------------
  const sessionsList = h("ul", { class: "sessions-list" });
  const history = h(
    "details",
    { class: "history", open: window.matchMedia("(min-width: 60rem)").matches },
    h("summary", {}, "Chat history"),
    h("button", { type: "button", class: "secondary", id: "new-chat", onclick: () => newChat() }, "New chat"),
    sessionsList,
  );
  const offlineBanner = h(
    "div",
    { id: "offline-banner", class: "banner offline", role: "status", hidden: true },
    h("strong", {}, "Offline. "),
    "No reply for 10 seconds. Your message is saved and will be sent as soon as the tutor can be reached.",
    " ",
    h("button", { type: "button", class: "link", onclick: () => state.wake?.() }, "Retry now"),
  );
  const supportiveBanner = h(
    "div",
    { id: "supportive-banner", class: "banner supportive", role: "status", hidden: true },
    h("strong", {}, "Let's slow down. "),
    "We'll go one small step at a time, in simple words. Nothing to worry about: confusion is part of learning.",
    h(
      "div",
      { class: "quick" },
      quick("Explain it more simply", "Can you explain that more simply, step by step?"),
      quick("Give me an example", "Can you show me one small example?"),
    ),
  );
  const log = h("ol", { id: "chat-log", class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const typing = h(
    "div",
    { id: "typing", class: "typing", role: "status", hidden: true },
    h("span", { class: "dots", "aria-hidden": "true" }, h("span", {}), h("span", {}), h("span", {})),
    " The tutor is typing…",
  );
  const input = h("textarea", {
    id: "chat-input",
    name: "message",
    rows: 2,
    maxlength: 4000,
    required: true,
    placeholder: "Ask about a topic, paste an error, or ask for a quiz",
  });
  const topicSelect = h("select", { id: "chat-topic", name: "topic" }, h("option", { value: "" }, "Any topic"));
  const form = h(
    "form",
    { id: "composer", class: "composer", onsubmit: (e) => (e.preventDefault(), submit()) },
    h("label", { for: "chat-input" }, "Your message"),
    input,
    h(
      "div",
      { class: "row" },
      h("label", { for: "chat-topic", class: "inline" }, "Topic"),
      topicSelect,
      h("button", { type: "submit", class: "primary", id: "send" }, "Send"),
    ),
  );
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  const chatPanel = h(
    "section",
    { class: "chat", "aria-labelledby": "chat-title" },
    h("h1", { id: "chat-title" }, "Tutor chat"),
    offlineBanner,
    supportiveBanner,
    log,
    typing,
    form,
  );
  view.append(h("div", { class: "chat-layout" }, h("aside", { class: "sessions", "aria-label": "Sessions" }, history), chatPanel));

  function quick(label, message) {
    return h("button", { type: "button", class: "secondary", onclick: () => enqueue(message) }, label);
  }

  // -- typing indicator: at least TYPING_MIN_MS on screen --------------------------------
  function showTyping() {
    typing.hidden = false;
    const minimum = sleep(TYPING_MIN_MS);
    return minimum;
  }
  function hideTyping() {
    typing.hidden = true;
  }

  // -- modes ---------------------------------------------------------------------------------
  function setOffline(on) {
    state.offline = on;
    offlineBanner.hidden = !on;
    chatPanel.classList.toggle("is-offline", on);
  }
  function setSupportive(on) {
    supportiveBanner.hidden = !on;
    chatPanel.classList.toggle("supportive", on);
  }

  // -- rendering -------------------------------------------------------------------------------
  function userBubble(text, pending) {
    const li = h("li", { class: `msg user${pending ? " pending" : ""}` }, h("p", { class: "text" }, text));
    li.append(h("span", { class: "state" }, pending ? "Waiting to send…" : ""));
    log.append(li);
    li.scrollIntoView({ block: "end" });
    return li;
  }
  function markSent(li) {
    li.classList.remove("pending", "failed");
    li.querySelector(".state").textContent = "";
  }

  function tutorBubble() {
    const li = h("li", { class: "msg tutor" }, h("p", { class: "text" }));
    log.append(li);
    return li;
  }

  function renderReply(li, data, question) {
    clear(li);
    const needsRephrase = data.needs_rephrase || (typeof data.confidence === "number" && data.confidence < REPHRASE_BELOW);
    const text = h("p", { class: "text" }, richText(data.reply ?? ""));
    if (needsRephrase) {
      li.classList.add("rephrase");
      li.append(
        h(
          "div",
          { class: "notice rephrase-ask", role: "note" },
          h("p", {}, "I'm not sure I understood what you need. Could you rephrase it, for example with the topic or what you tried?"),
          h(
            "button",
            {
              type: "button",
              class: "primary",
              onclick: () => {
                input.value = question || "";
                input.focus();
              },
            },
            "Rephrase my question",
          ),
        ),
        h("details", { class: "best-guess" }, h("summary", {}, "My best guess anyway"), text),
      );
    } else {
      li.append(text);
    }
    if (data.sources?.length) {
      li.append(
        h(
          "div",
          { class: "sources" },
          h("h2", { class: "small" }, "Sources"),
          h(
            "ol",
            {},
            data.sources.map((s) =>
              h(
                "li",
                {},
                h(
                  "details",
                  { class: "source" },
                  h("summary", {}, s.title),
                  h("p", {}, s.snippet || ""),
                  s.topic_id
                    ? h("a", { href: `#/practice?topic=${encodeURIComponent(s.topic_id)}` }, "Practise this topic")
                    : null,
                ),
              ),
            ),
          ),
        ),
      );
    }
    if (data.suggestion && data.topic_id) {
      const harder = typeof data.mastery === "number" && data.mastery >= 0.8;
      li.append(
        h(
          "div",
          { class: "suggestion" },
          h("span", {}, data.suggestion),
          " ",
          harder
            ? h("a", { class: "button", href: `#/practice?topic=${encodeURIComponent(data.topic_id)}&level=harder` }, "Try a harder problem")
            : h("button", { type: "button", class: "secondary", onclick: () => review(data.topic_id) }, "Review the basics"),
        ),
      );
    }
    if (data.interaction_id) li.append(thumbs(data.interaction_id));
    const meta = [];
    if (data.intent) meta.push(`${data.intent.replaceAll("_", " ")} · ${pct(data.confidence ?? 0)}`);
    if (data.provider === "offline") meta.push("course-material mode");
    if (meta.length) li.append(h("p", { class: "meta" }, meta.join(" · ")));
  }

  function thumbs(interactionId) {
    const status = h("span", { class: "thanks", role: "status" });
    const rate = async (score, btn, other) => {
      try {
        await deliver(state.uid, "/feedback", { interaction_id: interactionId, score }, {
          onRetry: () => (status.textContent = "Offline: your rating is kept and will be sent again."),
        });
        btn.setAttribute("aria-pressed", "true");
        other.setAttribute("aria-pressed", "false");
        status.textContent = "Thanks for the feedback.";
      } catch (err) {
        showError(err, "Feedback");
      }
    };
    const up = h("button", { type: "button", class: "thumb", "aria-pressed": "false" }, thumbIcon(false), " Helpful");
    const down = h("button", { type: "button", class: "thumb", "aria-pressed": "false" }, thumbIcon(true), " Not helpful");
    up.addEventListener("click", () => rate(1, up, down));
    down.addEventListener("click", () => rate(-1, down, up));
    return h("div", { class: "thumbs", role: "group", "aria-label": "Rate this reply" }, up, down, status);
  }

  async function review(topicId) {
    const li = tutorBubble();
    const shown = showTyping();
    let text = "";
    try {
      const final = await streamPost(
        `${getConfig().streamUrl}/content`,
        { topic_id: topicId, kind: "explanation" },
        {
          onEvent: (event, data) => {
            if (event === "delta") text += data.text;
            if (event === "reset") text = "";
            shown.then(() => {
              hideTyping();
              li.querySelector(".text").textContent = text;
            });
          },
        },
      );
      await shown;
      hideTyping();
      li.querySelector(".text").textContent = final.text;
    } catch (err) {
      await shown;
      hideTyping();
      li.remove();
      showError(err, "Review");
    }
  }

  // -- the outbox and its single worker -----------------------------------------------------
  function submit() {
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    enqueue(text);
  }

  function enqueue(text) {
    const item = {
      key: crypto.randomUUID(),
      text,
      sessionId: state.sessionId,
      topicId: topicSelect.value || null,
      firstSentAt: null,
      attempts: 0,
    };
    item.el = userBubble(text, state.offline);
    state.queue.push(item);
    writeOutbox(state.uid, state.queue);
    pump();
  }

  async function pump() {
    if (state.pumping) return;
    state.pumping = true;
    let failures = 0;
    try {
      while (state.queue.length && !state.stopped) {
        const item = state.queue[0];
        const outcome = await attempt(item);
        if (state.stopped) return;
        if (outcome === "done" || outcome === "dropped") {
          state.queue.shift();
          writeOutbox(state.uid, state.queue);
          failures = 0;
          if (state.offline) setOffline(false);
          continue;
        }
        // "offline": wait, then try again (or sooner: the browser came back online, or "Retry now")
        setOffline(true);
        for (const q of state.queue) q.el?.classList.add("pending");
        const delay = RETRY_DELAYS_MS[Math.min(failures, RETRY_DELAYS_MS.length - 1)];
        failures += 1;
        await new Promise((resolve) => {
          const t = setTimeout(resolve, delay);
          state.wake = () => (clearTimeout(t), resolve());
        });
        state.wake = null;
      }
    } finally {
      state.pumping = false;
    }
  }

  /** One delivery attempt: "done", "dropped" (a refusal shown to the student), or "offline". */
  async function attempt(item) {
    if (!item.body) {
      // Frozen at the first send: the server recognises a resend by its key and the same body.
      const sessionId = item.sessionId || state.sessionId;
      item.body = { message: item.text };
      if (sessionId) item.body.session_id = sessionId;
      if (item.topicId) item.body.topic_id = item.topicId;
    }
    item.attempts += 1;
    item.firstSentAt = item.firstSentAt || new Date().toISOString();
    writeOutbox(state.uid, state.queue);

    const body = item.body;
    const controller = new AbortController();
    let timedOut = false;
    let timer = null;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, REPLY_TIMEOUT_MS);
    };
    arm();
    // While offline, retries do not pretend the tutor is typing: the indicator (and its
    // 800 ms) starts with the first sign of life.
    let shown = state.offline ? null : showTyping();
    let bubble = null;
    let text = "";
    try {
      const final = await streamPost(getConfig().streamUrl, body, {
        idempotencyKey: item.key,
        signal: controller.signal,
        onEvent: (event, data) => {
          arm(); // the timeout is for silence: any event proves the tutor is there
          shown = shown || showTyping();
          if (event === "metadata") adoptSession(data.session_id);
          if (event === "delta") text += data.text;
          if (event === "reset") text = "";
          if (event === "delta" || event === "reset") {
            shown.then(() => {
              if (state.stopped || !text) return;
              hideTyping();
              bubble = bubble || tutorBubble();
              bubble.querySelector(".text").textContent = text;
            });
          }
        },
      });
      clearTimeout(timer);
      await (shown || showTyping());
      hideTyping();
      if (state.stopped) return "offline";
      adoptSession(final.session_id);
      markSent(item.el);
      bubble = bubble || tutorBubble();
      renderReply(bubble, final, item.text);
      setSupportive(Boolean(final.is_confused));
      bubble.scrollIntoView({ block: "nearest" });
      refreshSessions();
      return "done";
    } catch (err) {
      clearTimeout(timer);
      await shown;
      hideTyping();
      bubble?.remove();
      // "still running": the first send of this message is being answered; ask again later.
      if (timedOut || err.network || err.name === "AbortError" || err.code === "idempotency_in_progress") return "offline";
      item.el.classList.add("failed");
      item.el.querySelector(".state").textContent = "Not sent.";
      item.el.append(
        h(
          "button",
          {
            type: "button",
            class: "link",
            onclick: (e) => {
              e.target.remove();
              item.el.remove();
              enqueue(item.text);
            },
          },
          "Try again",
        ),
      );
      showError(err, "Chat");
      return "dropped";
    }
  }

  function adoptSession(id) {
    if (!id || id === state.sessionId) return;
    state.sessionId = id;
    sessionStorage.setItem(sessionKey(state.uid), id);
    for (const q of state.queue) q.sessionId = q.sessionId || id;
  }

  // -- history -----------------------------------------------------------------------------------
  const sessionOpen = latestOnly(); // sessions clicked in turn: the last one's history is drawn
  async function refreshSessions() {
    try {
      const { sessions } = await api("/chat/sessions", { query: { limit: 20 } });
      clear(sessionsList);
      for (const s of sessions) {
        sessionsList.append(
          h(
            "li",
            {},
            h(
              "button",
              {
                type: "button",
                class: "session",
                "aria-current": s.id === state.sessionId ? "true" : null,
                onclick: () => openSession(s.id),
              },
              h("span", { class: "title" }, s.title || "Untitled"),
              h("span", { class: "when" }, new Date(s.last_message_at || s.created_at).toLocaleString()),
            ),
          ),
        );
      }
    } catch (err) {
      showError(err, "History");
    }
  }

  async function openSession(id) {
    const current = sessionOpen();
    try {
      const { messages } = await api(`/chat/sessions/${id}/messages`);
      if (!current()) return; // another session was opened meanwhile: the last click wins
      clear(log);
      adoptSession(id);
      for (const m of messages) {
        if (m.role === "user") userBubble(m.content, false);
        else renderReply(tutorBubble(), { reply: m.content, interaction_id: m.interaction_id }, "");
      }
      for (const q of state.queue) if (q.el) log.append(q.el);
      refreshSessions();
      input.focus();
    } catch (err) {
      if (!current()) return;
      if (err.status === 404 || err.status === 403) newChat(); // a session that is gone, or not ours
      else showError(err, "History");
    }
  }

  function newChat() {
    sessionOpen(); // a session still opening must not replace the new chat
    state.sessionId = null;
    sessionStorage.removeItem(sessionKey(state.uid));
    clear(log);
    setSupportive(false);
    for (const q of state.queue) if (q.el) log.append(q.el);
    refreshSessions();
    input.focus();
  }

  // -- start -------------------------------------------------------------------------------------------
  const online = () => state.wake?.();
  window.addEventListener("online", online);
  api("/chat/topics")
    .then(({ topics }) => {
      state.topics = topics;
      for (const t of topics) topicSelect.append(h("option", { value: t.id }, `${t.course_title}: ${t.title}`));
    })
    .catch((err) => showError(err, "Topics"));
  refreshSessions();
  if (state.sessionId) await openSession(state.sessionId);
  for (const item of state.queue) item.el = item.el || userBubble(item.text, true);
  if (state.queue.length) pump();

  return () => {
    state.stopped = true;
    state.wake?.();
    window.removeEventListener("online", online);
    hideTyping();
  };
}
