// Number, time and HTML formatting shared by the panels.

const money = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const qty = new Intl.NumberFormat('en-US', { maximumFractionDigits: 4 });
const nyTime = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/New_York', hour: '2-digit', minute: '2-digit', hour12: false,
});
const nyDateTime = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/New_York', month: 'short', day: '2-digit', hour: '2-digit',
  minute: '2-digit', hour12: false,
});
const nyDay = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/New_York', month: 'short', day: '2-digit',
});

export const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
export const fmtMoney = (v) => (isNum(v) ? money.format(v) : '—');
export const fmtSigned = (v) => (isNum(v) ? (v > 0 ? '+' : '') + money.format(v) : '—');
export const fmtQty = (v) => (isNum(v) ? qty.format(v) : '—');
export const fmtPrice = (v) => (isNum(v) ? v.toFixed(2) : '—');
export const fmtPct = (v, digits = 2) => (isNum(v) ? (v * 100).toFixed(digits) + '%' : '—');
export const fmtSignedPct = (v, digits = 2) =>
  (isNum(v) ? (v > 0 ? '+' : '') + (v * 100).toFixed(digits) + '%' : '—');
export const tone = (v) => (!isNum(v) || Math.abs(v) < 1e-9 ? 'flat' : v > 0 ? 'pos' : 'neg');

/** Epoch seconds or an ISO string -> "HH:MM" / "Jan 02 14:30" in New York time. */
export function fmtTime(t, withDate = false) {
  if (t === null || t === undefined) return '—';
  const date = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
  if (Number.isNaN(date.getTime())) return '—';
  return (withDate ? nyDateTime : nyTime).format(date);
}
export const fmtDay = (seconds) => nyDay.format(new Date(seconds * 1000));

export function escapeHtml(text) {
  return String(text ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

export const signalText = (s) => (s > 0 ? 'LONG' : s < 0 ? 'SHORT' : 'FLAT');
export const label = (s) => String(s ?? '').replace(/_/g, ' ');
