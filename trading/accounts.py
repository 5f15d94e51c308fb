"""Account paths of the shadow ledger (DESIGN.md section 5).

An account is a colon-separated path naming what it holds. The set of shapes is
closed, so a typo in a path is refused by name rather than silently opening a new
account:

- ``assets:<venue>:<CUR>:available`` and ``assets:<venue>:<CUR>:reserved``
- ``expenses:fees:<venue>:<CUR>``
- ``equity:adjustments:<venue>:<CUR>`` and ``equity:opening:<venue>:<CUR>``
- ``trading:<venue>:<BASE>/<QUOTE>`` (conversion account; holds both currencies)
"""

from __future__ import annotations

import functools
import re

import attrs

from trading.errors import InvalidAccount

__all__ = [
    "AccountPath",
    "adjustments",
    "available",
    "conversion",
    "fees",
    "opening",
    "parse_account",
    "reserved",
    "validate_currency",
    "validate_symbol",
    "validate_venue",
]

_VENUE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_CURRENCY = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,23}$")


@attrs.frozen(slots=True)
class AccountPath:
    """A parsed account path; ``currencies`` are those it may hold."""

    path: str
    kind: str  # "available" | "reserved" | "fees" | "adjustments" | "opening" | "trading"
    venue: str
    currencies: tuple[str, ...]


def validate_venue(venue: object) -> str:
    """Return ``venue`` if it is a lowercase venue id, else raise InvalidAccount."""
    if not isinstance(venue, str) or not _VENUE.match(venue):
        raise InvalidAccount(str(venue), "venue must match [a-z0-9][a-z0-9_-]*")
    return venue


def validate_currency(currency: object) -> str:
    """Return ``currency`` if it is an uppercase currency code, else raise InvalidAccount."""
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise InvalidAccount(str(currency), "currency must match [A-Z0-9][A-Z0-9._-]*")
    return currency


def validate_symbol(symbol: object) -> tuple[str, str]:
    """Split ``BASE/QUOTE`` into its two validated, distinct currencies."""
    if not isinstance(symbol, str) or symbol.count("/") != 1:
        raise InvalidAccount(str(symbol), "symbol must be BASE/QUOTE")
    base, quote = symbol.split("/")
    validate_currency(base)
    validate_currency(quote)
    if base == quote:
        raise InvalidAccount(symbol, "base and quote must differ")
    return base, quote


def parse_account(path: object) -> AccountPath:
    """Parse and validate an account path; raise InvalidAccount naming the culprit."""
    if not isinstance(path, str):
        raise InvalidAccount(repr(path), "account path must be a string")
    return _parse_path(path)


@functools.lru_cache(maxsize=4096)
def _parse_path(path: str) -> AccountPath:
    # Cached: a node touches few accounts but parses them on every posting.
    parts = path.split(":")
    try:
        match parts:
            case ["assets", venue, cur, ("available" | "reserved") as kind]:
                return AccountPath(path, kind, validate_venue(venue), (validate_currency(cur),))
            case ["expenses", "fees", venue, cur]:
                return AccountPath(path, "fees", validate_venue(venue), (validate_currency(cur),))
            case ["equity", ("adjustments" | "opening") as kind, venue, cur]:
                return AccountPath(path, kind, validate_venue(venue), (validate_currency(cur),))
            case ["trading", venue, symbol]:
                return AccountPath(path, "trading", validate_venue(venue), validate_symbol(symbol))
    except InvalidAccount as exc:
        raise InvalidAccount(path, exc.reason) from None
    raise InvalidAccount(
        path,
        "unknown shape; expected assets:<venue>:<CUR>:available|reserved, "
        "expenses:fees:<venue>:<CUR>, equity:adjustments|opening:<venue>:<CUR> "
        "or trading:<venue>:<BASE>/<QUOTE>",
    )


def available(venue: str, currency: str) -> str:
    """Funds free to be reserved or withdrawn."""
    return parse_account(f"assets:{venue}:{currency}:available").path


def reserved(venue: str, currency: str) -> str:
    """Funds held by pending transfers (open orders)."""
    return parse_account(f"assets:{venue}:{currency}:reserved").path


def fees(venue: str, currency: str) -> str:
    """Fees paid to the venue, an expense in the fee's currency."""
    return parse_account(f"expenses:fees:{venue}:{currency}").path


def adjustments(venue: str, currency: str) -> str:
    """Counter-account of reconciliation adjustments."""
    return parse_account(f"equity:adjustments:{venue}:{currency}").path


def opening(venue: str, currency: str) -> str:
    """Counter-account of opening balances and deposits."""
    return parse_account(f"equity:opening:{venue}:{currency}").path


def conversion(venue: str, symbol: str) -> str:
    """Trading account through which a market's trades convert one currency into another."""
    return parse_account(f"trading:{venue}:{symbol}").path
