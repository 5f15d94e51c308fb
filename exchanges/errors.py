"""Errors the exchange clients raise beyond ccxt's own hierarchy.

They subclass ccxt's classes, so code that classifies by ccxt family (``NetworkError``,
``RateLimitExceeded``) keeps working; they add what ccxt's classes cannot carry.
"""

from __future__ import annotations

from decimal import Decimal

from ccxt.base.errors import DDoSProtection, ExchangeError, RateLimitExceeded

__all__ = ["ListIncomplete", "RateLimitBackOff", "VenueBan"]


class RateLimitBackOff(RateLimitExceeded):
    """Raised when the venue answered 429 and named how long to stay away.

    ``retry_after_seconds`` is the venue's own figure (Nobitex's ``backOff``), so the gateway
    can pause dispatch for that account exactly as long as asked; ``None`` if it gave none.
    """

    def __init__(self, message: str, retry_after_seconds: Decimal | None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class VenueBan(DDoSProtection):
    """Raised when the venue has blocked this account or token for ``retry_after_seconds``.

    A ``DDoSProtection``, like Binance's 418: the gateway opens the breaker until it ends.
    Nobitex blocks a token that keeps ignoring 429s (for 2 minutes, says its documentation).
    """

    def __init__(self, message: str, retry_after_seconds: Decimal | None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ListIncomplete(ExchangeError):
    """Raised when a paged list was not read to its end (more pages than the client may read),
    so what was looked for may exist beyond it. Never an ``OrderNotFound``: a search that did
    not reach the end proves nothing about absence, and the caller must ask again later."""
