// Student practice (predicted chance and time before each question, MCQ and short
// answers graded with feedback) and progress (mastery per topic, drawn as a chart).
import { api } from "./api.js";
import { showError } from "./app.js";
import { clear, h, latestOnly, pct, seconds } from "./dom.js";
import { deliver } from "./outbox.js";

export async function practiceView(view, { params, user }) {
  const { topics } = await api("/chat/topics");
  const select = h(
    "select",
    { id: "practice-topic", name: "topic" },
    h("option", { value: "" }, "Choose a topic…"),
    topics.map((t) => h("option", { value: t.id }, `${t.course_title}: ${t.title}`)),
  );
  const list = h("div", { id: "questions", class: "questions", "aria-live": "polite" });
  const work = h("section", { id: "question-area", "aria-live": "polite" });
  view.append(
    h("h1", {}, "Practice"),
    h("div", { class: "row" }, h("label", { for: "practice-topic", class: "inline" }, "Topic"), select),
    list,
    work,
  );
  const harder = params.get("level") === "harder";
  // A topic changed again (arrow keys on the select fire a change per option) or a second
  // question opened before the first one's prediction came: only the latest is drawn.
  const questionsLoad = latestOnly();
  const questionOpen = latestOnly();

  async function loadQuestions() {
    const current = questionsLoad();
    questionOpen(); // a question still opening belongs to the topic being left
    clear(list);
    clear(work);
    if (!select.value) return;
    try {
      const data = await api("/prediction/questions", { query: { topic_id: select.value, predict: "true" } });
      if (!current()) return;
      const items = [...data.questions].sort((a, b) => (harder ? b.difficulty - a.difficulty : a.difficulty - b.difficulty));
      if (harder) list.append(h("p", { class: "notice" }, "Harder problems first, as the tutor suggested."));
      if (!items.length) list.append(h("p", {}, "No questions for this topic yet."));
      list.append(
        h(
          "ul",
          { class: "question-list" },
          items.map((q) =>
            h(
              "li",
              { class: "qcard" },
              h("p", { class: "prompt" }, q.prompt),
              h(
                "p",
                { class: "meta" },
                `Difficulty ${q.difficulty}/5 · ${q.kind === "mcq" ? "multiple choice" : "short answer"}`,
                q.prediction ? ` · chance of success ${pct(q.prediction.p_correct)} · ${seconds(q.prediction.expected_seconds)}` : "",
              ),
              h("button", { type: "button", class: "secondary", onclick: () => start(q) }, "Answer this question"),
            ),
          ),
        ),
      );
    } catch (err) {
      if (current()) showError(err, "Questions");
    }
  }

  async function start(question) {
    const current = questionOpen();
    clear(work);
    let predicted;
    try {
      predicted = await api("/prediction", { method: "POST", body: { question_id: question.id } });
    } catch (err) {
      if (current()) showError(err, "Prediction");
      return;
    }
    if (!current()) return;
    const startedAt = performance.now();
    const answerField =
      question.kind === "mcq"
        ? h(
            "fieldset",
            { class: "options" },
            h("legend", {}, "Choose one answer"),
            question.options.map((opt, i) =>
              h("label", { class: "option" }, h("input", { type: "radio", name: "answer", value: String(i), required: true }), ` ${opt}`),
            ),
          )
        : h(
            "div",
            {},
            h("label", { for: "short-answer" }, "Your answer"),
            h("textarea", { id: "short-answer", name: "answer", rows: 4, required: true, maxlength: 4000 }),
          );
    const result = h("div", { id: "grade-result", role: "status" });
    const form = h(
      "form",
      {
        id: "answer-form",
        onsubmit: async (e) => {
          e.preventDefault();
          const fd = new FormData(form);
          const raw = fd.get("answer");
          const answer = question.kind === "mcq" ? Number(raw) : String(raw || "").trim();
          if (answer === "" || answer === null) return;
          submit.disabled = true;
          try {
            // Through the outbox: one Idempotency-Key for this answer, resent until it arrives.
            const body = {
              question_id: question.id,
              answer,
              attempt_id: predicted.attempt_id,
              time_seconds: Math.round((performance.now() - startedAt) / 100) / 10,
            };
            const graded = await deliver(user.uid, "/grading", body, {
              onRetry: () => {
                clear(result);
                result.className = "grade pending";
                result.append(h("p", {}, "Offline: your answer is kept and will be sent again."));
              },
            });
            showGrade(result, graded, predicted);
          } catch (err) {
            submit.disabled = false;
            showError(err, "Grading");
          }
        },
      },
      answerField,
    );
    const submit = h("button", { type: "submit", class: "primary" }, "Submit answer");
    form.append(submit);
    work.append(
      h(
        "article",
        { class: "card", "aria-labelledby": "q-title" },
        h("h2", { id: "q-title" }, "Question"),
        h(
          "p",
          { class: "prediction", id: "prediction" },
          `Your predicted chance of success: ${pct(predicted.p_correct)} · expected time ${seconds(predicted.expected_seconds)}`,
        ),
        h("p", { class: "prompt" }, question.prompt),
        form,
        result,
      ),
    );
    form.querySelector("input, textarea")?.focus();
  }

  select.addEventListener("change", loadQuestions);
  const wanted = params.get("topic");
  if (wanted && topics.some((t) => t.id === wanted)) {
    select.value = wanted;
    await loadQuestions();
  }
}

function showGrade(box, graded, predicted) {
  clear(box);
  const verdict = (graded.verdict || (graded.correct ? "correct" : "incorrect")).replaceAll("_", " ");
  box.className = `grade ${graded.correct ? "good" : graded.score > 0 ? "partial" : "bad"}`;
  box.append(
    h("p", { class: "score" }, h("strong", {}, `${graded.score} / ${graded.max_score}`), ` · ${verdict}`),
    h("p", {}, graded.feedback || ""),
    h(
      "p",
      { class: "meta" },
      `Predicted ${pct(predicted.p_correct)}. Mastery of this topic is now ${pct(graded.mastery ?? 0)}. `,
      h("a", { href: "#/progress" }, "See your progress"),
    ),
  );
}

export async function progressView(view) {
  const { mastery } = await api("/prediction/mastery");
  view.append(h("h1", {}, "Progress"), h("p", { class: "muted" }, "Mastery per topic (Bayesian Knowledge Tracing): 40% and 80% mark the bands."));
  view.append(masteryChart(mastery));
  view.append(
    h(
      "details",
      { class: "table-alt" },
      h("summary", {}, "The same as a table"),
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Topic"), h("th", { scope: "col" }, "Mastery"), h("th", { scope: "col" }, "Tasks"))),
        h(
          "tbody",
          {},
          mastery.map((m) =>
            h("tr", {}, h("th", { scope: "row" }, m.title), h("td", {}, pct(m.p_mastery)), h("td", {}, `${m.tasks_correct}/${m.tasks_completed}`)),
          ),
        ),
      ),
    ),
  );
}

/** Horizontal bars, one per topic, in SVG (no library, nothing inline for the CSP). */
export function masteryChart(rows) {
  const rowH = 28;
  const labelW = 170;
  const barW = 260;
  const width = labelW + barW + 56;
  const height = rows.length * rowH + 24;
  const svg = h("svg:svg", {
    id: "mastery-chart",
    class: "chart",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `Mastery per topic: ${rows.map((r) => `${r.title} ${pct(r.p_mastery)}`).join(", ")}`,
  });
  rows.forEach((r, i) => {
    const y = i * rowH + 4;
    const band = r.p_mastery >= 0.8 ? "high" : r.p_mastery < 0.4 ? "low" : "mid";
    const title = r.title.length > 24 ? `${r.title.slice(0, 23)}…` : r.title;
    svg.append(
      h("svg:text", { x: labelW - 8, y: y + 15, class: "label", "text-anchor": "end" }, title),
      h("svg:rect", { x: labelW, y, width: barW, height: 18, class: "track", rx: 3 }),
      h("svg:rect", { x: labelW, y, width: Math.max(2, r.p_mastery * barW), height: 18, class: `bar ${band}`, rx: 3 }),
      h("svg:text", { x: labelW + barW + 6, y: y + 15, class: "value" }, pct(r.p_mastery)),
    );
  });
  for (const mark of [0.4, 0.8]) {
    const x = labelW + mark * barW;
    svg.append(h("svg:line", { x1: x, x2: x, y1: 0, y2: height - 20, class: "band" }));
    svg.append(h("svg:text", { x, y: height - 6, class: "axis", "text-anchor": "middle" }, pct(mark)));
  }
  return h("figure", { class: "chart-wrap" }, svg);
}
