"""Client order ids: derived from (node identity, transaction id), valid for each venue.

The id is a pure function of its inputs — no attempt counter, no clock — so a resubmission
after a confirmed absence reuses it and the venue's own uniqueness check guards against a
second order. Layout (lowercase letters and digits only, which every venue in the rules
table accepts)::

    "i" + node tag (5) + mode (1) + body

- node tag: base36 of a hash of the node identity; tells our orders from external ones.
- mode ``v``: body is the transaction id verbatim (it is lowercase alphanumeric and fits).
- mode ``u``: the transaction id is a canonical UUID string; body is its 128 bits in
  base36, 25 characters (lossless, reversible).
- mode ``h``: anything else; body is a base36 BLAKE2b digest of the transaction id filling
  the remaining length (≥ 12 characters, ≥ 62 bits; 124 bits on Nobitex, 150 on Binance).
  The id is then not reversible by itself: map it back through the journal.

Distinct transaction ids give distinct client order ids: ``v`` and ``u`` are injective and
disjoint (a canonical UUID contains ``-``), and ``h`` collides only on a hash collision.
"""

from __future__ import annotations

import hashlib
import re
import uuid

import attrs

__all__ = [
    "VENUE_RULES",
    "ClientIdError",
    "ClientOrderIdParts",
    "UnknownVenue",
    "VenueIdRule",
    "client_order_id",
    "is_own",
    "node_tag",
    "parse_client_order_id",
    "rule_for",
]

_PREFIX = "i"
_NODE_TAG_LENGTH = 5
_HEADER_LENGTH = len(_PREFIX) + _NODE_TAG_LENGTH + 1
_UUID_BODY_LENGTH = 25  # ceil(128 / log2(36))
_MIN_HASH_LENGTH = 12
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_LOWER_ALNUM = re.compile(r"[a-z0-9]+\Z")
_SHAPE = re.compile(r"i([a-z0-9]{5})([vuh])([a-z0-9]+)\Z")


class ClientIdError(Exception):
    """Raised when a client order id cannot be derived or read; nothing was produced."""


class UnknownVenue(ClientIdError):
    """Raised when no client order id rule is known for a venue."""

    def __init__(self, venue: str) -> None:
        super().__init__(
            f"no client order id rule for venue {venue!r}; known: {sorted(VENUE_RULES)}"
        )
        self.venue = venue


def _check_rule(instance: VenueIdRule, attribute: attrs.Attribute, value: int) -> None:
    minimum = _HEADER_LENGTH + _MIN_HASH_LENGTH
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ClientIdError(
            f"VenueIdRule.max_length: need an int >= {minimum} for venue "
            f"{instance.venue!r}, got {value!r}"
        )


@attrs.frozen(slots=True)
class VenueIdRule:
    """What a venue accepts as a client order id: length limit and allowed characters.

    ``pattern`` is a regular expression for the whole id (without anchors). The rule is
    checked at construction against an id of our own alphabet, so a rule that could not
    accept our ids is refused before any order is placed.
    """

    venue: str
    max_length: int = attrs.field(validator=_check_rule)
    pattern: str

    def __attrs_post_init__(self) -> None:
        if not self.accepts(_PREFIX + _ALPHABET[: self.max_length - 1]):
            raise ClientIdError(
                f"VenueIdRule.pattern {self.pattern!r} of venue {self.venue!r} "
                "does not accept lowercase letters and digits"
            )

    def accepts(self, client_order_id: str) -> bool:
        """Whether the venue would accept this id (length and characters)."""
        return len(client_order_id) <= self.max_length and bool(
            re.fullmatch(self.pattern, client_order_id)
        )


#: Binance: newClientOrderId must match ``^[\.A-Z\:/a-z0-9_-]{1,36}$`` (spot API docs).
#: Nobitex: clientOrderId up to 32 characters (docs-api market-trade.md, "experimental");
#: the charset is not documented, so we accept only letters and digits there.
VENUE_RULES: dict[str, VenueIdRule] = {
    "binance": VenueIdRule("binance", 36, r"[.A-Z:/a-z0-9_-]{1,36}"),
    "nobitex": VenueIdRule("nobitex", 32, r"[A-Za-z0-9]{1,32}"),
}


def rule_for(venue: str) -> VenueIdRule:
    """The client order id rule of ``venue`` (a ccxt id or ``nobitex``); UnknownVenue if none."""
    try:
        return VENUE_RULES[venue]
    except KeyError:
        raise UnknownVenue(venue) from None


@attrs.frozen(slots=True)
class ClientOrderIdParts:
    """What a client order id of ours says: the node tag and the transaction, if embedded.

    ``transaction_id`` is None for mode ``h`` (hashed): look the id up in the journal.
    """

    node_tag: str
    mode: str
    transaction_id: str | None


def _base36(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 36)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def _digest36(text: str, width: int) -> str:
    raw = hashlib.blake2b(text.encode("utf-8"), digest_size=32).digest()
    return _base36(int.from_bytes(raw, "big"), 50)[-width:]


def node_tag(node_id: str) -> str:
    """The 5-character tag a node's client order ids carry (stable across restarts)."""
    if not isinstance(node_id, str) or not node_id:
        raise ClientIdError(f"node_id: expected a non-empty str, got {node_id!r}")
    return _digest36("node:" + node_id, _NODE_TAG_LENGTH)


def _canonical_uuid(text: str) -> uuid.UUID | None:
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return None
    return parsed if str(parsed) == text else None


def client_order_id(rule: VenueIdRule, node_id: str, transaction_id: str) -> str:
    """The client order id for ``transaction_id`` placed by ``node_id`` on ``rule.venue``.

    Deterministic; always accepted by ``rule``; the same for every submission attempt.
    """
    if not isinstance(transaction_id, str) or not transaction_id:
        raise ClientIdError(f"transaction_id: expected a non-empty str, got {transaction_id!r}")
    header = _PREFIX + node_tag(node_id)
    room = rule.max_length - _HEADER_LENGTH
    if _LOWER_ALNUM.match(transaction_id) and len(transaction_id) <= room:
        result = header + "v" + transaction_id
    elif (parsed := _canonical_uuid(transaction_id)) is not None and room >= _UUID_BODY_LENGTH:
        result = header + "u" + _base36(parsed.int, _UUID_BODY_LENGTH)
    else:
        result = header + "h" + _digest36("tx:" + transaction_id, room)
    if not rule.accepts(result):  # a bug in this module, never a caller's fault
        raise AssertionError(f"derived {result!r} violates {rule!r}")
    return result


def parse_client_order_id(client_order_id: str) -> ClientOrderIdParts | None:
    """Read one of our client order ids; None if it does not have our shape (external)."""
    match = _SHAPE.match(client_order_id) if isinstance(client_order_id, str) else None
    if match is None:
        return None
    tag, mode, body = match.groups()
    if mode == "v":
        return ClientOrderIdParts(tag, mode, body)
    if mode == "u":
        if len(body) != _UUID_BODY_LENGTH:
            return None
        number = int(body, 36)
        if number >= 1 << 128:
            return None
        return ClientOrderIdParts(tag, mode, str(uuid.UUID(int=number)))
    if len(body) < _MIN_HASH_LENGTH:
        return None
    return ClientOrderIdParts(tag, mode, None)


def is_own(client_order_id: str, node_id: str) -> bool:
    """Whether the id has our shape and this node's tag (else: external or another node's)."""
    parts = parse_client_order_id(client_order_id)
    return parts is not None and parts.node_tag == node_tag(node_id)
