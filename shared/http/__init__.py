"""HTTP conventions every function applies: one router, one error shape, one auth path."""

from shared.http.auth import Principal
from shared.http.errors import ApiError
from shared.http.router import Request, Router

__all__ = ["ApiError", "Principal", "Request", "Router"]
