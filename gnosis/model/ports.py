"""Ports: the interfaces that adapters plug into. Each has a real adapter and an in-memory fake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from gnosis.model.memory import MemoryAdvice, Situation
from gnosis.model.types import Bar, Decision, Fill, Order, Trade


class MarketFeed(Protocol):
    """A source of bars in time order (synthetic, replay file, or a live stream)."""

    symbols: tuple[str, ...]

    def bars(self) -> Iterator[Bar]: ...


class LiveMarketFeed(Protocol):
    """A feed that delivers bars itself as they happen (a venue's stream): history for the
    warm-up first, then ``start`` hands each new bar to ``sink`` in order, from its own thread,
    resuming after ``resume_after[symbol]`` (backfilling what it missed)."""

    symbols: tuple[str, ...]
    is_live: bool

    def history(self) -> Iterator[Bar]: ...

    def start(self, sink: Callable[[Any], None], resume_after: dict[str, int], *,
              notify: Callable[[str], None] | None = None,
              fail: Callable[[str], None] | None = None) -> None: ...

    def stop(self) -> None: ...


class Strategy(Protocol):
    """Turns each bar of a symbol into a decision. Must be causal: only bars <= t are seen."""

    name: str

    def on_bar(self, bar: Bar) -> Decision: ...

    def snapshot(self) -> Any:
        """Return picklable state from which ``restore`` rebuilds the strategy exactly."""
        ...

    def restore(self, state: Any) -> None: ...


class Broker(Protocol):
    """Executes orders: ``SimBroker`` in simulation and dry runs, ``AlpacaBroker`` on a paper
    account. Client order ids are ours and idempotent: submitting an id twice places one order.
    A fill reports its own quantity and what is left of its order (``Fill.remaining``)."""

    def submit(self, order: Order, active_from: int = 0) -> bool:
        """Place an order (a bracket when it carries stop_loss/take_profit) that may execute
        from bar ``active_from`` on; False when its client order id was seen before."""
        ...

    def cancel(self, client_order_id: str) -> bool:
        """Cancel what is left of an order; False when nothing of it was working."""
        ...

    def cancel_children(self, parent_id: str) -> list[str]:
        """Cancel the bracket legs of an entry; return the ids canceled."""
        ...

    def on_bar(self, bar: Bar) -> list[Fill]:
        """Fills this bar produced (a simulator) or that arrived since the last bar (a venue)."""
        ...

    def working(self, symbol: str | None = None) -> list[tuple[Order, float]]:
        """Every working order with its unfilled quantity, bracket legs included."""
        ...

    def snapshot(self) -> Any: ...

    def restore(self, state: Any) -> None: ...


class EpisodicMemory(Protocol):
    """Learns from closed trades and advises on candidate entries (DESIGN §6).

    The engine calls it only on candidate entries and on trade open/close, never per bar.
    ``advise`` must be causal: it may use only episodes whose exit happened before
    ``situation.ts_decided``. Writes are idempotent by episode id (the entry's client order
    id), so a restart that replays a bar after ``kill -9`` never duplicates an episode.
    """

    def advise(self, situation: Situation) -> MemoryAdvice: ...

    def open_episode(self, episode_id: str, situation: Situation, *, entry_price: float,
                     quantity: float, stop_price: float | None,
                     target_price: float | None) -> None: ...

    def close_episode(self, episode_id: str, trade: Trade) -> None: ...
