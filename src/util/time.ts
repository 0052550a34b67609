/**
 * The UTC moment these calendar fields name, or undefined when they name none: `Date.UTC` (and
 * `Date.parse`) roll a day or an hour that does not exist over to another (29 February of a common
 * year becomes 1 March, 24:00 the next day), and a date someone wrote must be refused, not moved.
 */
export function utcMoment(
  year: number,
  month: number,
  day: number,
  hour = 0,
  minute = 0,
  second = 0,
): Date | undefined {
  const at = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  return at.getUTCFullYear() === year &&
    at.getUTCMonth() === month - 1 &&
    at.getUTCDate() === day &&
    at.getUTCHours() === hour &&
    at.getUTCMinutes() === minute &&
    at.getUTCSeconds() === second
    ? at
    : undefined;
}

/**
 * Why fields written in the right format name no moment ("2026-02-30 is not a day of the
 * calendar", "24:00:00 is not a time of the day"), or undefined when utcMoment finds one: a person
 * who wrote a day that does not exist is told that, not that the format is wrong.
 */
export function noSuchMoment(
  year: number,
  month: number,
  day: number,
  hour = 0,
  minute = 0,
  second = 0,
): string | undefined {
  if (utcMoment(year, month, day, hour, minute, second)) return undefined;
  const two = (n: number) => String(n).padStart(2, '0');
  if (!utcMoment(year, month, day))
    return `${String(year).padStart(4, '0')}-${two(month)}-${two(day)} is not a day of the calendar`;
  return `${two(hour)}:${two(minute)}:${two(second)} is not a time of the day`;
}
