"""The alert routes of the control API against the real alert manager in the node's tree:
listing, acknowledging and silencing over HTTP; bad input answers the API's one error shape,
names the field and changes nothing; answers match the OpenAPI document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator

from actors.names import GatewayNames
from actors.protocol import ApplyBackoff
from gateway.classify import BackoffKind, BackoffSignal
from ironclad.http.observability import parse_matchers
from messages.alerts import MatchOp
from supervisors import tell
from tests.helpers_control_api import call, request
from tests.helpers_health import node_config, running_node
from tests.helpers_venue import running_venue
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(90)


def conforms(document: dict[str, Any], method: str, path: str, status: int,
             payload: Any) -> None:
    operation = document["paths"][path][method]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    OAS31Validator({**schema, "components": document["components"]}).validate(payload)


def test_matchers_parse_in_alertmanager_syntax() -> None:
    parsed = parse_matchers('{venue="sim", rule=~"breaker-.*",component!="x\\"y"}')
    assert [(m.name, m.op, m.value) for m in parsed] == [
        ("venue", MatchOp.EQUAL, "sim"), ("rule", MatchOp.REGEX, "breaker-.*"),
        ("component", MatchOp.NOT_EQUAL, 'x"y')]
    assert [(m.name, m.value) for m in parse_matchers("venue=sim")] == [("venue", "sim")]
    for bad in ("", "{}", "venue", "venue=", "=sim", 'venue="sim" extra', 'rule=~"("'):
        with pytest.raises(ValueError):
            parse_matchers(bad)


def test_list_ack_and_silence_alerts_over_http(tmp_path: Path) -> None:
    with running_venue(seed=6) as venue, running_node(node_config(tmp_path, venue.url)) as (
            _tree, base):
        _, document = call(base, "GET", "/openapi.json")
        wait_until(lambda: call(base, "GET", "/health")[1]["status"] == "ok", 30, "healthy")
        tell(GatewayNames("sim").rate_limiter,
             ApplyBackoff(BackoffSignal(BackoffKind.BAN, 60.0, "test ban")))

        def firing() -> list[dict[str, Any]]:
            status, listed = call(base, "GET", "/alerts")
            assert status == 200
            return [v["alert"] for v in listed["alerts"] if v["alert"]["state"] == "firing"]

        alert = wait_until(firing, 10, "an alert firing")[0]
        _, listed = call(base, "GET", "/alerts?include_resolved=true&limit=5")
        conforms(document, "get", "/alerts", 200, listed)

        # Acknowledge: bad bodies change nothing; then the alert is acknowledged once.
        path = f"/alerts/{alert['id']}/ack"
        status, body = call(base, "POST", path, {"duration": 60})
        assert (status, body["error"]["code"], body["error"]["field"]) == (
            422, "missing_field", "by")
        status, body = call(base, "POST", path, {"by": "ops", "duration": -5})
        assert (status, body["error"]["field"]) == (422, "duration")
        status, body = call(base, "POST", path, {"by": "ops", "colour": "red"})
        assert (status, body["error"]["code"]) == (422, "unknown_field")
        status, _, raw = request(base, "POST", path, b"not json")
        assert status == 400
        assert firing()[0]["state"] == "firing"
        status, acked = call(base, "POST", path, {"by": "ops"})
        assert status == 200, acked
        assert acked["state"] == "acknowledged" and acked["acked_by"] == "ops"
        conforms(document, "post", "/alerts/{id}/ack", 200, acked)
        status, body = call(base, "POST", "/alerts/no-such-alert/ack", {"by": "ops"})
        assert (status, body["error"]["code"]) == (404, "not_found")

        # Silences: validated matchers and duration; a created one is listed.
        silence = {"matchers": 'venue="sim", rule=~"health-.*"', "duration": 600,
                   "created_by": "ops", "comment": "maintenance"}
        for change, field in (({"matchers": "venue"}, "matchers"),
                              ({"matchers": 'rule=~"("'}, "matchers"),
                              ({"duration": 0}, "duration"),
                              ({"duration": "600"}, "duration"),
                              ({"created_by": ""}, "created_by")):
            status, body = call(base, "POST", "/silences", {**silence, **change})
            assert status == 422 and body["error"]["field"] == field, (change, body)
        status, body = call(base, "POST", "/silences", {"duration": 5, "created_by": "x"})
        assert (status, body["error"]["field"]) == (422, "matchers")
        assert call(base, "GET", "/silences")[1] == {"silences": []}
        status, created = call(base, "POST", "/silences", silence)
        assert status == 201, created
        assert created["ends_at"] - created["starts_at"] == 600
        assert [(m["name"], m["op"], m["value"]) for m in created["matchers"]] == [
            ("venue", "=", "sim"), ("rule", "=~", "health-.*")]
        conforms(document, "post", "/silences", 201, created)
        status, silences = call(base, "GET", "/silences")
        assert [s["id"] for s in silences["silences"]] == [created["id"]]
        conforms(document, "get", "/silences", 200, silences)
        status, notifications = call(base, "GET", "/notifications?limit=10")
        assert status == 200
        conforms(document, "get", "/notifications", 200, notifications)
        status, body = call(base, "GET", "/alerts?limit=0")
        assert (status, body["error"]["field"]) == (400, "limit")
        status, body = call(base, "GET", "/alerts?include_resolved=yes")
        assert (status, body["error"]["field"]) == (400, "include_resolved")
