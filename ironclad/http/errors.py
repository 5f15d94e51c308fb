"""The control API's one error shape: ``{"error": {"code", "message", "field"}}``.

A handler raises :class:`ApiError`; the app answers it with its status and body. Every
error answered this way was decided before anything changed (bad input, a refusal, a
component that is not there), except 504 whose outcome the caller must look up.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "ERROR_SCHEMA"]


class ApiError(Exception):
    """Raised by a handler to answer ``status`` with the error body; ``field`` names the
    culprit in the request (body field or query parameter) when there is one; ``reason``
    is an optional machine-readable detail (why orders are not accepted)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}" + (f" ({field})" if field else ""))
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}
        self.reason = reason

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        error: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.reason is not None:
            error["reason"] = self.reason
        return {"error": error}


#: JSON schema of every error answer (component ``Error`` of the OpenAPI document).
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "description": "machine-readable reason"},
                "message": {"type": "string", "description": "what went wrong, for people"},
                "field": {
                    "type": ["string", "null"],
                    "description": "the body field or query parameter at fault, if any",
                },
                "reason": {
                    "type": "string",
                    "description": "machine-readable detail (e.g. why orders are not accepted)",
                },
            },
        }
    },
}
