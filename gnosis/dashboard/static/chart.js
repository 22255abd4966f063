// Price and equity charts, drawn with TradingView's lightweight-charts (served from the
// project's node_modules). Without the library the panel says how to install it; the rest of
// the page works regardless.
import { fmtTime, fmtDay } from './format.js';

const COLORS = {
  text: '#8792a2', grid: '#1d242e', border: '#29313d', up: '#26a69a', down: '#ef5350',
  entry: '#4c9aff', exit: '#b48cff', stop: '#ef5350', target: '#26a69a', equity: '#4c9aff',
};
const MAX_POINTS = 5000;
const LEVELS_MAX_STRETCH = 4; // stop/target may widen the price range up to 4x the candles'.

function baseOptions(lib) {
  return {
    autoSize: true,
    layout: { background: { type: lib.ColorType.Solid, color: 'transparent' },
      textColor: COLORS.text, fontSize: 11, attributionLogo: false },
    grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
    rightPriceScale: { borderColor: COLORS.border },
    timeScale: { borderColor: COLORS.border, timeVisible: true, secondsVisible: false,
      tickMarkFormatter: (t, type) => (type <= 2 ? fmtDay(t) : fmtTime(t)) },
    localization: { timeFormatter: (t) => fmtTime(t, true) },
    crosshair: { mode: lib.CrosshairMode.Normal },
  };
}

export class Charts {
  static async create(priceEl, equityEl, missingEl) {
    let lib;
    try {
      lib = await import('/vendor/lightweight-charts.mjs');
    } catch (err) {
      missingEl.hidden = false;
      missingEl.innerHTML = 'The chart library is not installed. In the gnosis folder run '
        + '<code>npm ci</code> (or <code>make setup</code>) and reload this page.';
      return null;
    }
    return new Charts(lib, priceEl, equityEl);
  }

  constructor(lib, priceEl, equityEl) {
    this.lib = lib;
    this.priceEl = priceEl;
    this.equityEl = equityEl;
    this.levels = []; // stop, target and entry of the open position: kept in the price range
    this.price = lib.createChart(priceEl, baseOptions(lib));
    this.candles = this.price.addSeries(lib.CandlestickSeries, {
      upColor: COLORS.up, downColor: COLORS.down, wickUpColor: COLORS.up,
      wickDownColor: COLORS.down, borderVisible: false,
      // keep the open position's stop and target in view, unless that would squash the
      // candles flat (then the panel header lists them instead)
      autoscaleInfoProvider: (original) => {
        const info = original();
        if (!info || !this.levels.length) return info;
        const range = info.priceRange;
        const low = Math.min(range.minValue, ...this.levels);
        const high = Math.max(range.maxValue, ...this.levels);
        const span = Math.max(range.maxValue - range.minValue, 1e-9);
        if ((high - low) / span > LEVELS_MAX_STRETCH) return info;
        return { ...info, priceRange: { minValue: low, maxValue: high } };
      },
    });
    this.markers = lib.createSeriesMarkers(this.candles, []);
    this.lines = [];
    this.lastTime = null;
    this.count = 0;
    this.equity = lib.createChart(equityEl, {
      ...baseOptions(lib), handleScroll: false, handleScale: false,
    });
    this.equitySeries = this.equity.addSeries(lib.AreaSeries, {
      lineColor: COLORS.equity, topColor: 'rgba(76,154,255,0.25)',
      bottomColor: 'rgba(76,154,255,0.02)', lineWidth: 2, priceLineVisible: false,
    });
    this.equityLast = null;
    this.equityCount = 0;
  }

  setBars(bars) {
    const data = bars.map((b) => ({ time: b.time, open: b.open, high: b.high, low: b.low, close: b.close }));
    this.candles.setData(data);
    this.lastTime = data.length ? data[data.length - 1].time : null;
    this.count = data.length;
    this.priceEl.dataset.bars = String(this.count);
    this.price.timeScale().scrollToRealTime();
  }

  addBar(bar) {
    if (this.lastTime !== null && bar.time < this.lastTime) return;
    if (bar.time !== this.lastTime) this.count += 1;
    this.candles.update({ time: bar.time, open: bar.open, high: bar.high, low: bar.low, close: bar.close });
    this.lastTime = bar.time;
    this.priceEl.dataset.bars = String(this.count);
    if (this.count > MAX_POINTS) this.setBars(this.candles.data().slice(-MAX_POINTS / 2));
  }

  /** Entry/exit markers of the symbol's trades and open position; stop/target lines. */
  setTrades(trades, position) {
    const shown = this.lastTime === null ? [] : trades;
    const first = this.candles.data().length ? this.candles.data()[0].time : Infinity;
    const marks = [];
    for (const t of shown) {
      const long = t.side === 'long';
      if (t.entry_time >= first) {
        marks.push({ time: t.entry_time, position: long ? 'belowBar' : 'aboveBar',
          color: COLORS.entry, shape: long ? 'arrowUp' : 'arrowDown',
          text: `${long ? 'L' : 'S'} ${t.entry_price.toFixed(2)}` });
      }
      if (t.exit_time >= first) {
        marks.push({ time: t.exit_time, position: long ? 'aboveBar' : 'belowBar',
          color: COLORS.exit, shape: 'circle',
          text: `${t.exit_reason.replace(/_/g, ' ')} ${t.pnl >= 0 ? '+' : ''}${t.pnl.toFixed(0)}` });
      }
    }
    if (position && position.opened_time >= first) {
      const long = position.side === 'long';
      marks.push({ time: position.opened_time, position: long ? 'belowBar' : 'aboveBar',
        color: COLORS.entry, shape: long ? 'arrowUp' : 'arrowDown',
        text: `${long ? 'L' : 'S'} ${position.entry_price.toFixed(2)}` });
    }
    marks.sort((a, b) => a.time - b.time);
    this.markers.setMarkers(marks);
    for (const line of this.lines) this.candles.removePriceLine(line);
    this.lines = [];
    this.levels = [];
    if (position) {
      const add = (price, color, title, style) => {
        if (typeof price !== 'number') return;
        this.levels.push(price);
        this.lines.push(this.candles.createPriceLine({
          price, color, title, lineWidth: 1, lineStyle: style, axisLabelVisible: true }));
      };
      add(position.entry_price, COLORS.entry, 'entry', this.lib.LineStyle.Solid);
      add(position.stop_price, COLORS.stop, 'stop', this.lib.LineStyle.Dashed);
      add(position.target_price, COLORS.target, 'target', this.lib.LineStyle.Dashed);
    }
  }

  setEquity(points) {
    this.equitySeries.setData(points.map((p) => ({ time: p.time, value: p.value })));
    this.equityLast = points.length ? points[points.length - 1].time : null;
    this.equityCount = points.length;
    this.equityEl.dataset.points = String(this.equityCount);
    this.equity.timeScale().fitContent();
  }

  addEquity(time, value) {
    if (typeof time !== 'number' || typeof value !== 'number') return;
    if (this.equityLast !== null && time < this.equityLast) return;
    if (time !== this.equityLast) this.equityCount += 1;
    this.equitySeries.update({ time, value });
    this.equityLast = time;
    this.equityEl.dataset.points = String(this.equityCount);
    if (this.equityCount > MAX_POINTS) this.setEquity(this.equitySeries.data().slice(-MAX_POINTS / 2));
    else this.equity.timeScale().fitContent();
  }
}
