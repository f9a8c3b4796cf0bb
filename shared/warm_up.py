"""Cold-start work done before the first request needs it, in the serving worker.

A chat instance's first request used to load the models, open the first database
connection and build the LLM client one after the other, on the request thread. Loading
ONNX sessions and waiting on a socket release the GIL. (Building the client was importing
a vendor SDK, 0.7-0.9 s of CPU holding the GIL, until the providers spoke HTTP themselves;
now it is an httpx client and, for Vertex, the credentials' lookup and first token.)
Started as soon as the worker exists, in two threads (the models in one, the database
then the LLM client in the other), they
overlap each other and the worker's own start instead of adding up (docs/chat.md,
"Cold start").

Why after the fork: functions-framework imports the function's module in gunicorn's
master and forks the worker that serves. Threads do not survive a fork, and an ONNX
Runtime session created before it would have lost its thread pool after it. So each
function declares its work at import (`when_serving`), and it starts in the child
(`os.register_at_fork(after_in_child=...)`); a process that serves without forking (the
local server) calls `start()` itself. Tests and CLIs, which import the functions but
neither fork nor call `start()`, load nothing ahead.

Everything here is best effort: a step that fails is logged and the request does the
same work lazily, as it would without warm-up. `WARM_START=0` turns it off.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Step = Callable[[], object]

_lanes: dict[str, list[tuple[str, Step]]] = {"models": [], "services": []}
_started_in: int | None = None  # the pid that started the work (once per process)
_lock = threading.Lock()
_hooked = False


def when_serving(*, models: bool = False, database: bool = False, llm_task: str | None = None) -> None:
    """Declare what a function's first request would otherwise do: load its served models
    (`serve_models`), open a database connection, build the LLM client for `llm_task`.
    Called once at import, next to the function's entry point; declarations of several
    functions in one process (the local server) are merged."""
    global _hooked
    with _lock:
        if models:
            _add("models", "models", _load_models)
        if database:
            _add("services", "database", _connect_database)
        if llm_task:
            _add("services", f"llm:{llm_task}", lambda: _build_llm_client(llm_task))
        if not _hooked and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=start)
            _hooked = True


def _add(lane: str, name: str, step: Step) -> None:
    if all(declared != name for declared, _ in _lanes[lane]):
        _lanes[lane].append((name, step))


def start() -> list[threading.Thread]:
    """Run the declared work in background threads (one per lane), once per process;
    returns the threads started (none when off, already started, or nothing declared)."""
    global _started_in
    with _lock:
        if _started_in == os.getpid() or not any(_lanes.values()):
            return []
        _started_in = os.getpid()
        lanes = {lane: list(steps) for lane, steps in _lanes.items() if steps}
    if not _enabled():
        return []
    threads = [
        threading.Thread(target=_run, args=(steps,), name=f"warm-up-{lane}", daemon=True)
        for lane, steps in lanes.items()
    ]
    for thread in threads:
        thread.start()
    return threads


def _enabled() -> bool:
    try:
        from shared.config import get_settings

        return bool(get_settings().warm_start)
    except Exception:  # a misconfiguration is reported by the first request, not here
        log.warning("warm-up skipped: settings could not be read", exc_info=True)
        return False


def _run(steps: list[tuple[str, Step]]) -> None:
    for name, step in steps:
        t0 = time.perf_counter()
        try:
            step()
        except Exception:
            log.warning("warm-up of %s failed; the first request will do it", name, exc_info=True)
            continue
        log.info("warm-up of %s done in %.3f s", name, time.perf_counter() - t0)


def _load_models() -> None:
    """The served models of the version in service, each run once (an ONNX session's first
    run allocates its buffers: 50-90 ms against 1-2 ms afterwards)."""
    from shared.models.registry import get_registry

    loaded = get_registry().loaded
    for model in (loaded.models if loaded else {}).values():
        warm = getattr(model, "warm_up", None)
        if warm is not None:
            warm()


def _connect_database() -> None:
    """The engine and one pooled connection (the vector self-test, where it applies, runs
    here too), checked in again for the first request."""
    from shared.db import get_engine

    with get_engine().connect():
        pass


def _build_llm_client(task: str) -> None:
    """The client of the provider a call for `task` tries first (and its credentials)."""
    from shared.llm.router import get_router

    get_router().warm_up(task)
