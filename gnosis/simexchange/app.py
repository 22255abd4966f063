"""HTTP and WebSocket routes of the exchange (Starlette): thin, Alpaca's paths and shapes.

Trading API under ``/v2`` (account, positions, orders, clock, assets, option contracts), market
data under ``/v2/stocks`` and ``/v1beta1`` (bars, news, option chain snapshots), streams at
``/v2/{iex,sip,test}``, ``/v1beta1/news`` and ``/stream``, and the simulator's own control API
under ``/_sim`` (status, faults, clock). REST requests need ``APCA-API-KEY-ID`` and
``APCA-API-SECRET-KEY`` (any non-empty pair unless the exchange was given keys); bad input is
answered with Alpaca's error JSON ``{"code", "message"}`` and never reaches the core half-parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from gnosis.simexchange.bars import bars_page, parse_limit, parse_timeframe
from gnosis.simexchange.exchange import SimExchange
from gnosis.simexchange.faults import FaultError, http_error_body, parse_fault
from gnosis.simexchange.market import exchange_of, greeks, occ_symbol, option_price
from gnosis.simexchange.orders import parse_order_request
from gnosis.simexchange.wire import (
    WireError,
    bad_request,
    eastern_date,
    money,
    name_uuid,
    not_found,
    parse_time,
    rfc3339,
    rfc3339_eastern,
    unprocessable,
)

log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]
RISK_FREE = 0.04  # as the Hedge agent assumes


def _error(exc: WireError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


class AlpacaGate:
    """ASGI middleware: injected HTTP faults first, then Alpaca's key headers on REST paths."""

    def __init__(self, app: ASGIApp, exchange: SimExchange) -> None:
        self.app = app
        self.exchange = exchange

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        fault = self.exchange.faults.http_fault_for(path)
        if fault is not None:
            response: Response = JSONResponse(http_error_body(fault.status),
                                              status_code=fault.status)
            await response(scope, receive, send)
            return
        if not path.startswith("/_sim"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope.get("headers", [])}
            if not self.exchange.hub.credentials.accepts(headers.get("apca-api-key-id"),
                                                         headers.get("apca-api-secret-key")):
                response = JSONResponse({"code": 40110000, "message": "request is not authorized"},
                                        status_code=401)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _route(handler: Callable[[Request, SimExchange], Awaitable[Any]], exchange: SimExchange,
           status: int = 200) -> Handler:
    """Wrap a handler: step the exchange to now, turn ``WireError`` into Alpaca's error JSON
    and anything unexpected into a 500 that is logged, never a crash."""

    async def endpoint(request: Request) -> Response:
        try:
            exchange.step()
            result = await handler(request, exchange)
        except WireError as exc:
            return _error(exc)
        except Exception:  # a bug: answer 500 as Alpaca would, keep serving
            log.exception("%s %s failed", request.method, request.url.path)
            return JSONResponse({"code": 50010000, "message": "internal server error"},
                                status_code=500)
        if isinstance(result, Response):
            return result
        return JSONResponse(result, status_code=status)

    return endpoint


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise unprocessable("request body is not valid JSON") from None


def _symbols(text: str | None, what: str = "symbols") -> list[str]:
    symbols = [s.strip().upper() for s in (text or "").split(",") if s.strip()]
    if not symbols:
        raise bad_request(f"{what} is required")
    return symbols


# -- trading ------------------------------------------------------------------------------------
async def get_account(request: Request, ex: SimExchange) -> Any:
    return ex.book.account(ex.account_id, ex.created_at)


async def get_clock(request: Request, ex: SimExchange) -> Any:
    now = ex.now_ns
    calendar = ex.calendar
    next_open = calendar.next_open(now)
    next_close = calendar.next_close(now)
    return {"timestamp": rfc3339_eastern(now), "is_open": calendar.is_open(now),
            "next_open": rfc3339_eastern(next_open) if next_open else None,
            "next_close": rfc3339_eastern(next_close) if next_close else None}


def _asset(ex: SimExchange, symbol: str) -> dict[str, Any]:
    tradable = symbol in ex.symbols
    return {"id": name_uuid("asset", symbol), "class": "us_equity",
            "exchange": exchange_of(symbol), "symbol": symbol,
            "name": f"{symbol} (gnosis simulated)", "status": "active" if tradable else
            "inactive", "tradable": tradable, "marginable": tradable, "shortable": tradable,
            "easy_to_borrow": tradable, "fractionable": tradable,
            "maintenance_margin_requirement": 30, "attributes": []}


async def get_assets(request: Request, ex: SimExchange) -> Any:
    return [_asset(ex, s) for s in ex.symbols]


async def get_asset(request: Request, ex: SimExchange) -> Any:
    symbol = request.path_params["symbol"].upper()
    if symbol not in ex.symbols and symbol not in {name_uuid("asset", s) for s in ex.symbols}:
        raise not_found(f"asset not found for {symbol}")
    for known in ex.symbols:
        if symbol == name_uuid("asset", known).upper():
            symbol = known
    return _asset(ex, symbol)


async def get_positions(request: Request, ex: SimExchange) -> Any:
    return ex.book.all_positions()


async def get_position(request: Request, ex: SimExchange) -> Any:
    return ex.book.position(request.path_params["symbol"].upper())


async def close_position(request: Request, ex: SimExchange) -> Any:
    symbol = request.path_params["symbol"].upper()
    holding = ex.book.positions.get(symbol)
    if holding is None or holding.qty == 0:
        raise not_found(f"position does not exist: {symbol}")
    qty = abs(holding.qty)
    params = request.query_params
    if params.get("qty"):
        from gnosis.simexchange.wire import parse_positive

        qty = parse_positive(params["qty"], "qty")
        if qty > abs(holding.qty):
            raise unprocessable(f"qty {money(qty)} is more than the position "
                                f"{money(abs(holding.qty))}")
    elif params.get("percentage"):
        from gnosis.simexchange.wire import parse_positive

        percentage = parse_positive(params["percentage"], "percentage")
        if percentage > 100:
            raise unprocessable("percentage must be <= 100")
        qty = round(abs(holding.qty) * percentage / 100.0, 9)
    side = "sell" if holding.qty > 0 else "buy"
    order = ex.submit_order(parse_order_request({
        "symbol": symbol, "qty": qty, "side": side, "type": "market", "time_in_force": "day"}))
    return ex.book.to_json(order)


async def close_all_positions(request: Request, ex: SimExchange) -> Any:
    if request.query_params.get("cancel_orders", "").lower() == "true":
        ex.book.cancel_all(ex.now_ns)
        ex.after_order_command()
    results = []
    for symbol, holding in sorted(ex.book.positions.items()):
        if holding.qty == 0:
            continue
        try:
            order = ex.submit_order(parse_order_request({
                "symbol": symbol, "qty": abs(holding.qty), "side":
                "sell" if holding.qty > 0 else "buy", "type": "market", "time_in_force": "day"}))
            results.append({"symbol": symbol, "status": 200, "order_id": order.id,
                            "body": ex.book.to_json(order)})
        except WireError as exc:
            results.append({"symbol": symbol, "status": exc.status,
                            "body": {**exc.body(), "symbol": symbol}})
    return JSONResponse(results, status_code=207)


async def post_order(request: Request, ex: SimExchange) -> Any:
    order = ex.submit_order(parse_order_request(await _json_body(request)))
    return ex.book.to_json(order)


async def list_orders(request: Request, ex: SimExchange) -> Any:
    params = request.query_params
    status = params.get("status", "open")
    if status not in ("open", "closed", "all"):
        raise unprocessable(f"invalid status {status!r} (open, closed or all)")
    limit = parse_limit(params.get("limit"), default=50, maximum=500)
    nested = params.get("nested", "").lower() == "true"
    direction = params.get("direction", "desc")
    if direction not in ("asc", "desc"):
        raise unprocessable(f"invalid direction {direction!r}")
    after = parse_time(params["after"], "after") if params.get("after") else None
    until = parse_time(params["until"], "until") if params.get("until") else None
    symbols = set(_symbols(params["symbols"])) if params.get("symbols") else None
    side = params.get("side")
    orders = []
    for order in ex.book.orders.values():
        if status == "open" and not order.is_open or status == "closed" and order.is_open:
            continue
        if nested and order.parent is not None:
            continue
        if symbols is not None and order.symbol not in symbols:
            continue
        if side and order.side != side:
            continue
        if after is not None and order.created_at <= after:
            continue
        if until is not None and order.created_at >= until:
            continue
        orders.append(order)
    orders.sort(key=lambda o: o.created_at, reverse=direction == "desc")
    return [ex.book.to_json(o, nested=nested) for o in orders[:limit]]


async def get_order(request: Request, ex: SimExchange) -> Any:
    return ex.book.to_json(ex.book.get(request.path_params["order_id"]))


async def get_order_by_client_id(request: Request, ex: SimExchange) -> Any:
    client_order_id = request.query_params.get("client_order_id")
    if not client_order_id:
        raise unprocessable("client_order_id is required")
    return ex.book.to_json(ex.book.by_client_id(client_order_id))


async def cancel_order(request: Request, ex: SimExchange) -> Any:
    ex.book.cancel(request.path_params["order_id"], ex.now_ns)
    ex.after_order_command()
    return Response(status_code=204)


async def cancel_orders(request: Request, ex: SimExchange) -> Any:
    canceled = ex.book.cancel_all(ex.now_ns)
    ex.after_order_command()
    return JSONResponse([{"id": o.id, "status": 200, "body": ex.book.to_json(o)}
                         for o in canceled], status_code=207)


async def replace_order(request: Request, ex: SimExchange) -> Any:
    body = await _json_body(request)
    order = ex.book.replace(request.path_params["order_id"], body, ex.now_ns,
                            ex.active_from_now())
    ex.after_order_command()
    return ex.book.to_json(order)


async def option_contracts(request: Request, ex: SimExchange) -> Any:
    params = request.query_params
    underlyings = _symbols(params.get("underlying_symbols"), "underlying_symbols") \
        if params.get("underlying_symbols") else list(ex.symbols)
    limit = parse_limit(params.get("limit"), default=100, maximum=10_000)
    contract_type = params.get("type")
    now = ex.now_ns
    previous_session = ex.calendar.sessions[max(0, ex.calendar.session_of_t(
        ex.calendar.trading_time(now)) - 1)].open_ns
    rows: list[dict[str, Any]] = []
    for underlying in underlyings:
        contracts, _spot = ex.option_contracts(underlying, now)
        for c in contracts:
            expiry = eastern_date(c.expiry_ts)
            if contract_type and c.right != contract_type:
                continue
            if not _date_ok(expiry, params):
                continue
            if params.get("strike_price_gte") and c.strike < float(params["strike_price_gte"]):
                continue
            if params.get("strike_price_lte") and c.strike > float(params["strike_price_lte"]):
                continue
            symbol = _occ(c)
            rows.append({
                "id": name_uuid("option", symbol), "symbol": symbol,
                "name": f"{c.underlying} {expiry} {c.strike:g} {c.right.title()}",
                "status": "active", "tradable": False, "expiration_date": expiry,
                "root_symbol": c.underlying, "underlying_symbol": c.underlying,
                "underlying_asset_id": name_uuid("asset", c.underlying), "type": c.right,
                "style": "american", "strike_price": money(c.strike), "size": "100",
                "open_interest": str(int(round(c.open_interest))),
                "open_interest_date": eastern_date(previous_session),
                "close_price": None, "close_price_date": None})
    rows.sort(key=lambda r: str(r["symbol"]))
    start = 0
    if params.get("page_token"):
        from gnosis.simexchange.wire import decode_token

        start = next((i for i, r in enumerate(rows)
                      if r["symbol"] >= decode_token(params["page_token"], 1)[0]), len(rows))
    page = rows[start:start + limit]
    token = None
    if start + limit < len(rows):
        from gnosis.simexchange.wire import encode_token

        token = encode_token(rows[start + limit]["symbol"])
    return {"option_contracts": page, "next_page_token": token}


def _occ(contract: Any) -> str:
    if contract.symbol and len(contract.symbol) >= 15 and contract.symbol[-9] in "CP":
        return str(contract.symbol)  # already OCC (a file's)
    return occ_symbol(contract.underlying, contract.expiry_ts, contract.right, contract.strike)


def _date_ok(expiry: str, params: Any) -> bool:
    if params.get("expiration_date") and expiry != params["expiration_date"]:
        return False
    if params.get("expiration_date_gte") and expiry < params["expiration_date_gte"]:
        return False
    return not (params.get("expiration_date_lte") and expiry > params["expiration_date_lte"])


# -- market data --------------------------------------------------------------------------------
async def stock_bars(request: Request, ex: SimExchange) -> Any:
    params = request.query_params
    symbols = _symbols(params.get("symbols"))
    timeframe = parse_timeframe(params.get("timeframe"))
    now = ex.now_ns
    from gnosis.simexchange.bars import new_york_midnight

    start = parse_time(params["start"], "start") if params.get("start") \
        else new_york_midnight(now)
    end = parse_time(params["end"], "end") if params.get("end") else now
    if end < start:
        raise bad_request("end must not be before start")
    feed = params.get("feed", "iex")
    if feed not in ("iex", "sip", "otc", "delayed_sip"):
        raise bad_request(f"invalid feed {feed!r}")
    sort = params.get("sort", "asc")
    if sort not in ("asc", "desc"):
        raise bad_request(f"invalid sort {sort!r}")
    limit = parse_limit(params.get("limit"))
    return bars_page(ex.history.window, symbols, timeframe, start, end, limit,
                     params.get("page_token") or None, descending=sort == "desc")


async def news(request: Request, ex: SimExchange) -> Any:
    params = request.query_params
    symbols = set(_symbols(params["symbols"])) if params.get("symbols") else None
    now = ex.now_ns
    from gnosis.simexchange.bars import new_york_midnight

    start = parse_time(params["start"], "start") if params.get("start") \
        else new_york_midnight(now)
    end = min(parse_time(params["end"], "end"), now) if params.get("end") else now
    limit = parse_limit(params.get("limit"), default=10, maximum=50)
    sort = params.get("sort", "desc").lower()
    if sort not in ("asc", "desc"):
        raise bad_request(f"invalid sort {sort!r}")
    include_content = params.get("include_content", "").lower() == "true"
    articles = ex.newsdesk.query(symbols, start, end)
    articles.sort(key=lambda a: (a.created_at, a.id), reverse=sort == "desc")
    offset = 0
    if params.get("page_token"):
        from gnosis.simexchange.wire import decode_token

        try:
            offset = int(decode_token(params["page_token"], 1)[0])
        except ValueError:
            raise bad_request("invalid page_token") from None
    page = articles[offset:offset + limit]
    token = None
    if offset + limit < len(articles):
        from gnosis.simexchange.wire import encode_token

        token = encode_token(offset + limit)
    return {"news": [a.rest(include_content) for a in page], "next_page_token": token}


async def option_chain(request: Request, ex: SimExchange) -> Any:
    underlying = request.path_params["underlying"].upper()
    params = request.query_params
    feed = params.get("feed", "indicative")
    if feed not in ("indicative", "opra"):
        raise bad_request(f"invalid feed {feed!r} (indicative or opra)")
    limit = parse_limit(params.get("limit"), default=100, maximum=1000)
    as_of = ex.snapshot_time(feed)
    contracts, spot = ex.option_contracts(underlying, as_of)
    snapshots: dict[str, Any] = {}
    contract_type = params.get("type")
    for c in sorted(contracts, key=_occ):
        expiry = eastern_date(c.expiry_ts)
        if contract_type and c.right != contract_type or not _date_ok(expiry, params):
            continue
        if params.get("strike_price_gte") and c.strike < float(params["strike_price_gte"]):
            continue
        if params.get("strike_price_lte") and c.strike > float(params["strike_price_lte"]):
            continue
        price = option_price(c, spot, as_of, RISK_FREE)
        half = max(0.01, round(price * 0.02, 2))
        snapshot: dict[str, Any] = {
            "latestQuote": {"t": rfc3339(as_of), "bx": "C", "bp": round(max(0.01, price - half),
                                                                         2),
                            "bs": 10, "ax": "C", "ap": round(price + half, 2), "as": 10,
                            "c": "A"},
            "impliedVolatility": round(c.implied_vol, 6),
        }
        values = greeks(c, spot, as_of, RISK_FREE)
        if values is not None:
            snapshot["greeks"] = values
        snapshots[_occ(c)] = snapshot
    symbols = sorted(snapshots)
    start = 0
    if params.get("page_token"):
        from gnosis.simexchange.wire import decode_token

        first = decode_token(params["page_token"], 1)[0]
        start = next((i for i, s in enumerate(symbols) if s >= first), len(symbols))
    page = symbols[start:start + limit]
    token = None
    if start + limit < len(symbols):
        from gnosis.simexchange.wire import encode_token

        token = encode_token(symbols[start + limit])
    return {"snapshots": {s: snapshots[s] for s in page}, "next_page_token": token}


# -- control ------------------------------------------------------------------------------------
async def sim_status(request: Request, ex: SimExchange) -> Any:
    return ex.status()


async def sim_faults(request: Request, ex: SimExchange) -> Any:
    if request.method == "DELETE":
        ex.clear_faults()
        return {"cleared": True}
    try:
        spec = parse_fault(await _json_body(request))
    except FaultError as exc:
        raise bad_request(str(exc)) from None
    return {"fault": spec.fault, **ex.inject(spec)}


async def sim_clock(request: Request, ex: SimExchange) -> Any:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise bad_request("a JSON object: {\"action\": \"pause\"|\"resume\"} or "
                          "{\"advance_seconds\": n} or {\"speed\": x}")
    action = body.get("action")
    if action == "pause":
        ex.clock.pause()
    elif action == "resume":
        ex.clock.resume()
    elif action is not None:
        raise bad_request(f"unknown clock action {action!r} (pause, resume)")
    if "advance_seconds" in body:
        seconds = body["advance_seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise bad_request("advance_seconds must be a number >= 0")
        ex.clock.advance(float(seconds))
    if "speed" in body:
        speed = body["speed"]
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not speed > 0:
            raise bad_request("speed must be a number > 0")
        ex.clock.set_speed(float(speed))
    ex.step()
    return ex.status()


# -- the app ------------------------------------------------------------------------------------
async def _pump(exchange: SimExchange, stop: asyncio.Event) -> None:
    """Step the exchange whenever something is due (at most every 50 ms of real time)."""
    while not stop.is_set():
        try:
            exchange.step()
        except Exception:  # a bug in one step must not stop the market: log it, go on
            log.exception("exchange step failed")
        wait = min(0.05, exchange.seconds_to_next_event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.001, wait))


def build_app(exchange: SimExchange) -> ASGIApp:
    """The Starlette app over one exchange, with its pump started by the lifespan."""

    def route(path: str, handler: Callable[[Request, SimExchange], Awaitable[Any]],
              methods: list[str], status: int = 200) -> Route:
        return Route(path, _route(handler, exchange, status), methods=methods)

    async def market_stream(websocket: WebSocket) -> None:
        await exchange.hub.serve_market(websocket, websocket.url.path)

    async def trading_stream(websocket: WebSocket) -> None:
        await exchange.hub.serve_trading(websocket)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(_pump(exchange, stop))
        try:
            yield
        finally:
            stop.set()
            await task

    routes = [
        route("/v2/account", get_account, ["GET"]),
        route("/v2/clock", get_clock, ["GET"]),
        route("/v2/assets", get_assets, ["GET"]),
        route("/v2/assets/{symbol}", get_asset, ["GET"]),
        route("/v2/positions", get_positions, ["GET"]),
        route("/v2/positions", close_all_positions, ["DELETE"]),
        route("/v2/positions/{symbol}", get_position, ["GET"]),
        route("/v2/positions/{symbol}", close_position, ["DELETE"]),
        route("/v2/orders", post_order, ["POST"]),
        route("/v2/orders", list_orders, ["GET"]),
        route("/v2/orders", cancel_orders, ["DELETE"]),
        route("/v2/orders:by_client_order_id", get_order_by_client_id, ["GET"]),
        route("/v2/orders/{order_id}", get_order, ["GET"]),
        route("/v2/orders/{order_id}", cancel_order, ["DELETE"]),
        route("/v2/orders/{order_id}", replace_order, ["PATCH"]),
        route("/v2/options/contracts", option_contracts, ["GET"]),
        route("/v2/stocks/bars", stock_bars, ["GET"]),
        route("/v1beta1/news", news, ["GET"]),
        route("/v1beta1/options/snapshots/{underlying}", option_chain, ["GET"]),
        route("/_sim/status", sim_status, ["GET"]),
        route("/_sim/faults", sim_faults, ["POST", "DELETE"]),
        route("/_sim/clock", sim_clock, ["POST"]),
        WebSocketRoute("/v2/iex", market_stream),
        WebSocketRoute("/v2/sip", market_stream),
        WebSocketRoute("/v2/test", market_stream),
        WebSocketRoute("/v1beta1/news", market_stream),
        WebSocketRoute("/stream", trading_stream),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)

    async def not_found_handler(request: Request, exc: Exception) -> Response:
        return JSONResponse({"code": 40410000, "message": "endpoint not found"},
                            status_code=404)

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        return JSONResponse({"code": 40510000, "message": "method not allowed"},
                            status_code=405)

    app.add_exception_handler(404, not_found_handler)
    app.add_exception_handler(405, method_not_allowed)
    return AlpacaGate(app, exchange)
