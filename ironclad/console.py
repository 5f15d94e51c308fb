"""The terminal status display (rich): a compact live table while the node runs, and a
progress line while the start-up reconciliation runs.

It is on only when stdout is a terminal and ``--no-console`` was not given. It reads the
health actor's latest poll (one bounded ask a second, from the main thread, which otherwise
only waits for a stop signal), and log lines are printed above the live table instead of
through it. :func:`render_status` is pure: the same view and time give the same table.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

__all__ = ["StatusConsole", "render_status"]

_STYLE = {"ok": "green", "closed": "green", "degraded": "yellow", "half_open": "yellow",
          "down": "bold red", "open": "bold red", "forced_open": "bold red"}


def _styled(text: str) -> Text:
    return Text(text, style=_STYLE.get(text, ""))


def render_status(view: Any, url: str | None, waited: float = 0.0) -> RenderableType:
    """The status table for ``view`` (the health actor's ``NodeStatusView``, or None before
    its first answer); ``waited`` is how long the node has been up, shown while the start-up
    reconciliation runs."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    if view is None:
        return Group(Spinner("dots", text=f"waiting for the first health poll… {waited:.0f}s"))
    report = view.report
    grid.add_row("node", Text.assemble(_styled(report.status.value), "  ", report.reason,
                                       "  ", (url or "", "cyan")))
    readings = view.readings
    for venue in readings.venues:
        breakers = Text()
        if isinstance(venue.breakers, tuple):
            for b in venue.breakers:
                breakers.append(f"{b.breaker} ")
                breakers.append_text(_styled(b.state))
                if b.open_for is not None:
                    breakers.append(f" ({b.open_for:.0f}s)")
                breakers.append("   ")
        else:
            breakers.append(f"unreadable: {venue.breakers.reason}")
        grid.add_row("breakers", breakers)
        pool = venue.pool
        grid.add_row("pool", f"unreadable: {pool.reason}" if not hasattr(pool, "queued") else
                     f"{pool.idle_workers}/{pool.known_workers} workers idle, queued "
                     f"md {pool.queued.get('market_data', 0)} tr {pool.queued.get('trading', 0)}"
                     f", submitted {pool.submitted}, overloaded {pool.overloaded}")
    trading, reconciliation = readings.trading, readings.reconciliation
    progress: RenderableType | None = None
    if trading is not None and hasattr(trading, "accepting"):
        if trading.accepting:
            line = f"accepting orders, {trading.open_transactions} in flight"
            if trading.overdue:
                line += f", {trading.overdue} overdue"
        else:
            line = f"not accepting orders: {trading.not_accepting_reason}"
            if "reconcil" in (trading.not_accepting_reason or ""):
                runs = getattr(reconciliation, "runs", 0)
                failure = getattr(reconciliation, "last_failure", None)
                progress = Spinner("dots", text=Text(
                    f"start-up reconciliation with the venue: {waited:.0f}s, "
                    f"{runs} run(s)" + (f"; last failure: {failure}" if failure else ""),
                    style="yellow"))
        grid.add_row("trading", line)
    if reconciliation is not None and hasattr(reconciliation, "runs"):
        age = reconciliation.last_success_age
        differences = ", ".join(f"{k} {n}" for k, n in
                                sorted(reconciliation.currency_differences.items()))
        grid.add_row("reconciled", ("never" if age is None else f"{age:.0f}s ago")
                     + (f" ({differences})" if differences else ""))
    alerts = readings.alerts
    if alerts is not None and hasattr(alerts, "active"):
        firing = sum(n for (_level, state), n in alerts.active.items() if state == "firing")
        detail = ", ".join(f"{n} {level} {state}"
                           for (level, state), n in sorted(alerts.active.items()))
        grid.add_row("alerts", Text(f"{firing} firing" + (f" ({detail})" if detail else ""),
                                    style="bold red" if firing else "green"))
    return Group(progress, grid) if progress is not None else grid


class StatusConsole:
    """The live display around the node's run loop: ``wrap`` the stop-wait function with it.

    Log lines go through :meth:`write_log` (pass it to ``configure_logging(stream=...)``), so
    they scroll above the table instead of tearing it.
    """

    def __init__(self, console: Console | None = None, refresh: float = 1.0,
                 ask_timeout: float = 0.5) -> None:
        self.console = console or Console(stderr=False)
        self._refresh = refresh
        self._ask_timeout = ask_timeout
        self._live: Live | None = None
        self._started = time.monotonic()
        self._next = 0.0
        self._url: str | None = None

    @staticmethod
    def wanted(disabled: bool) -> bool:
        """True when a live display makes sense: stdout is a terminal, not disabled."""
        return not disabled and sys.stdout.isatty()

    def write_log(self, message: str) -> None:
        """A loguru sink target: print the (already formatted, redacted) line above."""
        self.console.print(Text(message.rstrip("\n")), soft_wrap=True, highlight=False)

    def wrap(self, wait_for_stop: Callable[[float], bool]) -> Callable[[float], bool]:
        """``wait_for_stop`` that also redraws the display at most once per ``refresh``."""

        def wait(timeout: float) -> bool:
            now = time.monotonic()
            if now >= self._next:
                self._next = now + self._refresh
                self._draw()
            return wait_for_stop(timeout)

        return wait

    def _draw(self) -> None:
        if self._live is None:
            self._live = Live(console=self.console, auto_refresh=False, transient=False,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()
        self._live.update(render_status(self._read(), self._api_url(),
                                        time.monotonic() - self._started), refresh=True)

    def _read(self) -> Any:
        from actors.health import HEALTH, GetNodeStatus  # actors import ironclad: late
        from supervisors import ask

        try:
            return ask(HEALTH, GetNodeStatus(), timeout=self._ask_timeout)
        except Exception:  # noqa: BLE001 - the display never takes the node down
            return None

    def _api_url(self) -> str | None:
        if self._url is None:
            from actors.control_api import CONTROL_API, ServerAddress
            from supervisors import ask

            try:
                host, port = ask(CONTROL_API, ServerAddress(), timeout=self._ask_timeout)
                self._url = f"http://{host}:{port}/"
            except Exception:  # noqa: BLE001 - not up yet: asked again at the next redraw
                return None
        return self._url

    def close(self) -> None:
        """Stop the live display (the last table stays on screen)."""
        if self._live is not None:
            self._live.stop()
            self._live = None
