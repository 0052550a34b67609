/**
 * docs/faults.md: Security: no token, key, connection string or identity secret in any log line. Tests feed
 * every captured log (CLI stderr, InvocationContext lines) through `leakedSecrets` and expect [].
 */
import { DEVSTORE_KEY } from '../../tools/azurite';

const PATTERNS: Array<[string, RegExp]> = [
  ['a bearer token', /Bearer\s+(?!\[redacted)[A-Za-z0-9\-_.~+/=]{8,}/i],
  ['a JWT', /eyJ[A-Za-z0-9\-_]{4,}\.[A-Za-z0-9\-_]{4,}/],
  ['an account key', /AccountKey=(?!\[redacted)[^;&\s"']+/i],
  ['an ACS access key', /accesskey=(?!\[redacted)[^;&\s"']+/i],
  ['a SAS signature', /\bsig=(?!\[redacted)[^;&\s"']+/i],
  ['a SharedAccessSignature', /SharedAccessSignature=(?!\[redacted)[^;&\s"']+/i],
];

/** What in `text` looks like a secret, or is one of `known` (identity header, keys); [] when clean. */
export function leakedSecrets(text: string, known: Array<string | undefined> = []): string[] {
  const found: string[] = [];
  for (const [what, pattern] of PATTERNS) {
    const m = pattern.exec(text);
    if (m) found.push(`${what}: …${text.slice(Math.max(0, m.index - 40), m.index + 60)}…`);
  }
  for (const secret of [DEVSTORE_KEY, ...known]) {
    if (secret && secret.length >= 8 && text.includes(secret)) found.push(`a known secret (${secret.slice(0, 4)}…)`);
  }
  return found;
}
