import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The app's version, recorded in every manifest: from the nearest package.json above this file
 * (src/ under ts-jest, dist/src/ when built). */
function readVersion(): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? '0.0.0';
  }
  return '0.0.0';
}

export const APP_VERSION = readVersion();
