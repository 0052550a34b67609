/**
 * Days and months of the activation history, and where each is final: a daily folder is final once
 * its manifest exists, a month's pack once its manifest does (docs/guarantees.md).
 */
import type { ActivationRow } from '../pim/model';

const DAY_MS = 24 * 3600 * 1000;

export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

export function previousDay(day: string): string {
  return utcDay(new Date(Date.parse(`${day}T00:00:00Z`) - DAY_MS));
}

/** `daily/2026/11/24/` for the UTC day of `at`. */
export function dayFolder(at: Date): string {
  const iso = at.toISOString();
  return `daily/${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/`;
}

/** The manifest that makes a day final: `daily/2026/11/24/manifest.json` for `2026-11-24`. */
export function dailyManifest(day: string): string {
  return `${dayFolder(new Date(`${day}T00:00:00Z`))}manifest.json`;
}

export function parseMonth(value: string): string {
  if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(value)) throw new Error(`a month is written YYYY-MM, got "${value}"`);
  return value;
}

/** The month's first moment and the next month's (exclusive). */
export function monthBounds(month: string): { start: Date; end: Date } {
  const [y, m] = month.split('-').map(Number);
  return { start: new Date(Date.UTC(y, m - 1, 1)), end: new Date(Date.UTC(y, m, 1)) };
}

export function monthOf(at: Date): string {
  return at.toISOString().slice(0, 7);
}

export function previousMonth(month: string): string {
  return monthOf(new Date(monthBounds(month).start.getTime() - 1));
}

export function nextMonth(month: string): string {
  return monthOf(monthBounds(month).end);
}

/** The archive folder of a month's pack. */
export const archiveFolder = (month: string) => `monthly/${month}/`;

/** The manifest that makes a month's pack complete. */
export const monthlyManifest = (month: string) => `${archiveFolder(month)}manifest.json`;

/** The folder of `state/activations/` an activation is kept under: its month, or `unknown` without a time. */
export function monthOfActivation(row: ActivationRow): string {
  return row.activated.slice(0, 7) || 'unknown';
}

/** The rows of one month from rows sorted by time (those without a time first): stops past it. */
export async function* ofMonth(
  batches: AsyncIterable<ActivationRow[]>,
  month: string,
): AsyncGenerator<ActivationRow[]> {
  for await (const batch of batches) {
    const rows = batch.filter((row) => monthOfActivation(row) === month);
    if (rows.length > 0) yield rows;
    const last = batch[batch.length - 1];
    if (month === 'unknown' ? last.activated !== '' : last.activated.slice(0, 7) > month) return;
  }
}
