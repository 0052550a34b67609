/** Timestamp helpers that produce Graph's textual forms (3 to 7 fractional digits, as captures show; no public page states it). */

const DAY_MS = 86_400_000;
export const HOUR_MS = 3_600_000;
export { DAY_MS };

/** `YYYY-MM-DDTHH:MM:SS.fffffffZ` with `digits` fractional digits (0 = none); `subMs` adds the 4th-7th digits. */
export function graphTime(ms: number, digits: 0 | 3 | 6 | 7 = 3, subMs = 0): string {
  const base = new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19);
  if (digits === 0) return `${base}Z`;
  const frac = String(((ms % 1000) + 1000) % 1000).padStart(3, '0') + String(subMs).padStart(4, '0');
  return `${base}.${frac.slice(0, digits)}Z`;
}

/** .NET ticks (100 ns since 0001-01-01), as in PIM audit ids `PIM_<guid>_<guid>_<ticks>`. */
export function dotnetTicks(ms: number, subMs = 0): string {
  return (BigInt(Math.floor(ms)) * 10000n + BigInt(subMs) + 621355968000000000n).toString();
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7})\d*)?)?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * A sortable UTC key with 100-ns precision (`YYYY-MM-DDTHH:MM:SS.fffffff`), or null when `text` is not an
 * ISO-8601 timestamp with a zone. Plain string comparison of Graph timestamps is wrong because precisions mix.
 */
export function timeKey(text: string): string | null {
  const m = ISO.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s = '00', frac = '', zone] = m;
  let ms = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s);
  if (Number.isNaN(ms)) return null;
  if (zone.toUpperCase() !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    ms -= sign * (+zone.slice(1, 3) * 60 + +zone.slice(4, 6)) * 60_000;
  }
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac.padEnd(7, '0')}`;
}
