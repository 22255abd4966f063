"""`gnosis backtest` on files, in-process: refusals are one line and exit 2, warm-up is folded in
and not counted, side inputs are real or absent, and a symbol's name never changes a decision."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from gnosis.cli import main
from gnosis.data.replay import write_bars_csv
from tests.conftest import random_walk_bars

ASML = Path(__file__).parent.parent / "data" / "asml_daily.csv"
HEADER = "timestamp,open,high,low,close,volume"


def backtest(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["backtest", "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, out, err


def summary(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code, out, err = backtest(capsys, "--json", *args)
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def minute_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 one-minute bars of one symbol, without a symbol column."""
    path = tmp_path_factory.mktemp("bars") / "walk.csv"
    bars = random_walk_bars(1_500, seed=4)
    write_bars_csv(bars, path, style="plain")
    text = path.read_text().splitlines()
    # drop the symbol column: the file names no symbol, --symbol does
    rows = [",".join(line.split(",")[1:]) for line in text]
    path.write_text("\n".join(rows) + "\n")
    return path


def lines(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


MINUTES = [f"2024-01-02T14:{m:02d}:00Z" for m in range(30, 50)]


def bar_rows(stamps: list[str], extra: str = "") -> str:
    return "\n".join([HEADER + (",symbol" if extra else "")]
                     + [f"{s},10,10.1,9.9,10,100{extra}" for s in stamps]) + "\n"


OPTIONS_HEADER = ("timestamp,underlying,symbol,expiration_date,type,strike_price,open_interest,"
                  "implied_volatility")
REFUSALS = [
    # (case, files {name: text}, arguments ({name} is that file's path), what stderr says)
    ("naive times without --tz", {"b.csv": bar_rows([m[:-1] for m in MINUTES])},
     ["--data", "{b.csv}", "--symbol", "X"], "have no UTC offset"),
    ("header only", {"b.csv": HEADER + "\n"}, ["--data", "{b.csv}", "--symbol", "X"],
     "no rows below the header"),
    ("--symbol against the symbol column", {"b.csv": bar_rows(MINUTES, ",SPY")},
     ["--data", "{b.csv}", "--symbol", "QQQ"], "--symbol QQQ contradicts"),
    ("epoch unit unknowable", {"b.csv": bar_rows(["1704205800", "1704205860000"])},
     ["--data", "{b.csv}", "--symbol", "X"], "--epoch-unit s|ms|us|ns"),
    ("a bad --epoch-unit", {"b.csv": bar_rows(MINUTES)},
     ["--data", "{b.csv}", "--symbol", "X", "--epoch-unit", "days"], "--epoch-unit days"),
    ("mixed intervals", {"b.csv": bar_rows([*MINUTES[:5], "2024-01-02T14:35:30Z"])},
     ["--data", "{b.csv}", "--symbol", "X"], "not whole multiples of the 1Min interval"),
    ("an unknown zone", {"b.csv": bar_rows(MINUTES)},
     ["--data", "{b.csv}", "--symbol", "X", "--tz", "Mars/Olympus"], "unknown time zone"),
    ("a finer timeframe", {"b.csv": bar_rows(MINUTES)},
     ["--data", "{b.csv}", "--symbol", "X", "--timeframe", "30s"],
     "cannot aggregate 1Min bars into 30s bars"),
    ("an unreadable timeframe", {"b.csv": bar_rows(MINUTES)},
     ["--data", "{b.csv}", "--symbol", "X", "--timeframe", "fortnightly"], "timeframe"),
    ("--options on the synthetic market", {"o.csv": OPTIONS_HEADER + "\n"},
     ["--synthetic", "--bars", "10", "--options", "{o.csv}"], "--options and --news"),
    ("--sim-inputs on a file", {"b.csv": bar_rows(MINUTES)},
     ["--data", "{b.csv}", "--symbol", "X", "--sim-inputs", "news"], "--sim-inputs"),
    ("an unknown --sim-inputs", {}, ["--synthetic", "--bars", "10", "--sim-inputs", "rumours"],
     "--sim-inputs rumours"),
    ("--timeframe on the synthetic market", {},
     ["--synthetic", "--bars", "10", "--timeframe", "5Min"], "--timeframe"),
    ("--tz on the synthetic market", {},
     ["--synthetic", "--bars", "10", "--tz", "America/New_York"], "--tz and --epoch-unit"),
    ("an options file without columns", {"b.csv": bar_rows(MINUTES), "o.csv": "a,b\n1,2\n"},
     ["--data", "{b.csv}", "--symbol", "X", "--options", "{o.csv}"], "o.csv: missing column"),
    ("options for other symbols", {"b.csv": bar_rows(MINUTES), "o.csv": OPTIONS_HEADER + (
        "\n2024-01-02T14:00:00Z,SPY,SPY240105C00470000,2024-01-05,call,470,10,0.2\n")},
     ["--data", "{b.csv}", "--symbol", "X", "--options", "{o.csv}"],
     "o.csv: no snapshots of X (it has SPY)"),
    ("news about other symbols", {"b.csv": bar_rows(MINUTES), "n.csv": (
        "created_at,symbols,headline\n2024-01-02T14:00:00Z,SPY,Stocks rally\n")},
     ["--data", "{b.csv}", "--symbol", "X", "--news", "{n.csv}"],
     "n.csv: no headlines about X (it has SPY)"),
    ("a warm-up longer than the file", {"b.csv": bar_rows(MINUTES)},
     ["--data", "{b.csv}", "--symbol", "X", "--warmup-bars", "20"],
     "--warmup-bars 20 leaves no bar to trade"),
]


@pytest.mark.parametrize(("case", "files", "args", "message"), REFUSALS,
                         ids=[c[0] for c in REFUSALS])
def test_every_refusal_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, files: dict[str, str],
    args: list[str], message: str,
) -> None:
    paths = {name: str(lines(tmp_path, name, text)) for name, text in files.items()}
    code, out, err = backtest(capsys, *[paths.get(a[1:-1], a) for a in args])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("gnosis backtest: ") and message in err, err


def decisions(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> list[dict]:
    out = tmp_path / "decisions.csv"
    summary(capsys, *args, "--decisions", str(out))
    with out.open() as handle:
        return list(csv.DictReader(handle))


def test_the_same_file_under_two_symbol_names_gives_identical_decisions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], minute_file: Path,
) -> None:
    spy = decisions(capsys, tmp_path, "--data", str(minute_file), "--symbol", "SPY")
    other = decisions(capsys, tmp_path, "--data", str(minute_file), "--symbol", "ZZZT")
    assert {r.pop("symbol") for r in spy} == {"SPY"}
    assert {r.pop("symbol") for r in other} == {"ZZZT"}
    assert spy == other
    assert {r["decision"] for r in spy} == {"-1", "0", "1"}  # it decided both ways


def test_the_warm_up_is_folded_in_and_not_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], minute_file: Path,
) -> None:
    rows = decisions(capsys, tmp_path, "--data", str(minute_file), "--symbol", "X",
                     "--warmup-bars", "100")
    assert len(rows) == 1_400
    assert rows[0]["timestamp"] == "2024-01-02T16:10:00Z"  # bar 101
    assert all(r["regime"] != "warming_up" for r in rows)  # the regime was formed in warm-up
    result = summary(capsys, "--data", str(minute_file), "--symbol", "X", "--warmup-bars", "100")
    assert (result["bars"], result["warmup_bars"], result["interval"]) == (1_400, 100, "1Min")
    assert sum(result["regime_counts"].values()) == 1_400
    default = summary(capsys, "--data", str(minute_file), "--symbol", "X")
    # enough for the HMM's first fit at 1Min (600 bars), at most a third of the file
    assert (default["warmup_bars"], default["bars"]) == (500, 1_000)


def test_a_timeframe_aggregates_the_file(capsys: pytest.CaptureFixture[str],
                                         minute_file: Path) -> None:
    result = summary(capsys, "--data", str(minute_file), "--symbol", "X", "--timeframe", "5Min",
                     "--warmup-bars", "60")
    assert (result["interval"], result["file_interval"]) == ("5Min", "1Min")
    assert result["bars"] + result["warmup_bars"] == 1_500 // 5


def test_a_daily_file_is_read_as_daily_bars(capsys: pytest.CaptureFixture[str]) -> None:
    result = summary(capsys, "--data", str(ASML), "--symbol", "ASML")
    # 200 bars to the first fit, which filters from the next daily bar on
    assert (result["interval"], result["warmup_bars"]) == ("1D", 201)
    assert result["bars"] == 798 - 201
    regimes = result["regime_counts"]
    assert "warming_up" not in regimes and len(regimes) >= 3, regimes
    assert regimes.get("volatile", 0) < 0.8 * result["bars"], regimes
    hedge = result["votes"]["hedge"]
    assert hedge["abstain"] == result["bars"]  # no options file: no chain
    markov = result["votes"].get("markov", {})
    assert sum(markov.get(k, 0) for k in ("-1", "0", "1")) > 0  # the HMM was fitted
    assert result["inputs"]["options"].startswith("none")


def test_options_and_news_files_reach_the_agents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], minute_file: Path,
) -> None:
    options = ["timestamp,underlying,symbol,expiration_date,type,strike_price,open_interest,"
               "implied_volatility"]
    for hour in range(14, 18):
        for strike in range(440, 461):
            for right, oi in (("call", 2_000), ("put", 300)):
                options.append(f"2024-01-02T{hour}:00:00Z,X,X{strike}{right[0]},2024-01-05,"
                               f"{right},{strike},{oi * (3 if strike == 450 else 1)},0.15")
    news = ["created_at,symbols,headline"] + [
        f"2024-01-02T{h}:{m:02d}:30Z,X,X soars on great earnings and a strong rally"
        for h in range(15, 20) for m in range(0, 60, 7)]
    opt_path = lines(tmp_path, "opt.csv", "\n".join(options) + "\n")
    news_path = lines(tmp_path, "news.csv", "\n".join(news) + "\n")
    rows = decisions(capsys, tmp_path, "--data", str(minute_file), "--symbol", "X",
                     "--options", str(opt_path), "--news", str(news_path))
    hedge = Counter(r["hedge_signal"] for r in rows)
    assert hedge["abstain"] < len(rows) and hedge["-1"] + hedge["1"] > 0, hedge
    result = summary(capsys, "--data", str(minute_file), "--symbol", "X",
                     "--options", str(opt_path), "--news", str(news_path))
    assert result["inputs"]["options"] == {"file": str(opt_path), "snapshots": 4,
                                           "contracts": 4 * 21 * 2, "quarantined": {}}
    assert result["inputs"]["news"]["headlines"] == len(news) - 1
    plain = summary(capsys, "--data", str(minute_file), "--symbol", "X")
    assert result["votes"]["sentiment"] != plain["votes"]["sentiment"]  # the news counted


def test_the_synthetic_market_runs_with_or_without_its_simulated_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["--synthetic", "--bars", "2000", "--seed", "7"]
    default = decisions(capsys, tmp_path, *base)
    assert decisions(capsys, tmp_path, *base, "--sim-inputs", "options,news") == default
    bare = summary(capsys, *base, "--sim-inputs", "none")
    assert bare["votes"]["hedge"]["abstain"] == 2_000
    assert bare["inputs"] == {"options": "none (--sim-inputs)", "news": "none (--sim-inputs)"}
    news_only = decisions(capsys, tmp_path, *base, "--sim-inputs", "news")
    assert all(r["hedge_signal"] == "abstain" for r in news_only)
    assert news_only != default
