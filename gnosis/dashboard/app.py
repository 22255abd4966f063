"""The dashboard's web application: thin routes over a ``Backend`` (state, fan-out, control).

Routes only read the published state or submit a command to the bot's queue; none touches the
engine. Every response is a public schema (``schemas.py``), so nothing undeclared, and no
secret, can be served.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, HTTPException, Query, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from gnosis.core.clock import Clock, LiveClock
from gnosis.dashboard.hub import Broadcaster
from gnosis.dashboard.publisher import iso
from gnosis.dashboard.schemas import (
    BarsView,
    CommandAccepted,
    CommandRequest,
    HealthView,
    MemoryView,
    PortfolioView,
    PositionsView,
    RegimesView,
    StateView,
    TradesPage,
)
from gnosis.dashboard.state import BARS_PER_SYMBOL, DashboardState

STATIC = Path(__file__).resolve().parent / "static"
CHART_FILE = "lightweight-charts/dist/lightweight-charts.standalone.production.mjs"
READ_ONLY = "read-only: this dashboard is not attached to a bot"
SYMBOL = r"^[A-Za-z0-9./]{1,16}$"


def find_chart_library() -> Path | None:
    """The charting library installed by the project's set-up (``npm ci``), if it is there."""
    candidates = []
    if os.environ.get("GNOSIS_NODE_MODULES"):
        candidates.append(Path(os.environ["GNOSIS_NODE_MODULES"]))
    candidates += [Path(__file__).resolve().parents[2] / "node_modules",
                   Path.cwd() / "node_modules"]
    for folder in candidates:
        if (folder / CHART_FILE).is_file():
            return folder / CHART_FILE
    return None


def tokens_match(expected: str | None, authorization: str | None) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header."""
    if not expected or not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


@dataclass
class Backend:
    """What the routes serve: the state, the fan-out and (attached to a bot) its command port."""

    state: DashboardState
    broadcaster: Broadcaster
    mode: Literal["attached", "standalone"] = "attached"
    control: Callable[[str, str], bool] | None = None  # False: the bot's queue is full
    token: str | None = None
    operator: Callable[[str], None] | None = None  # records an accepted command in the log
    background: Callable[[], Coroutine[Any, Any, None]] | None = None  # runs while serving
    unavailable: Callable[[], str | None] = lambda: None  # why there is no state, if so
    sync: Callable[[], Any] = lambda: None  # brings the state up to date before a read
    wall: Clock = field(default_factory=LiveClock)

    @property
    def read_only(self) -> bool:
        return self.control is None

    def payload(self) -> dict[str, Any]:
        """The full public state (as ``/api/state`` and the WebSocket's ``init`` send it)."""
        self.sync()
        snapshot = self.state.snapshot()
        reason = self.unavailable()
        snapshot["available"] = reason is None
        snapshot["unavailable_reason"] = reason
        snapshot["info"].update(mode=self.mode, read_only=self.read_only,
                                control_enabled=not self.read_only and bool(self.token))
        return StateView.model_validate(snapshot).model_dump(mode="json")


def create_app(backend: Backend) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend.broadcaster.attach()
        task = asyncio.create_task(backend.background()) if backend.background else None
        try:
            yield
        finally:
            await backend.broadcaster.detach()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await backend.broadcaster.close_all()

    app = FastAPI(title="Gnosis dashboard", version="1",
                  description="Live state of a Gnosis paper-trading bot (read-only, plus "
                              "token-protected halt / resume / flatten).", lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _page_routes(app)
    _read_routes(app, backend)
    _market_routes(app, backend)
    _control_routes(app, backend)

    @app.websocket("/ws")
    async def websocket(socket: WebSocket) -> None:
        def init() -> dict[str, Any]:
            payload = backend.payload()
            return {"type": "init", "data": payload, "timestamp": iso(backend.wall.now_ns()),
                    "seq": payload["seq"]}

        await backend.broadcaster.serve(socket, init)

    return app


def _page_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/vendor/lightweight-charts.mjs", include_in_schema=False, response_model=None)
    async def chart_library() -> FileResponse | JSONResponse:
        path = find_chart_library()
        if path is None:
            return JSONResponse({"detail": "lightweight-charts is not installed: run `npm ci` "
                                           "(or `make setup`) in the gnosis folder"},
                                status_code=404)
        return FileResponse(path, media_type="text/javascript")


def _read_routes(app: FastAPI, backend: Backend) -> None:
    state = backend.state

    @app.get("/api/state", response_model=StateView)
    async def get_state() -> dict[str, Any]:
        return backend.payload()

    @app.get("/api/positions", response_model=PositionsView)
    async def get_positions() -> dict[str, Any]:
        backend.sync()
        return {"positions": state.snapshot()["positions"]}

    @app.get("/api/health", response_model=HealthView)
    async def get_health() -> dict[str, Any]:
        backend.sync()
        reason = backend.unavailable()
        hub = backend.broadcaster
        return {
            "status": "ok" if reason is None else "no_data", "mode": backend.mode,
            "read_only": backend.read_only, "seq": state.seq, "clients": len(hub.clients),
            "dropped_clients": hub.dropped_clients, "messages": hub.messages,
            "chart_library": find_chart_library() is not None,
            "published_at": state.info.get("published_at"), "detail": reason,
        }


def _market_routes(app: FastAPI, backend: Backend) -> None:
    state = backend.state

    @app.get("/api/trades", response_model=TradesPage)
    async def get_trades(
        symbol: Annotated[str | None, Query(pattern=SYMBOL)] = None,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        backend.sync()
        symbol = symbol.upper() if symbol else None
        total, items = state.trades(symbol, offset, limit)
        return {"symbol": symbol, "offset": offset, "limit": limit, "total": total,
                "items": items}

    @app.get("/api/portfolio", response_model=PortfolioView)
    async def get_portfolio() -> dict[str, Any]:
        backend.sync()
        portfolio = state.snapshot()["portfolio"]
        if portfolio is None:
            raise HTTPException(404, "no portfolio published yet")
        return portfolio

    @app.get("/api/memory", response_model=MemoryView)
    async def get_memory() -> dict[str, Any]:
        backend.sync()
        return state.snapshot()["memory"]

    @app.get("/api/regime", response_model=RegimesView)
    async def get_regime(
        symbol: Annotated[str | None, Query(pattern=SYMBOL)] = None,
    ) -> dict[str, Any]:
        backend.sync()
        symbols = state.snapshot()["symbols"]
        if symbol is not None:
            symbol = symbol.upper()
            if symbol not in symbols:
                raise HTTPException(404, f"unknown symbol {symbol}")
            symbols = {symbol: symbols[symbol]}
        return {"symbols": {name: view["regime"] for name, view in symbols.items()}}

    @app.get("/api/bars", response_model=BarsView)
    async def get_bars(
        symbol: Annotated[str, Query(pattern=SYMBOL)],
        limit: Annotated[int, Query(ge=1, le=BARS_PER_SYMBOL)] = 500,
    ) -> dict[str, Any]:
        backend.sync()
        symbol = symbol.upper()
        bars = state.bars(symbol, limit)
        if bars is None:
            raise HTTPException(404, f"unknown symbol {symbol}")
        return {"symbol": symbol, "bars": bars}


def _control_routes(app: FastAPI, backend: Backend) -> None:
    @app.post("/api/control/{command}", response_model=CommandAccepted, status_code=202,
              responses={401: {"description": "missing or wrong token"},
                         409: {"description": READ_ONLY},
                         503: {"description": "the bot's command queue is full"}})
    async def post_control(
        command: Literal["halt", "resume", "flatten"],
        body: CommandRequest | None = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        if backend.control is None:
            raise HTTPException(409, READ_ONLY)
        if not backend.token:
            raise HTTPException(401, "control needs a token: start the dashboard with --token "
                                     "or GNOSIS_DASHBOARD_TOKEN",
                                headers={"WWW-Authenticate": "Bearer"})
        if not tokens_match(backend.token, authorization):
            raise HTTPException(401, "missing or wrong token (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})
        reason = (body.reason if body is not None and body.reason else
                  f"{command} requested from the dashboard")
        if not backend.control(command, reason):
            raise HTTPException(503, "the bot's command queue is full; try again")
        if backend.operator is not None:
            backend.operator(f"dashboard: {command} requested ({reason})")
        return {"command": command, "accepted": True,
                "detail": "queued for the bot; it acts between bars"}
