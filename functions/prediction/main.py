"""Prediction function. This stage serves a student's mastery per topic; the
correctness/time predictor arrives with the prediction issue."""

from __future__ import annotations

import flask
import functions_framework

from shared.api.models import UserQuery
from shared.db import get_engine
from shared.http import Request, Router
from shared.logs import configure_logging
from shared.mastery.store import mastery_by_topic

configure_logging()
router = Router("prediction")


@router.get("/mastery", query=UserQuery)
def mastery(req: Request) -> dict:
    user_id = req.query.user_id or req.user.uid
    req.user.require_self_or_admin(user_id)
    with get_engine().connect() as conn:
        return {"user_id": user_id, "mastery": mastery_by_topic(conn, user_id)}


@functions_framework.http
def prediction(request: flask.Request) -> flask.Response:
    return router.handle(request)
