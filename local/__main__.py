"""Local stack commands.

python -m local serve [--host 127.0.0.1] [--port 8080] [--no-demo]
python -m local token --uid alice [--admin | --role teacher|service] [--expires-in 3600]
python -m local prepare          # migrate + load the demo course, then exit
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys

from shared.config import Settings, get_settings, reset_settings_cache
from shared.logs import configure_logging

log = logging.getLogger("local")

# The Firebase Auth emulator's usual address. Nothing connects to it: firebase-admin only
# needs the variable set to accept emulator (unsigned) tokens.
LOCAL_AUTH_EMULATOR_HOST = "127.0.0.1:9099"


def local_settings() -> Settings:
    """The local stack's settings, with its one explicit opt-in: Auth emulator mode
    (unsigned tokens minted by `python -m local token`) unless FIREBASE_AUTH_EMULATOR_HOST
    is configured either way (an empty value keeps real verification). Nothing else
    opts in: a function deployed without this module verifies real tokens."""
    settings = get_settings()
    if "auth_emulator_host" not in settings.model_fields_set:
        os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = LOCAL_AUTH_EMULATOR_HOST
        reset_settings_cache()
        settings = get_settings()
    return settings


def _token(args: argparse.Namespace) -> int:
    from local.tokens import mint_emulator_token

    settings = local_settings()
    if not settings.auth_emulator_host:
        print(
            "FIREBASE_AUTH_EMULATOR_HOST is empty: the functions verify real Firebase tokens, "
            "so a locally minted token would be rejected.",
            file=sys.stderr,
        )
        return 2
    extra = {"role": args.role} if args.role else None
    print(
        mint_emulator_token(
            args.uid, settings.project_id, admin=args.admin, expires_in=args.expires_in, extra_claims=extra
        )
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import run_simple

    from local.server import JsonErrorRequestHandler, build_app
    from local.stack import prepare
    from local.tokens import mint_emulator_token

    # SIGUSR1 writes every thread's stack to stderr: how a stop that hangs says where
    # (local.launcher sends it before killing a server that outlived its grace).
    try:
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    except (OSError, ValueError):  # a stderr without a file descriptor (called in-process)
        log.warning("no thread dump on SIGUSR1: stderr has no file descriptor")
    settings = local_settings()
    prepare(settings, demo=not args.no_demo)
    app = build_app()
    # werkzeug serves in this process (no worker is forked): start the functions' warm-up here.
    from shared import warm_up

    warm_up.start()
    base = f"http://{args.host}:{args.port}"
    student = mint_emulator_token("demo-student", settings.project_id, expires_in=12 * 3600)
    print(
        f"\ncognitive-core is running at {base}/api/  (Ctrl-C stops it and the database)\n"
        f"  web client: {base}/\n"
        f"  health:     curl {base}/api/health\n"
        f"  functions:  {base}/api/chat  /api/grading  /api/prediction  /api/feedback\n"
        f"  a token:    .venv/bin/python -m local token --uid alice [--admin]\n"
        f"  try:        curl -H 'Authorization: Bearer {student}' {base}/api/chat/topics\n",
        flush=True,
    )
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False, request_handler=JsonErrorRequestHandler)
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from local.stack import prepare

    summary = prepare(get_settings(), demo=True)
    print(f"schema migrated; demo course: {summary}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="run every function locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--no-demo", action="store_true", help="do not load the demo course")
    token = sub.add_parser("token", help="mint a Firebase Auth emulator ID token")
    token.add_argument("--uid", required=True)
    token.add_argument("--admin", action="store_true")
    token.add_argument(
        "--role", choices=("teacher", "service"), help="a teacher (reads profiles) or a service account (embeddings)"
    )
    token.add_argument("--expires-in", type=int, default=3600)
    sub.add_parser("prepare", help="migrate the database and load the demo course")
    args = parser.parse_args(argv)

    settings = get_settings()
    configure_logging(settings.log_level)
    if settings.in_cloud:
        # Token minting, the demo course and the local server are local conveniences.
        log.critical("refusing to run the local stack in the cloud (COGNITIVE_ENV=cloud or K_SERVICE/CLOUD_RUN_JOB)")
        print("python -m local is for a local machine; this environment is the cloud.", file=sys.stderr)
        return 2
    # SIGTERM (a supervisor, `timeout`, `kill`) must stop the embedded database too: exit
    # through SystemExit so the exit hooks that stop it run, as they do for Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Ctrl-C (SIGINT) stops it however it was started: a non-interactive shell starts `&`
    # jobs with SIGINT ignored, Python keeps an inherited "ignore", and such a stack then
    # outlived every Ctrl-C until it was killed, leaving its database to recover.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    handlers = {"serve": _serve, "token": _token, "prepare": _prepare}
    from shared.db.selftest import VectorSelfTestError

    try:
        return handlers[args.cmd](args)
    except KeyboardInterrupt:
        return 0
    except VectorSelfTestError as exc:  # one clear message, not a traceback
        print(f"cognitive-core cannot start: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
