"""Embed an Ironclad node: start it against the embedded local venue, ask the gatekeeper for a
ticker and a balance, print the replies, stop cleanly. Run: `python examples/embed.py`."""

import tempfile
from pathlib import Path

from actors import ReplySlot, call
from actors.protocol import Call
from ironclad import Config, HttpConfig, NodeConfig, build_node_spec, configure_logging
from messages.exchange import Category, ExchangeRequest, ExchangeResult
from supervisors import resolve, start_tree


def main() -> int:
    configure_logging(level="WARNING")
    with tempfile.TemporaryDirectory() as data_dir:  # no [venue] url: embedded venue, demo keys
        config = Config(node=NodeConfig(data_dir=Path(data_dir)), http=HttpConfig(port=0))
        tree = start_tree(build_node_spec(config))
        try:
            ticker = ExchangeRequest.new("sim", "fetch_ticker", ["BTC/USDT"],
                                         category=Category.MARKET_DATA, idempotent=True, timeout=5)
            slot = ReplySlot()  # the reply travels with the request; the gatekeeper never waits
            resolve("venue:sim/gatekeeper", timeout=5).tell(Call(ticker, slot))
            ticker_reply = slot.future.get(timeout=6)
            balance_reply = call(ExchangeRequest.new(  # the same, as one blocking call
                "sim", "fetch_balance", category=Category.TRADING, idempotent=True, timeout=5))
        finally:
            tree.stop()
    print("ticker:", ticker_reply.value["last"] if isinstance(ticker_reply, ExchangeResult)
          else ticker_reply)
    print("balance:", {k: v for k, v in balance_reply.value["total"].items() if v != "0"}
          if isinstance(balance_reply, ExchangeResult) else balance_reply)
    return 0 if all(isinstance(r, ExchangeResult) for r in (ticker_reply, balance_reply)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
