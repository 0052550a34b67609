/**
 * How far V8 lets the heap grow past what survived its last full collection before it collects
 * again. By default it picks a factor of 1.1 to 4 from how fast the program allocates
 * (https://github.com/v8/v8/blob/main/src/heap/heap-controller.cc): a run that streams a tenant
 * through its sorters allocates fast and keeps little (about 40 MB live at `npm run bench`'s scale
 * 1), so V8 chose close to 4 and the process peaked at 270 to 310 MB (340 MB at twice the size).
 * A fixed factor of 1.5 keeps it near 200 MB (215 MB at twice the size) for about 10 % more CPU,
 * the collector's (docs/performance.md, "Where the memory goes").
 *
 * `--heap-growing-percent` is a V8 flag
 * (https://github.com/v8/v8/blob/main/src/flags/flag-definitions.h) that V8 reads whenever it sets
 * the next limit, so it takes effect when set from code at startup (measured by the bench, as
 * above); it is not one of the flags NODE_OPTIONS accepts
 * (https://nodejs.org/api/cli.html#node_optionsoptions), hence here. A flag given on the command
 * line wins.
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 50;

/** Sets the factor unless the process was started with a factor of its own; returns the flag set, if any. */
export function limitHeapGrowth(
  execArgv: readonly string[] = process.execArgv,
  setFlags: (flags: string) => void = setFlagsFromString,
): string | undefined {
  if (execArgv.some((arg) => /^--heap[-_]growing[-_]percent\b/.test(arg))) return undefined;
  const flag = `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
  setFlags(flag);
  return flag;
}
