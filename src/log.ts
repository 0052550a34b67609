/** The progress log every job writes to: stderr lines on the CLI, the invocation context in Functions. */
export interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

// Belt and braces: whatever reaches a log line, a bearer token, an account key or a SAS signature
// never does (SPEC section 3: secrets never appear in logs).
const SECRET_PATTERNS: Array<[RegExp, string]> = [
  [/(Bearer\s+)[A-Za-z0-9\-_.~+/=]+/gi, '$1[redacted]'],
  [/((?:AccountKey|accesskey|SharedAccessSignature|sig)=)[^;&\s"]+/gi, '$1[redacted]'],
  [/\beyJ[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*/g, '[redacted-token]'],
];

export function redact(message: string): string {
  let out = message;
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

