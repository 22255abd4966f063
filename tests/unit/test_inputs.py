"""News and options files: their formats, quarantine, refusals, and causal, indexed look-ups."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnosis.data.files import InputError
from gnosis.data.news import load_news
from gnosis.data.options import load_options
from gnosis.model.market import CALL, PUT
from gnosis.model.types import NANOS_PER_SECOND

S = NANOS_PER_SECOND
T0 = 1_704_205_800 * S  # 2024-01-02 14:30:00 UTC


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


NEWS = """created_at,symbols,headline,summary,source
2024-01-02T14:30:30Z,"AAPL,MSFT",Apple and Microsoft rally,big tech up,benzinga
2024-01-02T14:31:00Z,AAPL,Apple at the close of the first minute,,benzinga
2024-01-02T09:32:10-05:00,"SPY QQQ",Index funds see inflows,,
2024-01-02T14:33:00Z,aapl,Apple slides,,
not a time,AAPL,Unparseable,,
2024-01-02T14:34:00Z,,No symbols,,
2024-01-02T14:35:00Z,AAPL,,,
"""


def test_news_are_indexed_by_symbol_and_publication_time(tmp_path: Path) -> None:
    news = load_news(write(tmp_path, NEWS))
    assert news.symbols == ("AAPL", "MSFT", "QQQ", "SPY")
    assert news.reasons == {"unparseable created_at": 1, "no symbols": 1, "empty headline": 1}
    assert news.rows == 7 and news.count == 4

    def texts(symbol: str, after: int, until: int) -> list[str]:
        return [h.headline for h in news.headlines(symbol, after, until)]

    # the bar 14:30-14:31 sees what was published by its close, nothing later
    assert texts("AAPL", T0, T0 + 60 * S) == ["Apple and Microsoft rally",
                                              "Apple at the close of the first minute"]
    assert texts("AAPL", T0 + 60 * S, T0 + 120 * S) == []
    assert texts("AAPL", T0 + 120 * S, T0 + 180 * S) == ["Apple slides"]
    assert texts("MSFT", T0, T0 + 60 * S) == ["Apple and Microsoft rally"]
    assert texts("SPY", T0 + 120 * S, T0 + 180 * S) == ["Index funds see inflows"]
    assert texts("TSLA", 0, 2 * T0) == []
    first = news.headlines("AAPL", T0, T0 + 60 * S)[0]
    assert first.symbols == ("AAPL", "MSFT") and first.summary == "big tech up"
    assert first.source == "benzinga" and first.ts_event == T0 + 30 * S


@pytest.mark.parametrize(("text", "tz", "message"), [
    ("created_at,symbols,headline\n", None, "no rows below the header"),
    ("created_at,headline\n2024-01-02T14:30:00Z,x\n", None, "missing column(s) symbols"),
    ("created_at,symbols,headline\n2024-01-02 09:30,AAPL,x\n", None, "no UTC offset.*--tz"),
    ("created_at,symbols,headline\nnope,AAPL,x\n", None, "none of its 1 rows"),
])
def test_unusable_news_files_are_refused(tmp_path: Path, text: str, tz: str | None,
                                         message: str) -> None:
    with pytest.raises(InputError, match=r"in.csv: .*" + message.replace("(", r"\(")
                       .replace(")", r"\)")):
        load_news(write(tmp_path, text), tz=tz)


def test_naive_news_times_are_read_in_the_zone_given(tmp_path: Path) -> None:
    news = load_news(write(tmp_path, "created_at,symbols,headline\n2024-01-02 09:30:30,AAPL,x\n"),
                     tz="America/New_York")
    assert [h.ts_event for h in news.headlines("AAPL", T0, T0 + 60 * S)] == [T0 + 30 * S]


OPTIONS = """\
timestamp,underlying,symbol,expiration_date,type,strike_price,open_interest,implied_volatility,\
gamma,delta
2024-01-02T14:00:00Z,SPY,SPY240105C00470000,2024-01-05,call,470,1200,0.14,0.05,0.52
2024-01-02T14:00:00Z,SPY,SPY240105P00470000,2024-01-05,put,470,900,0.16,,
2024-01-02T14:30:30Z,SPY,SPY240105C00470000,2024-01-05,call,470,1300,0.15,,
2024-01-02T14:30:30Z,SPY,SPY240105P00465000,2024-01-05,PUT,465,800,0.17,,
2024-01-02T14:30:30Z,SPY,SPY240105X00465000,2024-01-05,straddle,465,800,0.17,,
2024-01-02T14:30:30Z,SPY,SPY240105C00475000,2024-01-05,call,475,-5,0.17,,
2024-01-02T14:30:30Z,SPY,SPY240105C00480000,2024-01-05,call,480,100,0,,
2024-01-02T14:30:30Z,SPY,SPY240105C00485000,someday,call,485,100,0.2,,
2024-01-02T14:30:30Z,SPY,SPY240105C00490000,2024-01-05,call,0,100,0.2,,
2024-01-02T14:30:30Z,SPY,SPY240105C00495000,2024-01-05,call,495,100,0.2,-1,
2024-01-02T14:30:30Z,SPY,SPY240105C00470000,2024-01-05,call,470,1,0.15,,
"""


def test_options_snapshots_serve_the_latest_one_taken_by_the_bars_close(tmp_path: Path) -> None:
    options = load_options(write(tmp_path, OPTIONS))
    assert options.underlyings == ("SPY",) and options.snapshots == 2
    assert options.reasons == {
        "type not call or put": 1, "missing or negative open interest": 1,
        "missing or non-positive implied volatility": 1, "unparseable expiration_date": 1,
        "missing or non-positive strike": 1, "negative or non-finite gamma": 1,
        "duplicate contract in a snapshot": 1,
    }
    assert options.chain("SPY", 470.0, T0 - 3_601 * S) is None  # before any snapshot
    early = options.chain("SPY", 470.0, T0)  # 14:30: the 14:00 snapshot
    assert early is not None and early.ts_event == T0 - 1_800 * S and early.spot == 470.0
    assert [(c.right, c.strike, c.open_interest, c.gamma) for c in early.contracts] == [
        (CALL, 470.0, 1200, 0.05), (PUT, 470.0, 900, None)]
    later = options.chain("SPY", 471.0, T0 + 60 * S)  # the bar's close, 14:31: 14:30:30
    assert later is not None and later.ts_event == T0 + 30 * S
    assert [(c.right, c.strike, c.open_interest) for c in later.contracts] == [
        (CALL, 470.0, 1300), (PUT, 465.0, 800)]
    # expiry is the close of the expiration date in New York: 2024-01-05 16:00 EST
    assert later.contracts[0].expiry_ts == 1_704_488_400 * S
    assert options.chain("QQQ", 400.0, T0) is None


def test_a_stale_snapshot_is_not_served(tmp_path: Path) -> None:
    options = load_options(write(tmp_path, OPTIONS), max_age_s=86_400)
    assert options.chain("SPY", 470.0, T0 + 86_400 * S) is not None
    assert options.chain("SPY", 470.0, T0 + 2 * 86_400 * S) is None


@pytest.mark.parametrize(("text", "message"), [
    (OPTIONS.splitlines()[0] + "\n", "no rows below the header"),
    ("timestamp,underlying,symbol\n2024-01-02T14:00:00Z,SPY,X\n", "missing column(s) "
     "expiration_date, type, strike_price, open_interest, implied_volatility"),
    (OPTIONS.splitlines()[0] + "\n2024-01-02 14:00,SPY,X,2024-01-05,call,470,1,0.2,,\n",
     "no UTC offset"),
    (OPTIONS.splitlines()[0] + "\n2024-01-02T14:00:00Z,SPY,X,2024-01-05,call,-1,1,0.2,,\n",
     "none of its 1 rows"),
])
def test_unusable_options_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=r"in.csv: .*" + message.replace("(", r"\(")
                       .replace(")", r"\)")):
        load_options(write(tmp_path, text))


def test_key_draw_is_unit_draw_of_the_joined_parts() -> None:
    from gnosis.core.hashing import key_draw, unit_draw

    for parts in [(7, "SPY", 1_704_205_800_000_000_000, "news"), (0, "QQQ", 451.0, 19_724),
                  ("x",), (1.5, None, -3)]:
        assert key_draw("|".join(map(str, parts))) == unit_draw(*parts)
        assert 0.0 <= key_draw("|".join(map(str, parts))) < 1.0
