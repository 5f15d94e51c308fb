"""Client order ids: valid for each venue, deterministic, distinct, readable back."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.client_ids import (
    VENUE_RULES,
    ClientIdError,
    UnknownVenue,
    VenueIdRule,
    client_order_id,
    is_own,
    node_tag,
    parse_client_order_id,
    rule_for,
)

# The venues' own rules, written out independently of the module under test.
BINANCE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
NOBITEX = re.compile(r"^[A-Za-z0-9]{1,32}$")
OFFICIAL = {"binance": BINANCE, "nobitex": NOBITEX}

node_ids = st.text(min_size=1, max_size=40)
tx_ids = st.one_of(
    st.text(min_size=1, max_size=60),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=40),
    st.uuids().map(str),
    st.uuids().map(lambda u: u.hex),
)
venues = st.sampled_from(sorted(VENUE_RULES))


@settings(max_examples=300, deadline=None)
@given(venue=venues, node=node_ids, tx=tx_ids)
def test_always_valid_for_the_venue_and_deterministic(venue: str, node: str, tx: str) -> None:
    cid = client_order_id(rule_for(venue), node, tx)
    assert OFFICIAL[venue].match(cid), cid
    assert client_order_id(rule_for(venue), node, tx) == cid
    assert is_own(cid, node)


@settings(max_examples=300, deadline=None)
@given(venue=venues, node=node_ids, a=tx_ids, b=tx_ids)
def test_distinct_transactions_give_distinct_ids(venue: str, node: str, a: str, b: str) -> None:
    rule = rule_for(venue)
    assert (client_order_id(rule, node, a) == client_order_id(rule, node, b)) == (a == b)


@settings(max_examples=200, deadline=None)
@given(venue=venues, node=node_ids, tx=tx_ids)
def test_embedded_transaction_reads_back(venue: str, node: str, tx: str) -> None:
    parts = parse_client_order_id(client_order_id(rule_for(venue), node, tx))
    assert parts is not None
    assert parts.node_tag == node_tag(node)
    if parts.transaction_id is not None:
        assert parts.transaction_id == tx
    else:
        assert parts.mode == "h"


def test_uuid_transaction_ids_are_reversible_on_both_venues() -> None:
    tx = str(uuid.UUID(int=2**128 - 1))
    for venue in ("binance", "nobitex"):
        cid = client_order_id(rule_for(venue), "node-a", tx)
        parts = parse_client_order_id(cid)
        assert parts is not None and parts.mode == "u" and parts.transaction_id == tx


def test_short_lowercase_transaction_id_is_embedded_verbatim() -> None:
    cid = client_order_id(rule_for("binance"), "node-a", "tx42")
    assert cid.endswith("vtx42")
    assert parse_client_order_id(cid).transaction_id == "tx42"


def test_long_transaction_id_is_hashed_to_the_full_length() -> None:
    cid = client_order_id(rule_for("nobitex"), "node-a", "x" * 100)
    assert len(cid) == 32
    assert parse_client_order_id(cid).mode == "h"


def test_other_nodes_and_external_ids_are_not_ours() -> None:
    cid = client_order_id(rule_for("binance"), "node-a", "tx1")
    assert not is_own(cid, "node-b")
    assert not is_own("x-R4BD3S82abcdef", "node-a")
    assert parse_client_order_id("web_123") is None
    assert parse_client_order_id("") is None


def test_unknown_venue_is_a_typed_error() -> None:
    with pytest.raises(UnknownVenue, match="kraken"):
        rule_for("kraken")


@pytest.mark.parametrize(
    ("max_length", "pattern", "culprit"),
    [(10, r"[a-z0-9]+", "max_length"), (32, r"[A-Z]+", "pattern")],
)
def test_rules_that_cannot_hold_our_ids_are_refused(
    max_length: int, pattern: str, culprit: str
) -> None:
    with pytest.raises(ClientIdError, match=culprit):
        VenueIdRule("somewhere", max_length, pattern)


@pytest.mark.parametrize("bad", ["", None, 5])
def test_empty_or_non_string_inputs_are_refused(bad: object) -> None:
    with pytest.raises(ClientIdError):
        client_order_id(rule_for("binance"), "node", bad)  # type: ignore[arg-type]
    with pytest.raises(ClientIdError):
        client_order_id(rule_for("binance"), bad, "tx")  # type: ignore[arg-type]
