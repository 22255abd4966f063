"""A restarted bot's dashboard starts from its journal, not from an empty page."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnosis.bootstrap import build_system, run_identity, synthetic_market
from gnosis.cli import main
from gnosis.core.config import load_config
from gnosis.dashboard import launch
from gnosis.dashboard.publisher import iso


def test_a_restarted_dashboard_starts_with_the_journals_trades_and_equity(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    assert main(["run", "--state-dir", str(state), "--strategy", "sma", "--warmup-days", "1",
                 "--days", "3", "--speed", "1e9", "--max-bars", "500", "--memory", "off",
                 "--quiet"]) == 0
    capsys.readouterr()
    config = load_config(market={"warmup_days": 1, "days": 3}, strategy={"name": "sma"},
                         state_dir=state)
    market = synthetic_market(config, history=True)
    system = build_system(config, market, market=market, state_dir=state,
                          identity=run_identity(config, "synthetic"))
    assert system.store is not None
    try:
        journal = system.store.rows("trades")
        equity = system.store.rows("equity")
        attached = launch.attach(system.engine, serve_web=False)
        snapshot = attached.publisher.state.snapshot()
        attached.close()
    finally:
        system.store.close()
    assert len(journal) > 5 and snapshot["trades_total"] == len(journal)
    newest_first = list(reversed(journal))[:20]
    assert [(t["symbol"], t["exit_ts"], t["pnl"]) for t in snapshot["trades"]] == \
        [(t["symbol"], iso(t["exit_ts"]), t["pnl"]) for t in newest_first]
    curve = snapshot["equity_curve"]
    assert curve and curve[-1]["value"] == pytest.approx(equity[-1]["equity"])
    assert curve[-1]["time"] == equity[-1]["ts_event"] // 1_000_000_000
