"""Grading function. This stage serves a student's graded attempts; grading
itself (MCQ and short answers) arrives with the grading issue."""

from __future__ import annotations

import flask
import functions_framework

from shared.api.models import UserQuery
from shared.db import get_engine
from shared.http import Request, Router
from shared.logs import configure_logging
from shared.mastery.store import list_attempts

configure_logging()
router = Router("grading")


@router.get("/attempts", query=UserQuery)
def attempts(req: Request) -> dict:
    user_id = req.query.user_id or req.user.uid
    req.user.require_self_or_admin(user_id)
    with get_engine().connect() as conn:
        return {"user_id": user_id, "attempts": list_attempts(conn, user_id, req.query.limit)}


@functions_framework.http
def grading(request: flask.Request) -> flask.Response:
    return router.handle(request)
