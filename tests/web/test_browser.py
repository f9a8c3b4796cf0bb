"""The web client in a real browser: Playwright for Python driving headless Chromium
against the local stack (`python -m local serve`) started by this module.

Debian's `chromium` is used (Playwright cannot download its own browser here). Without
it these tests skip with the reason, except in CI (`CI` set), where they fail: the
browser is installed by `make test` (scripts/install_system_packages.sh).

Screenshots of the main screens go to `.state/screenshots/` (git-ignored).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import pytest
import requests

from local.launcher import start_stack
from local.tokens import mint_emulator_token
from tests.needs import missing

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / ".state" / "screenshots"
PROJECT = "demo-web-e2e"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.e2e

# Messages the intent model is unsure about / that read as confused; the test asks the
# server which of them behave so before using one (the models can be retrained).
REPHRASE_CANDIDATES = ["sql", "python list thing", "the thing with the for", "recursion stuff maybe", "graphs"]
CONFUSED_CANDIDATES = ["what", "idk", "huh?? i'm lost", "i don't get it at all", "what??"]


def _missing(reason: str):
    missing(f"{reason}; `make test` installs chromium as root")


def _chromium() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("Playwright for Python is not installed (pip install -r requirements-dev.txt)")
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        _missing("Chromium is not installed (Debian: apt-get install -y chromium)")
    return path


@pytest.fixture(scope="module")
def browser():
    path = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def running_stack(browser, server_dir):
    """The local stack in the local environment (dev sign-in on), private state folder."""
    state = server_dir("web-state")
    env = {
        "COGNITIVE_ENV": "local",
        "COGNITIVE_ENV_FILE": str(state / "no.env"),
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
        "MODEL_STORE_URI": os.environ.get("MODEL_STORE_URI", str(REPO / ".state" / "models")),
    }
    with start_stack(state, env, health_timeout_s=150) as running:
        SHOTS.mkdir(parents=True, exist_ok=True)
        yield running


@pytest.fixture(scope="module")
def stack(running_stack) -> str:
    """The running stack's base URL."""
    return running_stack.base


@pytest.fixture()
def page(request, browser, running_stack):
    """A fresh browser context per test; any Content-Security-Policy violation fails it.
    When the test fails, what the page showed and what the stack logged are printed with
    the failure (a flaky run in CI leaves nothing else to read)."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    problems: list[str] = []
    traffic: list[str] = []
    pg.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("requestfinished", lambda r: traffic.append(f"{_now()} {r.method} {r.url} -> {_status(r)}"))
    pg.on("requestfailed", lambda r: traffic.append(f"{_now()} {r.method} {r.url} failed: {r.failure}"))
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        _print_failure_context(pg, traffic, running_stack, request.node.name)
    context.close()
    assert not problems, problems


def _now() -> str:
    return time.strftime("%H:%M:%S")


def _status(req) -> str:
    try:
        res = req.response()
    except Exception as exc:  # noqa: BLE001 - a diagnostic must not fail the teardown
        return f"? ({exc})"
    return str(res.status) if res is not None else "no response"


def _print_failure_context(pg, traffic: list[str], running, name: str) -> None:
    """What the page showed (URL, error box, visible text, a screenshot), the browser's
    requests, and the stack's log tail; printed, so pytest shows it with the failure."""
    print(f"--- {name}: the page at {_now()}: {pg.url}")
    try:
        print("errors box:", pg.locator("#errors").inner_text(timeout=2_000) or "(empty)")
        print("view:", pg.locator("#view").inner_text(timeout=2_000)[:1500])
        pg.screenshot(path=str(SHOTS / f"failed-{name}.png"), full_page=True, timeout=5_000)
    except Exception as exc:  # noqa: BLE001
        print("the page could not be read:", exc)
    print("--- the browser's requests:", *traffic[-40:], sep="\n")
    print("--- the stack's log:", running.log_tail(8000), sep="\n")


def headers(uid: str, admin: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_emulator_token(uid, PROJECT, admin=admin)}"}


def sign_in(page, base: str, uid: str, admin: bool = False) -> None:
    page.goto(f"{base}/")
    page.get_by_label("User id").fill(uid)
    if admin:
        page.get_by_label("Staff (admin claim)").check()
    page.get_by_role("button", name="Sign in").click()
    page.locator("#chat-input").wait_for()


def nav(page):
    return page.get_by_role("navigation", name="Main")


def open_screen(page, link: str, heading: str) -> None:
    """Follow a main-navigation link and wait for the new screen's heading. Without the
    wait a test can act on the screen it is leaving: the router swaps the view on the
    `hashchange` after the click, and the chat screen has a "Topic" select of its own (a
    Practice test once chose its topic there, and its questions never came)."""
    nav(page).get_by_role("link", name=link).click()
    page.get_by_role("heading", name=heading, exact=True).wait_for()


def send(page, text: str) -> None:
    page.get_by_label("Your message").fill(text)
    page.get_by_role("button", name="Send").click()


def probe(base: str, candidates: list[str], want) -> str:
    """The first message for which the server's reply satisfies `want`."""
    seen = {}
    for text in candidates:
        body = requests.post(f"{base}/api/chat", json={"message": text}, headers=headers("probe"), timeout=30).json()
        seen[text] = (body["intent"], body["confidence"], body["is_confused"])
        if want(body):
            return text
    pytest.fail(f"no candidate message produced the wanted reply with the models in service: {seen}")


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_page_is_served_with_a_strict_csp_and_no_inline_code(stack):
    res = requests.get(f"{stack}/", timeout=10)
    csp = res.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert not re.search(r"<script(?![^>]*\bsrc=)", res.text), "inline script in index.html"
    assert requests.post(f"{stack}/api/dev/token", json={"uid": "x"}, timeout=10).status_code == 200


def test_sign_in_streamed_chat_indicator_sources_thumbs_and_history(page, stack):
    page.goto(f"{stack}/")
    page.get_by_role("heading", name="Sign in").wait_for()
    assert page.get_by_role("navigation", name="Main").is_hidden()  # nothing before sign-in
    shot(page, "signin.png")
    sign_in(page, stack, "stu-chat")
    page.evaluate(
        """() => {
        window.__typing = [];
        const el = document.getElementById('typing');
        new MutationObserver(() => window.__typing.push([el.hidden, performance.now()]))
          .observe(el, {attributes: true, attributeFilter: ['hidden']});
    }"""
    )
    with page.expect_response(lambda r: r.url.endswith("/api/chat") and r.request.method == "POST") as resp_info:
        send(page, "how do for loops work in python?")
    response = resp_info.value
    # the reply is streamed (SSE), read by the client as it arrives
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.request.headers["accept"] == "text/event-stream"

    reply = page.locator(".msg.tutor").last
    reply.locator(".thumbs").wait_for()
    log = page.evaluate("window.__typing")
    shown = [t for hidden, t in log if not hidden]
    hidden = [t for hidden, t in log if hidden]
    assert shown and hidden, log
    assert hidden[0] - shown[0] >= 795, f"typing indicator visible only {hidden[0] - shown[0]:.0f} ms"

    # cited sources: clickable, each opens its snippet
    source = reply.locator(".source").first
    source.locator("summary").click()
    expect_visible(source.locator("p"))
    # thumbs: an API error is shown readably with its request id; then it works
    page.route(
        "**/api/feedback",
        lambda route: route.fulfill(
            status=500,
            content_type="application/json",
            body=json.dumps({"error": {"code": "internal", "message": "Boom.", "request_id": "req-test-1234"}}),
        ),
    )
    reply.get_by_role("button", name="Helpful", exact=True).click()
    page.locator("#errors .error", has_text="request id req-test-1234").wait_for()
    page.unroute("**/api/feedback")
    with page.expect_response("**/api/feedback") as fb:
        reply.get_by_role("button", name="Helpful", exact=True).click()
    assert fb.value.status == 200 and fb.value.json()["feedback"]["feedback_score"] == 1
    assert reply.get_by_role("button", name="Helpful", exact=True).get_attribute("aria-pressed") == "true"
    shot(page, "chat.png")

    # session history survives a reload, and lists the session
    page.reload()
    page.locator(".msg.tutor").first.wait_for()
    assert page.locator(".msg.user", has_text="how do for loops work").count() == 1
    page.locator(".sessions-list .session", has_text="how do for loops work").wait_for()


def expect_visible(locator) -> None:
    locator.wait_for(state="visible")


def test_rephrase_and_confused_paths(page, stack):
    unsure = probe(stack, REPHRASE_CANDIDATES, lambda b: b["needs_rephrase"] and not b["is_confused"])
    confused = probe(stack, CONFUSED_CANDIDATES, lambda b: b["is_confused"])
    sign_in(page, stack, "stu-paths")

    send(page, unsure)
    ask = page.locator(".rephrase-ask")
    ask.wait_for()
    ask.get_by_role("button", name="Rephrase my question").click()
    assert page.locator("#chat-input").input_value() == unsure
    assert page.evaluate("document.activeElement.id") == "chat-input"
    assert page.locator("#supportive-banner").is_hidden()
    shot(page, "chat-rephrase.png")

    page.get_by_role("button", name="New chat").click()
    send(page, confused)
    page.locator("#supportive-banner").wait_for(state="visible")
    assert "supportive" in page.locator("section.chat").get_attribute("class")
    page.locator("#supportive-banner").get_by_role("button", name="Explain it more simply").wait_for()
    shot(page, "chat-confused.png")


def test_offline_after_10_seconds_keeps_the_message_and_delivers_it_once(page, stack):
    sign_in(page, stack, "stu-offline")
    mode = {"now": "hang"}
    hung = []

    def chat_route(route):
        if mode["now"] == "hang":
            hung.append(route)  # never answered: the client must give up after 10 s
            return
        if mode["now"] == "down":
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route("**/api/chat", chat_route)
    text = f"what does a while loop do? ({uuid.uuid4().hex[:6]})"
    started = time.monotonic()
    send(page, text)
    page.locator("#offline-banner").wait_for(state="visible", timeout=20_000)
    waited = time.monotonic() - started
    assert waited >= 9.5, f"offline mode after {waited:.1f} s"
    mode["now"] = "down"
    for route in hung:  # the client gave up on it; settle it, or its handler stays pending
        route.abort("internetdisconnected")
    pending = page.locator(".msg.user.pending", has_text=text)
    assert pending.count() == 1
    assert text in page.evaluate("localStorage.getItem('cc.outbox.stu-offline')")
    shot(page, "chat-offline.png")
    time.sleep(2.5)  # at least one failed retry while the backend is unreachable
    assert page.locator("#offline-banner").is_visible()

    mode["now"] = "up"
    page.locator("#offline-banner").wait_for(state="hidden", timeout=20_000)
    page.locator(".msg.tutor .thumbs").first.wait_for()
    assert page.locator(".msg.user", has_text=text).count() == 1
    assert page.evaluate("localStorage.getItem('cc.outbox.stu-offline')") == "[]"

    sessions = requests.get(f"{stack}/api/chat/sessions", headers=headers("stu-offline"), timeout=10).json()
    delivered = 0
    for s in sessions["sessions"]:
        msgs = requests.get(
            f"{stack}/api/chat/sessions/{s['id']}/messages", headers=headers("stu-offline"), timeout=10
        ).json()["messages"]
        delivered += sum(1 for m in msgs if m["role"] == "user" and m["content"] == text)
    assert delivered == 1


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def lose_first_response(page, pattern: str) -> dict[str, list]:
    """Route `pattern`'s POSTs: the first reaches the server (which handles it) but its
    response never reaches the page (the connection drops); later ones pass. Records each
    request's Idempotency-Key and each answer's Idempotent-Replayed header."""
    seen: dict[str, list] = {"keys": [], "replayed": []}

    def handle(route):
        if route.request.method != "POST":
            return route.continue_()
        seen["keys"].append(route.request.headers.get("idempotency-key"))
        if len(seen["keys"]) == 1:
            answer = route.fetch()  # the server does the work...
            seen["replayed"].append((answer.status, answer.headers.get("idempotent-replayed")))
            return route.abort("internetdisconnected")  # ...and the answer is lost
        route.continue_()

    page.route(pattern, handle)
    page.on(
        "response",
        lambda r: (
            seen["replayed"].append((r.status, r.headers.get("idempotent-replayed")))
            if r.request.method == "POST" and re.search(pattern.replace("**", ".*") + "$", r.url)
            else None
        ),
    )
    return seen


def test_a_resend_after_a_lost_response_counts_once(page, stack):
    """Grading, chat and feedback: the client resends a lost action with the key it made
    for it, the server answers from the first result, and the database holds it once."""
    uid = f"stu-lost-{uuid.uuid4().hex[:6]}"
    sign_in(page, stack, uid)

    # Chat: the streamed turn is handled, its stream lost; the resend is answered from it.
    chat = lose_first_response(page, "**/api/chat")
    text = f"what does a for loop do? ({uuid.uuid4().hex[:6]})"
    send(page, text)
    page.locator(".msg.tutor .thumbs").first.wait_for(timeout=30_000)
    assert len(chat["keys"]) == 2 and chat["keys"][0] == chat["keys"][1] and UUID_RE.match(chat["keys"][0])
    assert chat["replayed"] == [(200, None), (200, "true")]
    sessions = requests.get(f"{stack}/api/chat/sessions", headers=headers(uid), timeout=10).json()["sessions"]
    assert len(sessions) == 1
    msgs = requests.get(
        f"{stack}/api/chat/sessions/{sessions[0]['id']}/messages", headers=headers(uid), timeout=10
    ).json()["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant"] and msgs[0]["content"] == text
    assert page.locator(".msg.user", has_text=text).count() == 1
    assert page.evaluate(f"localStorage.getItem('cc.outbox.{uid}')") == "[]"

    # Feedback on that reply: a new action, a new key; its lost response is resent once.
    feedback = lose_first_response(page, "**/api/feedback")
    reply = page.locator(".msg.tutor").last
    reply.get_by_role("button", name="Not helpful", exact=True).click()
    reply.locator(".thanks", has_text="Thanks").wait_for(timeout=20_000)
    assert len(feedback["keys"]) == 2 and feedback["keys"][0] == feedback["keys"][1] != chat["keys"][0]
    assert feedback["replayed"] == [(200, None), (200, "true")]

    # Grading: the answer is graded once, though it was sent twice.
    grading = lose_first_response(page, "**/api/grading")
    open_screen(page, "Practice", "Practice")
    page.get_by_label("Topic").select_option("py-loops")
    mcq = page.locator(".qcard").filter(has_text="multiple choice").first
    mcq.get_by_role("button", name="Answer this question").click()
    page.locator("#answer-form input[type=radio]").first.check()
    page.get_by_role("button", name="Submit answer").click()
    page.locator("#grade-result .score").wait_for(timeout=20_000)
    assert len(grading["keys"]) == 2 and grading["keys"][0] == grading["keys"][1] and UUID_RE.match(grading["keys"][0])
    assert grading["replayed"] == [(200, None), (200, "true")]
    attempts = requests.get(f"{stack}/api/grading/attempts", headers=headers(uid), timeout=10).json()["attempts"]
    assert len(attempts) == 1 and attempts[0]["score"] is not None  # one attempt, graded once
    mastery = requests.get(f"{stack}/api/prediction/mastery", headers=headers(uid), timeout=10).json()["mastery"]
    assert sum(m["tasks_completed"] for m in mastery) == 1
    assert page.evaluate(f"localStorage.getItem('cc.actions.{uid}')") == "[]"


def test_practice_prediction_graded_answers_and_mastery_chart(page, stack):
    sign_in(page, stack, "stu-practice")
    open_screen(page, "Practice", "Practice")
    page.get_by_label("Topic").select_option("py-loops")
    cards = page.locator(".qcard")
    cards.first.wait_for()
    assert "chance of success" in cards.first.inner_text()

    mcq = cards.filter(has_text="multiple choice").first
    mcq.get_by_role("button", name="Answer this question").click()
    assert "predicted chance of success" in page.locator("#prediction").inner_text()
    page.locator("#answer-form input[type=radio]").first.check()
    with page.expect_response("**/api/grading") as graded:
        page.get_by_role("button", name="Submit answer").click()
    assert graded.value.status == 200 and graded.value.json()["grader"] == "mcq"
    page.locator("#grade-result .score").wait_for()

    short = cards.filter(has_text="short answer").first
    short.get_by_role("button", name="Answer this question").click()
    page.get_by_label("Your answer").fill("Because i is never increased inside the loop, so i < 10 stays true forever.")
    with page.expect_response("**/api/grading") as graded:
        page.get_by_role("button", name="Submit answer").click()
    body = graded.value.json()
    assert graded.value.status == 200 and body["kind"] == "short_answer"
    result = page.locator("#grade-result")
    result.locator(".score").wait_for()
    assert "/ 10" in result.inner_text() and body["feedback"][:20] in result.inner_text()
    shot(page, "practice.png")

    open_screen(page, "Progress", "Progress")
    chart = page.locator("#mastery-chart")
    chart.wait_for()
    assert chart.locator("rect.bar").count() >= 6
    assert "Loops" in chart.get_attribute("aria-label")
    shot(page, "progress.png")


SLOW_FETCH = """(() => {
  const real = window.fetch.bind(window);
  window.__slowDone = 0;
  window.fetch = async (input, init) => {
    const res = await real(input, init);
    if (window.__slow && String(input).includes(window.__slow)) {
      await new Promise((r) => setTimeout(r, 1500));
      window.__slowDone += 1;
    }
    return res;
  };
})()"""


def slow_down(page, url_part: str) -> None:
    """From now on, answers to requests whose URL contains `url_part` reach the page
    1.5 s late (after the server answered); `settle_slow` waits for the one in flight."""
    page.evaluate("part => { window.__slow = part; }", url_part)


def settle_slow(page, answers: int = 1) -> None:
    page.wait_for_function("n => window.__slowDone >= n", arg=answers)  # the late answers have arrived
    page.wait_for_timeout(200)  # and whatever they would draw, drawn


def test_a_screen_left_while_it_loads_is_not_drawn_beside_the_next(page, stack):
    """Practice loads the topics before it draws; a student who moves on to Progress in
    the meantime sees Progress alone, not Practice drawn under it a moment later."""
    page.add_init_script(SLOW_FETCH)
    sign_in(page, stack, "stu-hasty")
    slow_down(page, "/api/chat/topics")
    nav(page).get_by_role("link", name="Practice").click()
    open_screen(page, "Progress", "Progress")
    settle_slow(page)
    headings = page.locator("#view h1").all_inner_texts()
    assert headings == ["Progress"], headings
    assert page.locator("#practice-topic").count() == 0
    assert page.locator("#view .screen").count() == 1


def test_the_topic_chosen_last_is_the_one_whose_questions_show(page, stack):
    """Questions load after a topic is chosen; choosing another before they arrive (the
    arrow keys on a select fire a change per option) shows the last topic's alone."""
    page.add_init_script(SLOW_FETCH)
    sign_in(page, stack, "stu-topics")
    open_screen(page, "Practice", "Practice")
    slow_down(page, "topic_id=py-variables")
    page.get_by_label("Topic").select_option("py-variables")
    page.get_by_label("Topic").select_option("py-loops")
    loops = requests.get(
        f"{stack}/api/prediction/questions", params={"topic_id": "py-loops"}, headers=headers("stu-topics"), timeout=10
    ).json()["questions"]
    page.locator(".qcard").first.wait_for()
    settle_slow(page)
    assert page.locator(".question-list").count() == 1
    shown = page.locator(".qcard .prompt").all_inner_texts()
    assert sorted(shown) == sorted(q["prompt"] for q in loops)


def test_the_question_opened_last_is_the_one_answered(page, stack):
    """Opening a question first asks for its prediction; a second question opened before
    that answer comes is the only one shown, with one answer form."""
    page.add_init_script(SLOW_FETCH)
    sign_in(page, stack, "stu-two-questions")
    open_screen(page, "Practice", "Practice")
    page.get_by_label("Topic").select_option("py-loops")
    cards = page.locator(".qcard")
    cards.nth(1).wait_for()
    second_prompt = cards.nth(1).locator(".prompt").inner_text()
    slow_down(page, "/api/prediction")  # from now on: the predictions' answers come late
    cards.nth(0).get_by_role("button", name="Answer this question").click()
    cards.nth(1).get_by_role("button", name="Answer this question").click()
    settle_slow(page, answers=2)
    assert page.locator("#answer-form").count() == 1
    assert page.locator("#question-area .prompt").all_inner_texts() == [second_prompt]


def test_the_session_opened_last_is_the_one_shown(page, stack):
    """Two past sessions opened in turn, the first one's history slow to come: the second
    one's messages are shown and kept as the open session, not the first's."""
    uid = f"stu-sessions-{uuid.uuid4().hex[:6]}"
    ids = {}
    for name in ("first", "second"):
        body = requests.post(
            f"{stack}/api/chat", json={"message": f"what is a {name} loop?"}, headers=headers(uid), timeout=30
        ).json()
        ids[name] = body["session_id"]
    page.add_init_script(SLOW_FETCH)
    sign_in(page, stack, uid)
    sessions = page.locator("button.session")
    sessions.nth(1).wait_for()
    slow_down(page, f"/sessions/{ids['first']}/messages")
    sessions.filter(has_text="first").click()
    sessions.filter(has_text="second").click()
    settle_slow(page)
    log = page.locator(".msg.user").all_inner_texts()
    assert any("second loop" in m for m in log) and not any("first loop" in m for m in log), log
    assert page.evaluate(f"sessionStorage.getItem('cc.chat.session.{uid}')") == ids["second"]


def test_staff_label_the_review_queue_with_the_keyboard(page, stack):
    for text in REPHRASE_CANDIDATES[:3]:  # low-confidence queries land in the queue
        requests.post(f"{stack}/api/chat", json={"message": text}, headers=headers("queue-feeder"), timeout=30)
    sign_in(page, stack, "staff-1", admin=True)
    open_screen(page, "Review queue", "Review queue")
    current = page.locator(".qitem.current")
    current.wait_for()
    before = page.locator(".qitem").count()
    assert before >= 2
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    first_id = current.get_attribute("data-id")
    assert page.evaluate("document.activeElement.dataset.id") == first_id
    with page.expect_response("**/api/feedback/label") as labelled:
        page.keyboard.press("2")  # the second label of the taxonomy
    assert labelled.value.json()["label"]["human_label"] == "debugging_help"
    page.wait_for_function(
        "id => document.querySelector('.qitem.current')?.dataset.id !== id && document.activeElement.matches('.qitem')",
        arg=first_id,
    )
    second_id = page.locator(".qitem.current").get_attribute("data-id")
    with page.expect_response("**/api/feedback/label") as labelled:
        page.keyboard.press("Enter")  # accept the model's guess
    assert labelled.value.json()["label"]["id"] == second_id
    shot(page, "staff-review-queue.png")
    queue = requests.get(f"{stack}/api/feedback/review-queue", headers=headers("root", admin=True), timeout=10)
    assert not {first_id, second_id} & {i["id"] for i in queue.json()["items"]}

    open_screen(page, "Models", "Models and training runs")
    # the real operator routes: the version the stack serves is listed as in service
    page.get_by_role("row", name=re.compile(r"v\d+ in service")).wait_for()
    shot(page, "staff-models.png")


def test_fast_labelling_labels_each_query_once_and_skips_none(page, stack):
    """A staff member presses a label key twice, then moves down, while the first label
    is still on its way (its answer delayed 1.5 s): one label is sent, for the query that
    was current, and only that query leaves the list."""
    for text in REPHRASE_CANDIDATES:  # low-confidence queries of its own
        requests.post(f"{stack}/api/chat", json={"message": text}, headers=headers("queue-feeder-2"), timeout=30)
    page.add_init_script(SLOW_FETCH)
    sign_in(page, stack, "staff-3", admin=True)
    open_screen(page, "Review queue", "Review queue")
    current = page.locator(".qitem.current")
    current.wait_for()
    ids_before = [el.get_attribute("data-id") for el in page.locator(".qitem").all()]
    assert len(ids_before) >= 3
    first_id = current.get_attribute("data-id")
    sent: list[str] = []
    page.on(
        "request",
        lambda r: sent.append(r.post_data_json["interaction_id"]) if r.url.endswith("/api/feedback/label") else None,
    )
    slow_down(page, "/api/feedback/label")
    page.keyboard.press("2")
    page.keyboard.press("3")  # the same query, its label still on its way: ignored
    page.keyboard.press("ArrowDown")  # moves on before the answer comes
    second_id = page.locator(".qitem.current").get_attribute("data-id")
    settle_slow(page)
    assert sent == [first_id]
    ids_after = [el.get_attribute("data-id") for el in page.locator(".qitem").all()]
    assert first_id not in ids_after and second_id in ids_after
    assert page.locator(".qitem.current").get_attribute("data-id") == second_id


def test_student_never_sees_and_is_refused_the_staff_screens(page, stack):
    sign_in(page, stack, "stu-nosy")
    assert nav(page).get_by_role("link", name="Review queue").count() == 0
    with page.expect_response("**/api/feedback/review-queue**") as refused:
        page.goto(f"{stack}/#/staff/review")
    assert refused.value.status == 403
    box = page.locator("#refused")
    box.wait_for()
    assert "staff only" in box.inner_text() and "request id" in box.inner_text()
    shot(page, "student-refused.png")

    # an expired sign-in (401) returns to the sign-in screen with the reason and request id
    expired = {"error": {"code": "unauthenticated", "message": "Token expired.", "request_id": "req-expired-1"}}
    page.route("**/api/chat/topics", lambda r: r.fulfill(status=401, json=expired))
    nav(page).get_by_role("link", name="Practice").click()
    page.get_by_role("button", name="Sign in").wait_for()
    page.locator("#errors .error", has_text="request id req-expired-1").wait_for()


def test_phone_width(browser, stack):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    pg = context.new_page()
    try:
        sign_in(pg, stack, "stu-phone")
        send(pg, "what is a list comprehension?")
        pg.locator(".msg.tutor .thumbs").wait_for(timeout=15_000)
        width = pg.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px phone"
        shot(pg, "chat-phone.png")
    finally:
        context.close()


def test_models_screen_shows_gates_and_rolls_back(page, stack):
    """A rejected run with its gate numbers, and a rollback, on the contract of
    web/js/learning.js (the routes are stubbed so that the stack's own model pointer
    stays where the other tests expect it)."""
    current = {"version": "v2"}
    posted: list[dict] = []

    def versions(route):
        rows = [
            {"version": "v2", "parent_version": "v1", "status": "published", "metrics": {"intent": {"accuracy": 0.95}}},
            {"version": "v1", "parent_version": None, "status": "retired", "metrics": {"intent": {"accuracy": 0.94}}},
        ]
        route.fulfill(json={"current": current["version"], "versions": rows, "request_id": "stub-versions"})

    def rollback(route):
        posted.append(route.request.post_data_json)
        current["version"] = posted[-1]["version"]
        route.fulfill(json={"current": current["version"], "previous": "v2", "request_id": "stub-rollback"})

    run = {
        "id": str(uuid.uuid4()),
        "trigger": "labels",
        "status": "rejected",
        "created_at": "2026-12-01T20:00:00Z",
        "produced_version": None,
        "gate": {"passed": False, "reasons": ["intent accuracy dropped 3.1 points"], "intent": {"drop_points": 3.1}},
    }
    page.route("**/api/feedback/training-runs**", lambda r: r.fulfill(json={"runs": [run], "request_id": "stub"}))
    page.route("**/api/feedback/model-versions", versions)
    page.route("**/api/feedback/model-versions/rollback", rollback)
    page.on("dialog", lambda d: d.accept())

    sign_in(page, stack, "staff-2", admin=True)
    open_screen(page, "Models", "Models and training runs")
    runs = page.locator("table.data").first
    runs.wait_for()
    assert "refused" in runs.inner_text() and "intent.drop_points: 3.100" in runs.inner_text()
    page.get_by_role("button", name="Roll back to v1").click()
    page.get_by_role("row", name=re.compile(r"v1 in service")).wait_for()
    assert posted == [{"version": "v1"}]
    shot(page, "staff-models-stubbed.png")
