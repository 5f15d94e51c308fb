"""Exchange clients: stock ccxt classes by id, plus our order-capable Nobitex.

``create_client`` is the one way the rest of Ironclad builds a client, so every client it
returns is pointed at the configured venue, parses numbers to ``Decimal`` and leaves pacing to
the gateway's shared rate limiter.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import ccxt

from exchanges.errors import RateLimitBackOff, VenueBan
from exchanges.nobitex import Nobitex

__all__ = ["Nobitex", "RateLimitBackOff", "UnknownExchange", "VenueBan", "create_client"]

_OUR_CLASSES: dict[str, type[ccxt.Exchange]] = {"nobitex": Nobitex}

# Without these, ccxt.binance's load_markets also calls margin, futures and currency
# endpoints (see /work/shared/exchanges.md, section 1), and refuses fetch_open_orders()
# without a symbol, which made the reconciler read open orders market by market (one call
# per market: with many markets that flooded the gateway and start-up reconciliation never
# finished). One all-markets query weighs more in the venue's budget but is one call.
_BINANCE_SPOT_ONLY = {
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
    "warnOnFetchOpenOrdersWithoutSymbol": False,
}


class UnknownExchange(ValueError):
    """Raised when an exchange id is neither ours nor one of ccxt's."""


def create_client(exchange_id: str, *, url: str | None = None, api_key: str | None = None,
                  secret: str | None = None, token: str | None = None,
                  timeout_ms: int = 10_000, options: dict[str, Any] | None = None
                  ) -> ccxt.Exchange:
    """A ccxt client for ``exchange_id``, every REST URL pointed at ``url`` when given.

    Guarantees: numbers in parsed results are exact decimal strings (ccxt's ``number = str``;
    ``Decimal(x)`` them; ``number = Decimal`` would break ccxt's fee parsing, whose
    ``safe_string`` ignores Decimals). Exception: stock ccxt classes parse order-book levels
    with ``safe_float``, so those stay floats; our Nobitex keeps them strings. ccxt's own
    per-instance throttle is off (the gateway's limiter is shared across workers), and with a
    ``url`` no request can leave for the real exchange: each API URL keeps its path but takes
    the venue's scheme and host. ``token`` is Nobitex's credential; ``api_key``/``secret`` are
    the HMAC pair of the others.
    """
    cls = _OUR_CLASSES.get(exchange_id)
    if cls is None:
        cls = getattr(ccxt, exchange_id, None)
        if exchange_id not in ccxt.exchanges or cls is None:
            raise UnknownExchange(f"no exchange class for id {exchange_id!r}")
    merged_options: dict[str, Any] = dict(_BINANCE_SPOT_ONLY) if exchange_id == "binance" else {}
    merged_options.update(options or {})
    config: dict[str, Any] = {
        "enableRateLimit": False,
        "timeout": timeout_ms,
        "options": merged_options,
    }
    for key, value in (("apiKey", api_key), ("secret", secret), ("token", token)):
        if value is not None:
            config[key] = value
    client = cls(config)
    client.number = str
    if url is not None:
        client.urls["api"] = _pointed_at(client.urls["api"], url.rstrip("/"))
    return client


def _pointed_at(api_urls: Any, base: str) -> Any:
    """Every URL in ccxt's ``urls['api']`` tree with its scheme and host replaced by ``base``."""
    if isinstance(api_urls, dict):
        return {key: _pointed_at(value, base) for key, value in api_urls.items()}
    if isinstance(api_urls, str) and api_urls.startswith(("http://", "https://")):
        parts = urlsplit(api_urls)
        return base + parts.path
    return api_urls
