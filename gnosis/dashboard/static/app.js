// The Gnosis dashboard page: one WebSocket (init, then live messages), a 5 s /api/state poll
// while it is down, reconnection with backoff, and panels redrawn at most once a frame.
import { Charts } from './chart.js';
import {
  escapeHtml, fmtMoney, fmtPct, fmtPrice, fmtQty, fmtSigned, fmtSignedPct, fmtTime, isNum,
  label, signalText, tone,
} from './format.js';

const POLL_MS = 5000;
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];
const TRADES_SHOWN = 20;
const NOTICES_KEPT = 100;
const AGENT_ORDER = ['hedge', 'liquidity', 'sentiment', 'wyckoff', 'markov'];
const $ = (id) => document.getElementById(id);

const app = {
  state: null, symbol: null, charts: null, socket: null, attempt: 0, pollTimer: null,
  retryTimer: null, dirty: new Set(), frame: 0, barsLoaded: false, pendingBars: [],
  lastMessageAt: null,
};

// -- the state, folded the way the server folds it ------------------------------------------
function fold(type, data) {
  const s = app.state;
  if (!s) return;
  const view = (sym) => (s.symbols[sym] ??= { regime: null, votes: null, last_bar: null });
  switch (type) {
    case 'bar':
      view(data.symbol).last_bar = data;
      if (!s.info.symbols.includes(data.symbol)) { s.info.symbols.push(data.symbol); mark('symbols'); }
      if (data.symbol === app.symbol) {
        if (app.barsLoaded && app.charts) app.charts.addBar(data); else app.pendingBars.push(data);
      }
      mark('price');
      break;
    case 'agent_votes': view(data.symbol).votes = data; if (data.symbol === app.symbol) mark('agents'); break;
    case 'regime': view(data.symbol).regime = data; if (data.symbol === app.symbol) mark('regime'); break;
    case 'positions': s.positions = data.positions; mark('positions'); mark('markers'); break;
    case 'portfolio_stats':
      s.portfolio = data; mark('stats');
      if (app.charts) app.charts.addEquity(data.time, data.equity);
      break;
    case 'trade':
      s.trades = [data, ...s.trades].slice(0, TRADES_SHOWN); s.trades_total += 1;
      mark('trades'); mark('markers');
      break;
    case 'trading_state': s.trading_state = data; mark('tradingState'); break;
    case 'notice': s.notices = [data, ...s.notices].slice(0, NOTICES_KEPT); mark('log'); break;
    case 'memory_recall':
      s.memory.available = true;
      s.memory.recalls = [data, ...s.memory.recalls].slice(0, 50); mark('memory');
      break;
    default: break;
  }
}

function replaceState(state) {
  app.state = state;
  if (!app.symbol || !state.info.symbols.includes(app.symbol)) app.symbol = state.info.symbols[0] ?? null;
  ['symbols', 'stats', 'tradingState', 'regime', 'agents', 'positions', 'trades', 'memory', 'log',
    'price', 'banner', 'markers'].forEach(mark);
  if (app.charts) app.charts.setEquity(state.equity_curve);
}

// -- rendering, batched per animation frame --------------------------------------------------
function mark(what) {
  app.dirty.add(what);
  if (!app.frame) app.frame = requestAnimationFrame(render);
}

function render() {
  app.frame = 0;
  const dirty = app.dirty;
  app.dirty = new Set();
  if (!app.state) return;
  const painters = { symbols: renderSymbols, stats: renderStats, tradingState: renderTradingState,
    regime: renderRegime, agents: renderAgents, positions: renderPositions, trades: renderTrades,
    memory: renderMemory, log: renderLog, price: renderPrice, banner: renderBanner,
    markers: renderMarkers };
  for (const what of dirty) painters[what]?.();
  $('updated').textContent = app.lastMessageAt ? `last update ${app.lastMessageAt.toLocaleTimeString()}` : '';
}

function renderBanner() {
  const s = app.state;
  const info = s.info;
  $('run-info').textContent = [info.strategy && `strategy ${info.strategy}`, info.mode,
    info.read_only ? 'read-only' : null].filter(Boolean).join(' · ');
  const banner = $('banner');
  let text = '';
  if (!s.available) text = s.unavailable_reason || 'no data';
  else if (info.mode === 'standalone' && info.published_at) text = `following a bot (last write ${fmtTime(info.published_at, true)} ET)`;
  banner.hidden = !text;
  banner.textContent = text;
  const canControl = info.control_enabled;
  for (const button of document.querySelectorAll('#control button')) {
    button.disabled = !canControl;
    button.title = canControl ? '' : info.read_only ? 'read-only: this dashboard is not attached to a bot'
      : 'control is off: start the bot with --token or GNOSIS_DASHBOARD_TOKEN';
  }
  $('token').disabled = !canControl;
}

function renderSymbols() {
  const select = $('symbol');
  const symbols = app.state.info.symbols;
  if ([...select.options].map((o) => o.value).join() !== symbols.join()) {
    select.innerHTML = symbols.map((s) => `<option>${escapeHtml(s)}</option>`).join('');
  }
  select.value = app.symbol ?? '';
}

function setStat(id, text, cls) {
  const el = $(id);
  el.textContent = text;
  if (cls !== undefined) el.className = cls;
}

function renderStats() {
  const p = app.state.portfolio;
  if (!p) return;
  setStat('st-equity', fmtMoney(p.equity));
  setStat('st-capital', `capital ${fmtMoney(p.initial_capital)}`);
  setStat('st-pnl', fmtSigned(p.pnl), tone(p.pnl));
  setStat('st-pnl-pct', fmtSignedPct(p.pnl_pct), tone(p.pnl_pct));
  setStat('st-daily', fmtSigned(p.daily_pnl), tone(p.daily_pnl));
  setStat('st-daily-pct', fmtSignedPct(p.daily_pnl_pct), tone(p.daily_pnl_pct));
  setStat('st-realized', fmtSigned(p.realized_pnl), tone(p.realized_pnl));
  setStat('st-unrealized', `unrealized ${fmtSigned(p.unrealized_pnl)}`, tone(p.unrealized_pnl));
  setStat('st-winrate', p.trades ? fmtPct(p.win_rate, 1) : '—');
  setStat('st-trades', `${p.wins} of ${p.trades} trades`);
  setStat('st-drawdown', fmtPct(p.drawdown), p.drawdown < -1e-9 ? 'neg' : 'flat');
  setStat('st-maxdd', `max ${fmtPct(p.max_drawdown)}`);
  setStat('st-exposure', fmtPct(p.exposure, 1));
  setStat('st-open', `${p.open_positions} open`);
  setStat('st-cash', fmtMoney(p.cash));
  setStat('st-fees', `fees ${fmtMoney(p.fees)}`);
}

function renderTradingState() {
  const t = app.state.trading_state;
  const el = $('trading-state');
  if (!t) return;
  el.dataset.state = t.state;
  el.textContent = t.state;
  el.title = t.reason || '';
}

function renderRegime() {
  const r = app.state.symbols[app.symbol]?.regime;
  $('regime-symbol').textContent = app.symbol ?? '';
  const el = $('regime');
  if (!r) {
    el.innerHTML = app.state.info.strategy === 'sma'
      ? '<p class="muted">not available: the SMA crossover strategy has no regime detector</p>'
      : '<p class="muted">waiting for the first bar…</p>';
    return;
  }
  const kv = (k, v) => `<div class="kv"><span>${k}</span><span>${v}</span></div>`;
  let hmm = '';
  if (r.hmm_probabilities) {
    hmm = '<div class="hmm">' + Object.entries(r.hmm_probabilities).map(([name, p]) => `
      <span class="${name === r.hmm_state ? 'on' : 'muted'}">${escapeHtml(label(name))}</span>
      <span class="bar"><i style="width:${Math.round((p ?? 0) * 100)}%"></i></span>
      <span class="mono">${fmtPct(p, 0)}</span>`).join('') + '</div>';
  } else if (r.ready) {
    hmm = `<div class="reason">HMM: not fitted yet</div>`;
  }
  // the regime's own reason sits under it; the HMM's states (the same names, a separate
  // model: the Markov agent reads them) get their own caption, so neither reads as the other
  el.innerHTML = `
    <div class="headline"><span class="regime-badge ${escapeHtml(r.primary)}">${escapeHtml(label(r.primary))}</span>
      <span class="mono">${fmtPct(r.confidence, 0)} confidence</span></div>
    <div class="reason" title="${escapeHtml(r.reason)}">${escapeHtml(r.reason ?? '')}</div>
    ${kv('trend', isNum(r.trend_strength) ? (r.trend_strength > 0 ? '+' : '') + r.trend_strength.toFixed(2) : '—')}
    ${kv('volatility', `${fmtPct(r.volatility, 0)} ${escapeHtml(r.volatility_class ?? '')}`)}
    ${kv('BB position', isNum(r.range_position) ? r.range_position.toFixed(2) : '—')}
    ${kv('HMM state (5-state model)', escapeHtml(label(r.hmm_state ?? '—')))}
    ${hmm}`;
}

function renderAgents() {
  const v = app.state.symbols[app.symbol]?.votes;
  const el = $('agents');
  const decision = $('decision');
  if (!v) { decision.textContent = ''; return; }
  const d = v.decision;
  decision.className = `decision ${tone(d.signal)}`;
  decision.textContent = `${signalText(d.signal)} ${isNum(d.confidence) ? d.confidence.toFixed(2) : ''}`
    + (d.quantity ? ` · sent ${fmtQty(Math.abs(d.quantity))}` : d.signal && d.note ? ` · ${d.note}` : '');
  decision.title = [d.reasoning, d.note].filter(Boolean).join(' — ');
  if (!v.votes.length) {
    el.innerHTML = `<p class="muted">no agents: strategy ${escapeHtml(app.state.info.strategy)} decides alone`
      + ` (${escapeHtml(d.reasoning || 'SMA crossover')})</p>`;
    return;
  }
  const order = (a) => { const i = AGENT_ORDER.indexOf(a.agent); return i < 0 ? 99 : i; };
  const votes = [...v.votes].sort((a, b) => order(a) - order(b));
  el.style.gridTemplateRows = `repeat(${votes.length}, minmax(0, 1fr))`;
  el.innerHTML = votes.map((a) => {
    const side = !a.active ? 'off' : a.signal > 0 ? 'long' : a.signal < 0 ? 'short' : 'flat';
    const sig = !a.active ? 'OFF' : a.abstained ? 'ABST' : signalText(a.signal);
    const conf = isNum(a.confidence) ? a.confidence : 0;
    return `<div class="card ${side}" data-agent="${escapeHtml(a.agent)}" data-active="${a.active}">
      <div class="row"><span class="name">${escapeHtml(a.agent)}</span>
        <span class="sig ${tone(a.signal)}">${sig}</span>
        <span class="conf"><i style="width:${Math.round(conf * 100)}%"></i></span>
        <span class="pct">${a.active ? fmtPct(conf, 0) : ''}</span>
        <span class="tag">${a.active ? (a.abstained ? 'abstain' : 'active') : 'off'}</span></div>
      <p title="${escapeHtml(a.reasoning)}">${escapeHtml(a.reasoning)}</p></div>`;
  }).join('');
}

function renderPositions() {
  const rows = app.state.positions;
  $('positions-count').textContent = rows.length ? `${rows.length} open` : '';
  const body = $('positions').tBodies[0];
  if (!rows.length) { body.innerHTML = '<tr class="empty"><td colspan="10">no open positions</td></tr>'; return; }
  body.innerHTML = rows.map((p) => `<tr data-symbol="${escapeHtml(p.symbol)}">
    <td><b>${escapeHtml(p.symbol)}</b></td><td class="${p.side === 'long' ? 'pos' : 'neg'}">${p.side}</td>
    <td class="r">${fmtQty(p.quantity)}</td><td class="r">${fmtPrice(p.entry_price)}</td>
    <td class="r">${fmtPrice(p.last_price)}</td>
    <td class="r ${tone(p.unrealized_pnl)}">${fmtSigned(p.unrealized_pnl)}</td>
    <td class="r ${tone(p.unrealized_pct)}">${fmtSignedPct(p.unrealized_pct)}</td>
    <td class="r neg">${fmtPrice(p.stop_price)}</td><td class="r pos">${fmtPrice(p.target_price)}</td>
    <td>${fmtTime(p.opened_ts, true)}</td></tr>`).join('');
}

function renderTrades() {
  const s = app.state;
  $('trades-count').textContent = s.trades_total ? `${s.trades_total} in this run` : '';
  const body = $('trades').tBodies[0];
  if (!s.trades.length) { body.innerHTML = '<tr class="empty"><td colspan="9">no closed trades yet</td></tr>'; return; }
  body.innerHTML = s.trades.slice(0, TRADES_SHOWN).map((t) => `<tr>
    <td>${fmtTime(t.exit_ts, true)}</td><td><b>${escapeHtml(t.symbol)}</b></td>
    <td class="${t.side === 'long' ? 'pos' : 'neg'}">${t.side}</td><td class="r">${fmtQty(t.quantity)}</td>
    <td class="r">${fmtPrice(t.entry_price)}</td><td class="r">${fmtPrice(t.exit_price)}</td>
    <td class="r ${tone(t.pnl)}">${fmtSigned(t.pnl)}</td>
    <td class="r ${tone(t.return_pct)}">${fmtSignedPct(t.return_pct)}</td>
    <td>${escapeHtml(label(t.exit_reason))}</td></tr>`).join('');
}

function renderMemory() {
  const m = app.state.memory;
  $('memory-status').textContent = m.available ? (m.recalls.length ? `${m.recalls.length} recent` : '') : '';
  const el = $('memory');
  if (!m.recalls.length) {
    el.innerHTML = `<div class="empty-note">${m.available ? escapeHtml(m.status || 'no recall yet')
      : 'not available: ' + escapeHtml(m.status)}</div>`;
    return;
  }
  el.innerHTML = m.recalls.map((r) => {
    const change = isNum(r.confidence_before) && isNum(r.confidence_after)
      ? `conf ${r.confidence_before.toFixed(2)} → ${r.confidence_after.toFixed(2)}` : '';
    const episodes = r.episodes.slice(0, 4).map((e) => `<li>${escapeHtml(e.symbol)} ${fmtTime(e.entry_ts, true)}
      ${escapeHtml(label(e.regime ?? ''))} ${signalText(e.signal)}: <span class="${tone(e.return_pct)}">${fmtSignedPct(e.return_pct)}</span>
      (${escapeHtml(label(e.exit_reason))}), sim ${isNum(e.similarity) ? e.similarity.toFixed(2) : '—'}
      ${e.lesson ? '— ' + escapeHtml(e.lesson) : ''}</li>`).join('');
    return `<div class="item"><div class="head"><b>${escapeHtml(r.symbol)}</b>
      <span class="${tone(r.signal)}">${signalText(r.signal)}</span><span class="mono">${change}</span>
      <span class="mono">size ×${isNum(r.size_scale) ? r.size_scale.toFixed(2) : '—'}</span>
      <span class="spacer"></span><span class="when">${fmtTime(r.ts, true)}</span></div>
      <div class="muted">${escapeHtml(r.reason)}${isNum(r.win_rate) ? ` · win rate ${fmtPct(r.win_rate, 0)}` : ''}</div>
      ${episodes ? `<ul>${episodes}</ul>` : ''}</div>`;
  }).join('');
}

function renderLog() {
  const el = $('log');
  const notices = app.state.notices;
  if (!notices.length) { el.innerHTML = '<div class="empty-note">nothing yet</div>'; return; }
  el.innerHTML = notices.slice(0, NOTICES_KEPT).map((n) => `<div class="item">
    <span class="when">${fmtTime(n.ts || n.at)}</span><span class="kind ${escapeHtml(n.kind)}">${escapeHtml(n.kind)}</span>
    <span class="msg" title="${escapeHtml(n.message)}">${escapeHtml(n.message)}</span></div>`).join('');
}

function renderPrice() {
  const bar = app.state.symbols[app.symbol]?.last_bar;
  const el = $('last-price');
  if (!bar) { el.textContent = ''; return; }
  const change = bar.close - bar.open;
  el.className = `mono ${tone(change)}`;
  el.textContent = `${fmtPrice(bar.close)}  O ${fmtPrice(bar.open)} H ${fmtPrice(bar.high)} L ${fmtPrice(bar.low)}  ${fmtTime(bar.time)} ET`;
}

function renderMarkers() {
  if (!app.charts || !app.barsLoaded) { $('levels').textContent = ''; return; }
  const trades = app.state.trades.filter((t) => t.symbol === app.symbol);
  const position = app.state.positions.find((p) => p.symbol === app.symbol) ?? null;
  app.charts.setTrades(trades, position);
  $('levels').innerHTML = position
    ? `${position.side} ${fmtQty(position.quantity)} @ ${fmtPrice(position.entry_price)} · `
      + `<span class="neg">stop ${fmtPrice(position.stop_price)}</span> · `
      + `<span class="pos">target ${fmtPrice(position.target_price)}</span>`
    : '';
}

// -- the chart's bars: fetched per symbol, then extended by live bar messages -------------------
async function loadBars() {
  const symbol = app.symbol;
  if (!app.charts || !symbol) return;
  app.barsLoaded = false;
  app.pendingBars = [];
  try {
    const response = await fetch(`/api/bars?symbol=${encodeURIComponent(symbol)}&limit=1000`);
    if (!response.ok) throw new Error(`bars: HTTP ${response.status}`);
    const body = await response.json();
    if (symbol !== app.symbol) return;
    app.charts.setBars(body.bars);
    const last = body.bars.length ? body.bars[body.bars.length - 1].time : -1;
    for (const bar of app.pendingBars) if (bar.time >= last) app.charts.addBar(bar);
    app.pendingBars = [];
    app.barsLoaded = true;
    mark('markers');
  } catch (err) {
    console.warn(err);
  }
}

// -- connection: WebSocket first, /api/state polling while it is down ----------------------
function setConnection(state, text) {
  const el = $('connection');
  el.dataset.state = state;
  el.querySelector('.conn-text').textContent = text;
}

function connect() {
  clearTimeout(app.retryTimer);
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  let socket;
  try {
    socket = new WebSocket(`${scheme}://${location.host}/ws`);
  } catch (err) {
    scheduleReconnect();
    return;
  }
  app.socket = socket;
  socket.onmessage = (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    app.lastMessageAt = new Date();
    if (message.type === 'init') {
      app.attempt = 0;
      stopPolling();
      setConnection('live', 'live');
      replaceState(message.data);
      loadBars();
      return;
    }
    fold(message.type, message.data);
    mark('banner');
  };
  socket.onclose = () => {
    if (app.socket !== socket) return;
    app.socket = null;
    startPolling();
    scheduleReconnect();
  };
  socket.onerror = () => socket.close();
}

function scheduleReconnect() {
  const delay = BACKOFF_MS[Math.min(app.attempt, BACKOFF_MS.length - 1)];
  app.attempt += 1;
  const jitter = Math.round(delay * 0.2 * Math.random());
  clearTimeout(app.retryTimer);
  app.retryTimer = setTimeout(connect, delay + jitter);
}

function startPolling() {
  if (app.pollTimer) return;
  setConnection('polling', 'polling /api/state');
  poll();
  app.pollTimer = setInterval(poll, POLL_MS);
}

function stopPolling() {
  clearInterval(app.pollTimer);
  app.pollTimer = null;
}

async function poll() {
  try {
    const response = await fetch('/api/state', { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const state = await response.json();
    if (app.socket && app.socket.readyState === WebSocket.OPEN) return;
    app.lastMessageAt = new Date();
    setConnection('polling', 'polling /api/state');
    const symbol = app.symbol;
    replaceState(state);
    if (symbol !== app.symbol || !app.barsLoaded || app.pollTimer) loadBars();
  } catch (err) {
    setConnection('offline', 'offline');
  }
}

// -- control -------------------------------------------------------------------------------
function toast(text, error = false) {
  const el = document.createElement('div');
  el.className = `toast${error ? ' error' : ''}`;
  el.textContent = text;
  document.body.append(el);
  setTimeout(() => el.remove(), 5000);
}

async function command(name) {
  const token = $('token').value.trim();
  if (!token) { toast('enter the control token first', true); return; }
  sessionStorage.setItem('gnosis-token', token);
  if (name !== 'resume' && !confirm(`${name} the bot?`)) return;
  try {
    const response = await fetch(`/api/control/${name}`, {
      method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ reason: `${name} from the dashboard` }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
    toast(`${name}: ${body.detail}`);
  } catch (err) {
    toast(`${name} failed: ${err.message}`, true);
  }
}

async function main() {
  $('token').value = sessionStorage.getItem('gnosis-token') ?? '';
  for (const button of document.querySelectorAll('#control button')) {
    button.addEventListener('click', () => command(button.dataset.command));
  }
  $('symbol').addEventListener('change', (event) => {
    app.symbol = event.target.value;
    ['regime', 'agents', 'price', 'markers'].forEach(mark);
    loadBars();
  });
  app.charts = await Charts.create($('chart'), $('equity-chart'), $('chart-missing'));
  if (app.state && app.charts) { app.charts.setEquity(app.state.equity_curve); loadBars(); }
  connect();
}

main();
