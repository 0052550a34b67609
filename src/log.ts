/** The progress log every job writes to: stderr lines on the CLI, the invocation context in Functions. */
export interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

// Belt and braces: whatever reaches a log line, a bearer token, an account key or a SAS signature
// never does (docs/settings.md: secrets never appear in logs).
const SECRET_PATTERNS: Array<[RegExp, string]> = [
  [/(Bearer\s+)[A-Za-z0-9\-_.~+/=]+/gi, '$1[redacted]'],
  [/((?:AccountKey|accesskey|SharedAccessSignature|sig)=)[^;&\s"]+/gi, '$1[redacted]'],
  [/\beyJ[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*/g, '[redacted-token]'],
  // The userinfo of any URL (https://user:password@host): a password is never printed.
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]+@/gi, '$1[redacted]@'],
];

/**
 * The actual secret values in force (the identity endpoint's header, account and access keys, a
 * SAS): redacted wherever they appear, whatever the surrounding text (an endpoint may echo a header
 * in no pattern above). Too-short values are ignored: they would redact ordinary words.
 */
const secretValues = new Set<string>();

export function registerSecrets(values: Iterable<string | undefined>): void {
  for (const value of values) if (value && value.length >= 8) secretValues.add(value);
}

export function redact(message: string): string {
  let out = message;
  for (const value of secretValues) out = out.split(value).join('[redacted]');
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

export function redacting(log: Log): Log {
  return {
    info: (m) => log.info(redact(m)),
    warn: (m) => log.warn(redact(m)),
    error: (m) => log.error(redact(m)),
  };
}

/** Lines on a stream (stderr for the CLI), each prefixed with the time. */
export function streamLog(stream: NodeJS.WritableStream): Log {
  const line = (level: string) => (m: string) => {
    stream.write(`${new Date().toISOString().slice(11, 19)} ${level}${m}\n`);
  };
  return redacting({ info: line(''), warn: line('warning: '), error: line('error: ') });
}
