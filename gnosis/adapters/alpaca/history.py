"""``gnosis backtest --source alpaca``: history downloaded once into a Parquet cache, replayed.

Cache layout (``--cache-dir``, default ``~/.cache/gnosis``)::

    <cache>/<source>/bars/<feed>/<timeframe>/<SYMBOL>/<YYYY-MM-DD>.parquet   one session each
    <cache>/<source>/news/<SYMBOL>/<YYYY-MM-DD>.parquet

``<source>`` is ``alpaca`` for Alpaca's own data API and the host of ``ALPACA_DATA_URL``
otherwise (a simulator's bars never pass for Alpaca's). A session is cached only once it has
closed at the venue; a session without bars is cached as an empty file, so it is not asked
for again. When every session of the range is cached, nothing touches the network. Sessions
come from the exchange calendar; missing ones are downloaded per symbol in contiguous ranges
with a progress bar. Historical option chains are not served by Alpaca, so the Hedge agent
abstains on this source and says why; news headlines (when the agents run) come from the same
cache.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from gnosis.adapters.alpaca import rest
from gnosis.adapters.alpaca.calendar import NEW_YORK, MarketCalendar
from gnosis.adapters.alpaca.convert import bar_from_raw
from gnosis.adapters.alpaca.errors import AlpacaSetupError
from gnosis.adapters.alpaca.news import HeadlineBook
from gnosis.adapters.alpaca.settings import AlpacaSettings
from gnosis.data.quarantine import Quarantine
from gnosis.model.market import Headline, OptionsChain
from gnosis.model.types import NANOS_PER_SECOND, Bar, ns_to_datetime

DEFAULT_CACHE = Path.home() / ".cache" / "gnosis"
_TIMEFRAME = re.compile(r"^(\d+)(Min|Hour|Day)$")
_SECONDS = {"Min": 60, "Hour": 3600, "Day": 86_400}
BAR_COLUMNS = ["t", "o", "h", "l", "c", "v", "n", "vw"]
NEWS_COLUMNS = ["id", "created_at", "updated_at", "symbols", "headline", "summary", "source"]


def parse_timeframe(text: str) -> tuple[int, str, int]:
    """``5Min`` -> (5, "Min", 300 seconds)."""
    match = _TIMEFRAME.match(text.strip())
    if not match:
        raise AlpacaSetupError(f"--timeframe {text!r}: use e.g. 1Min, 5Min, 15Min, 1Hour, 1Day")
    amount, unit = int(match.group(1)), match.group(2)
    if amount < 1 or (unit == "Min" and amount > 59) or (unit == "Hour" and amount > 23) \
            or (unit == "Day" and amount != 1):
        raise AlpacaSetupError(f"--timeframe {text!r}: minutes 1-59, hours 1-23, days 1")
    return amount, unit, amount * _SECONDS[unit]


def source_name(settings: AlpacaSettings) -> str:
    if settings.data_url is None:
        return "alpaca"
    parsed = urlparse(settings.data_url)
    return re.sub(r"[^A-Za-z0-9.-]", "_", parsed.netloc or "custom")


@dataclass(slots=True)
class Download:
    bars: list[Bar]
    headlines: HeadlineBook | None
    sessions: int
    cached: int = 0
    downloaded: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)


class HistoryCache:
    """Bars and news of whole sessions as Parquet files (see the module docstring)."""

    def __init__(self, root: Path, source: str, feed: str, timeframe: str) -> None:
        self.root = Path(root).expanduser() / source
        self.feed = feed
        self.timeframe = timeframe

    def bars_path(self, symbol: str, day: date) -> Path:
        return self.root / "bars" / self.feed / self.timeframe / symbol / f"{day}.parquet"

    def news_path(self, symbol: str, day: date) -> Path:
        return self.root / "news" / symbol / f"{day}.parquet"

    @staticmethod
    def write(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
        import pandas as pd

        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        pd.DataFrame(rows, columns=columns).to_parquet(temporary, index=False)
        temporary.replace(path)  # a reader never sees half a file

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        import pandas as pd

        frame = pd.read_parquet(path)
        return [dict(row) for row in frame.to_dict(orient="records")]


def _sessions(calendar: MarketCalendar, start: date, end: date) -> list[tuple[date, int, int]]:
    """(New York date, open ns, close ns) of every session from ``start`` to ``end``."""
    out = []
    for open_ns, close_ns in calendar.sessions():
        day = ns_to_datetime(open_ns).astimezone(NEW_YORK).date()
        if start <= day <= end:
            out.append((day, open_ns, close_ns))
    return out


def _ranges(days: Sequence[tuple[date, int, int]]) -> Iterator[list[tuple[date, int, int]]]:
    """Contiguous runs (in session order) of the sessions to download, at most 20 each."""
    run: list[tuple[date, int, int]] = []
    for item in days:
        run.append(item)
        if len(run) == 20:
            yield run
            run = []
    if run:
        yield run


def download(settings: AlpacaSettings, symbols: Sequence[str], start: date, end: date, *,
             timeframe: str = "1Min", cache_dir: Path | None = None, news: bool = False,
             progress: bool = True) -> Download:
    """The bars (and news) of ``symbols`` over the sessions from ``start`` to ``end``."""
    amount, unit, interval_s = parse_timeframe(timeframe)
    if end < start:
        raise AlpacaSetupError(f"--end {end} is before --start {start}")
    calendar = MarketCalendar()
    sessions = _sessions(calendar, start, end)
    if not sessions:
        raise AlpacaSetupError(f"no trading session between {start} and {end}")
    cache = HistoryCache(cache_dir or DEFAULT_CACHE, source_name(settings),
                         settings.tuning.data_feed, timeframe)
    wanted = [(s, day) for s in symbols for day, _o, _c in sessions]
    missing_bars = [(s, d) for s, d in wanted if not cache.bars_path(s, d).is_file()]
    missing_news = [(s, d) for s, d in wanted
                    if news and not cache.news_path(s, d).is_file()]
    result = Download([], HeadlineBook() if news else None, len(sessions))
    if missing_bars or missing_news:
        _fill_cache(settings, cache, sessions, missing_bars, missing_news, amount, unit,
                    progress, result)
    quarantine = Quarantine()
    for symbol in symbols:
        for day, _open, _close in sessions:
            path = cache.bars_path(symbol, day)
            rows = HistoryCache.read(path) if path.is_file() else []
            for row in rows:
                bar = bar_from_raw(symbol, _clean(row), quarantine, interval_s)
                if bar is not None:
                    result.bars.append(bar)
            if news and result.headlines is not None:
                news_path = cache.news_path(symbol, day)
                for row in HistoryCache.read(news_path) if news_path.is_file() else []:
                    result.headlines.add(int(row["id"]), int(row["created_at"]),
                                         int(row["updated_at"]),
                                         str(row["symbols"]).split(","), str(row["headline"]),
                                         str(row["summary"] or ""), str(row["source"] or ""))
    result.bars.sort(key=lambda b: (b.ts_event, b.symbol))
    result.cached = len(wanted) - len(missing_bars)
    result.quarantined = dict(quarantine.counts)
    return result


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """A Parquet row back into Alpaca's record shape (pandas NaN/NA as None)."""
    out = {}
    for key, value in row.items():
        try:
            missing = value is None or value != value  # NaN is not equal to itself
        except TypeError:  # pandas NA refuses comparisons
            missing = True
        out[key] = None if missing else value
    return out


def _fill_cache(settings: AlpacaSettings, cache: HistoryCache,
                sessions: list[tuple[date, int, int]], missing_bars: list[tuple[str, date]],
                missing_news: list[tuple[str, date]], amount: int, unit: str, progress: bool,
                result: Download) -> None:
    from alpaca.data.requests import NewsRequest, StockBarsRequest
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
    from tqdm import tqdm

    from gnosis.adapters.alpaca.calendar import VenueClock

    now = VenueClock(settings.trading_client()).read().now_ns
    data = settings.stock_data_client(raw=True)
    news_client = settings.news_client(raw=True) if missing_news else None
    frame = TimeFrame(amount, {"Min": TimeFrameUnit.Minute, "Hour": TimeFrameUnit.Hour,
                               "Day": TimeFrameUnit.Day}[unit])
    by_day = {day: (open_ns, close_ns) for day, open_ns, close_ns in sessions}
    jobs: list[tuple[str, str, list[tuple[date, int, int]]]] = []
    for kind, missing in (("bars", missing_bars), ("news", missing_news)):
        for symbol in sorted({s for s, _d in missing}):
            days = [(d, *by_day[d]) for s, d in missing if s == symbol]
            days.sort()
            jobs += [(kind, symbol, run) for run in _ranges(days)]
    bar = tqdm(total=sum(len(run) for _k, _s, run in jobs), unit="session",
               desc="downloading from Alpaca", disable=not progress, file=sys.stderr)
    try:
        for kind, symbol, run in jobs:
            first, last = run[0][1], run[-1][2]
            if kind == "bars":
                raw = rest.call("download historical bars", data.get_stock_bars,
                                StockBarsRequest(symbol_or_symbols=[symbol], timeframe=frame,
                                                 start=ns_to_datetime(first),
                                                 end=ns_to_datetime(min(last, now)),
                                                 feed=_feed(settings))) or {}
                records = raw.get(symbol) or []
                _store(cache, symbol, run, records, now, result, news=False)
            else:
                assert news_client is not None
                raw = rest.call("download news", news_client.get_news,
                                NewsRequest(symbols=symbol, start=ns_to_datetime(first),
                                            end=ns_to_datetime(min(last, now)),
                                            sort="asc")) or {}
                _store(cache, symbol, run, raw.get("news") or [], now, result, news=True)
            bar.update(len(run))
    finally:
        bar.close()


def _store(cache: HistoryCache, symbol: str, run: list[tuple[date, int, int]],
           records: list[Any], now: int, result: Download, *, news: bool) -> None:
    from gnosis.adapters.alpaca.convert import timestamp_ns

    per_day: dict[date, list[dict[str, Any]]] = {day: [] for day, _o, _c in run}
    for record in records:
        try:
            when = timestamp_ns(record["created_at"] if news else record["t"])
        except (KeyError, TypeError, ValueError):
            continue
        day = ns_to_datetime(when).astimezone(NEW_YORK).date()
        if day not in per_day:
            continue
        if news:
            per_day[day].append({
                "id": int(record["id"]), "created_at": when,
                "updated_at": timestamp_ns(record.get("updated_at") or record["created_at"]),
                "symbols": ",".join(record.get("symbols") or [symbol]),
                "headline": str(record.get("headline") or ""),
                "summary": str(record.get("summary") or ""),
                "source": str(record.get("source") or "")})
        else:
            per_day[day].append({k: record.get(k) for k in BAR_COLUMNS})
    for day, _open, close in run:
        if close > now:
            continue  # the session has not closed at the venue yet: never cache a partial day
        if news:
            cache.write(cache.news_path(symbol, day), per_day[day], NEWS_COLUMNS)
        else:
            rows = [{**row, "t": str(row["t"])} for row in per_day[day]]
            cache.write(cache.bars_path(symbol, day), rows, BAR_COLUMNS)
            result.downloaded += 1


def _feed(settings: AlpacaSettings) -> Any:
    from alpaca.data.enums import DataFeed

    return DataFeed(settings.tuning.data_feed)


class CachedNews:
    """``NewsProvider`` over downloaded headlines (both the (after, until] and the bar-start
    signatures, as ``AlpacaNews``)."""

    __slots__ = ("book", "interval_s")

    def __init__(self, book: HeadlineBook, interval_s: int) -> None:
        self.book = book
        self.interval_s = interval_s

    def headlines(self, symbol: str, after_ns: int, until_ns: int | None = None
                  ) -> Sequence[Headline]:
        if until_ns is None:
            start = after_ns
            after_ns, until_ns = start - 1, start + self.interval_s * NANOS_PER_SECOND - 1
        return self.book.between(symbol, after_ns, until_ns)


class NoHistoricalChains:
    """Alpaca serves option chain snapshots of now only: a backtest has none, and says so."""

    __slots__ = ()

    def chain(self, symbol: str, spot: float, ts: int) -> OptionsChain | None:
        return None

    def missing_reason(self, symbol: str) -> str:
        return "no options data: Alpaca serves no historical option chains"


def backtest_source(args: Any, config: Any) -> dict[str, Any]:
    """What ``gnosis backtest --source alpaca`` replays: the bars and the agents' inputs."""
    from gnosis.bootstrap import SideInputs
    from gnosis.data.replay import ReplayFeed, ReplayResult

    if not args.start or not args.end:
        raise AlpacaSetupError("--source alpaca needs --start and --end (YYYY-MM-DD)")
    try:
        start, end = date.fromisoformat(args.start), date.fromisoformat(args.end)
    except ValueError:
        raise AlpacaSetupError("--start/--end must be dates like 2024-01-02") from None
    settings = AlpacaSettings.from_config(config)
    agents = config.strategy.name == "agents"
    timeframe = args.timeframe or "1Min"
    interval_s = parse_timeframe(timeframe)[2]
    got = download(settings, config.market.symbols, start, end, timeframe=timeframe,
                   cache_dir=args.cache_dir, news=agents and config.alpaca.news,
                   progress=not (args.json or args.no_progress) and sys.stderr.isatty())
    if not got.bars:
        raise AlpacaSetupError(f"Alpaca has no {timeframe} bars of "
                               f"{','.join(config.market.symbols)} from {start} to {end}")
    symbols = tuple(sorted({b.symbol for b in got.bars}))
    feed = ReplayFeed(ReplayResult(got.bars, symbols, sum(got.quarantined.values()),
                                   len(got.bars), got.quarantined))
    news = CachedNews(got.headlines, interval_s) if got.headlines is not None else None
    described: dict[str, Any] = {
        "options": "none (Alpaca serves no historical option chains: hedge abstains)",
        "news": ({"source": "Alpaca news (cached)", "headlines": got.headlines.count()}
                 if got.headlines is not None else "none (sentiment on price and volume only)"),
        "cache": {"sessions": got.sessions, "cached": got.cached,
                  "downloaded": got.downloaded}}
    return {"bars": got.bars, "feed": feed, "interval_s": interval_s,
            "inputs": SideInputs(options=NoHistoricalChains(), news=news),
            "described": described, "quarantined": got.quarantined}
