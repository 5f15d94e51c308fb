"""A circuit breaker around code outside the actor system: `GuardedBreaker.protect` as a
decorator on a plain ccxt call. The local venue fails every ticker request (503): after a few
failures the breaker opens and refuses calls at once, without touching the venue; once the venue
recovers and the open period is over, a probe succeeds and the breaker closes.
Run: `python examples/circuit_breaker_decorator.py`."""

import json
import threading
import time
import urllib.request

import ccxt

from exchanges import create_client
from gateway.breaker import Breaker, BreakerConfig
from gateway.errors import CircuitOpenError
from gateway.guard import GuardedBreaker
from ironclad import configure_logging
from simulator import serve_in_thread


def faults(venue_url: str, rules: list[dict]) -> None:
    """Replace the venue's fault rules (its /_sim admin API)."""
    body = json.dumps({"seed": 1, "rules": rules}).encode()
    request = urllib.request.Request(venue_url + "/_sim/faults", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).close()


def main() -> int:
    configure_logging(level="WARNING")
    venue = serve_in_thread(port=0)
    try:
        client = create_client("binance", url=venue.url, api_key="demo-key",
                               secret="demo-secret", timeout_ms=3000)
        breaker = GuardedBreaker(Breaker("example/ticker", BreakerConfig(
            window_size=4, minimum_calls=4, failure_rate_threshold=0.5,
            half_open_probes=1, open_base=0.5, open_cap=0.5, jitter=0.0)))

        @breaker.protect
        def last_price(symbol: str) -> str:
            return client.fetch_ticker(symbol)["last"]

        print("healthy venue:", last_price("BTC/USDT"), "| breaker", breaker.metrics().state.value)

        faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "error_503"}])
        outcomes = []
        for _ in range(8):
            try:
                last_price("BTC/USDT")
                outcomes.append("ok")
            except CircuitOpenError:
                outcomes.append("refused")  # the function did not run: the venue saw nothing
            except ccxt.ExchangeNotAvailable:
                outcomes.append("503")
        print("failing venue:", " ".join(outcomes), "| breaker", breaker.metrics().state.value)

        faults(venue.url, [])
        deadline = time.monotonic() + 10
        while True:  # wait for the open period to end, then the probe closes the breaker
            try:
                price = last_price("BTC/USDT")
                break
            except CircuitOpenError:
                if time.monotonic() > deadline:
                    raise
                threading.Event().wait(0.1)
        print("recovered venue:", price, "| breaker", breaker.metrics().state.value)
        ok = "refused" in outcomes and breaker.metrics().state.value == "closed"
    finally:
        venue.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
