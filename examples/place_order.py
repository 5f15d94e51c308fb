"""Place, repeat and cancel an order through the control API, as an outside program would.

A node starts in this process against the embedded local venue; everything after that is
plain HTTP with JSON (decimal strings for amounts and prices). Repeating POST /orders with the
same client_id returns the same order (200) instead of placing a second one: that is how a
caller recovers from a timeout. Run: `python examples/place_order.py`."""

import json
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from actors.control_api import CONTROL_API, ServerAddress
from ironclad import Config, HttpConfig, NodeConfig, build_node_spec, configure_logging
from supervisors import ask, start_tree


def api(base: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(check, timeout: float = 20.0):  # noqa: ANN001, ANN201 - a tiny example helper
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        threading.Event().wait(0.1)
    return value


def main() -> int:
    configure_logging(level="WARNING")
    with tempfile.TemporaryDirectory() as data_dir:
        tree = start_tree(build_node_spec(Config(node=NodeConfig(data_dir=Path(data_dir)),
                                                 http=HttpConfig(port=0))))
        try:
            host, port = ask(CONTROL_API, ServerAddress(), timeout=10)
            base = f"http://{host}:{port}"
            # new orders wait for the start-up reconciliation (503 not_accepting_orders)
            wait_for(lambda: (api(base, "GET", "/status")[1].get("trading") or {})
                     .get("accepting"))
            order = {"client_id": "example-1", "symbol": "BTC/USDT", "side": "buy",
                     "type": "limit", "amount": "0.01", "price": "30000"}
            status, placed = api(base, "POST", "/orders", order)
            print("placed:", status, placed["id"], placed["state"])
            status, again = api(base, "POST", "/orders", order)  # e.g. after a timeout
            print("repeated:", status, again["id"], "(same order, nothing placed)")
            opened = wait_for(lambda: (o := api(base, "GET", f"/orders/{placed['id']}")[1])
                              ["state"] == "open" and o)
            print("at the venue:", opened["state"], "as", opened["client_order_id"])
            status, _ = api(base, "DELETE", f"/orders/{placed['id']}")
            canceled = wait_for(lambda: (o := api(base, "GET", f"/orders/{placed['id']}")[1])
                                ["state"] == "canceled" and o)
            print("canceled:", status, canceled["state"])
            balances = api(base, "GET", "/balances")[1]["balances"]
            usdt = next(b for b in balances if b["currency"] == "USDT")
            print("USDT:", usdt["available"], "available,", usdt["reserved"], "reserved")
            ok = again["id"] == placed["id"] and canceled["state"] == "canceled"
        finally:
            tree.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
