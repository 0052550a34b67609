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
