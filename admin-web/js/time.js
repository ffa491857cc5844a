// Budget windows: the start of the current day or month in a tenant's
// time zone (no DOM: also imported by the tests under node).

// Offset (ms) of timeZone from UTC at instant t (ms).
function tzOffset(t, timeZone) {
  const parts = {};
  for (const p of new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(new Date(t))) parts[p.type] = p.value;
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return asUtc - Math.floor(t / 1000) * 1000;
}

// Unix seconds (whole minute) of the start of the current day or month in
// timeZone: where the control plane starts the budget window.
export function periodStart(period, timeZone, now = Date.now()) {
  let tz = timeZone || 'UTC';
  try {
    tzOffset(now, tz);
  } catch {
    tz = 'UTC';
  }
  const local = new Date(now + tzOffset(now, tz));
  const y = local.getUTCFullYear();
  const m = local.getUTCMonth();
  const d = period === 'monthly' ? 1 : local.getUTCDate();
  const wall = Date.UTC(y, m, d);
  let t = wall - tzOffset(wall, tz);
  t = wall - tzOffset(t, tz); // second pass across a DST change
  return Math.floor(t / 60000) * 60;
}
