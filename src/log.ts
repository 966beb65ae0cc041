// The run's logger: pino JSON lines on stdout (what `kubectl logs` shows), or readable text lines. Every line passes
// through a scrubber that replaces registered secrets wherever they appear, so no code path can leak one.
import pino, { type Logger } from 'pino';
import type { LogFormat, LogLevel } from './config/index.js';

export type { Logger };

export const REDACTED = '[REDACTED]';

/** Values that must never be printed. Registered as soon as they are known (auth value, registry passwords). */
export class SecretRegistry {
  private readonly values = new Set<string>();

  add(...secrets: Array<string | undefined>): void {
    for (const secret of secrets) if (secret) this.values.add(secret);
  }

  /**
   * Replaces every registered secret inside a string (longest first, so a secret containing another is fully hidden).
   */
  scrub(text: string): string {
    let result = text;
    for (const secret of [...this.values].sort((a, b) => b.length - a.length)) {
      if (result.includes(secret)) result = result.split(secret).join(REDACTED);
    }
    return result;
  }

  scrubValue(value: unknown): unknown {
    if (this.values.size === 0) return value;
    if (typeof value === 'string') return this.scrub(value);
    if (Array.isArray(value)) return value.map((item) => this.scrubValue(item));
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [this.scrub(key), this.scrubValue(item)]));
    }
    return value;
  }
}

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  secrets: SecretRegistry;
  /** Where finished lines go; stdout by default (synchronous on Linux, so nothing is lost when the process exits). */
  write?: (line: string) => void;
}

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const stream = {
    write(line: string) {
      const record = options.secrets.scrubValue(JSON.parse(line)) as Record<string, unknown>;
      write(options.format === 'text' ? formatText(record) : `${JSON.stringify(record)}\n`);
    },
  };
  return pino(
    {
      level: options.level,
      base: undefined,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: ['*.password', '*.authValue', '*.auth_value', 'headers.authorization'], censor: REDACTED },
    },
    stream,
  );
}

const FIRST_KEYS = new Set(['time', 'level', 'msg']);

/** `2026-11-27T06:00:01.123Z INFO  scan results delivered namespace=prod scan_id=42` */
export function formatText(record: Record<string, unknown>): string {
  const text = (value: unknown, fallback: string) => (typeof value === 'string' ? value : fallback);
  const level = text(record.level, 'info').toUpperCase().padEnd(5);
  const fields = Object.entries(record)
    .filter(([key]) => !FIRST_KEYS.has(key))
    .map(([key, value]) => `${key}=${formatTextValue(value)}`);
  const table = typeof record.table === 'string' ? record.table : undefined;
  const line = [
    text(record.time, ''),
    level,
    text(record.msg, ''),
    ...fields.filter((f) => !f.startsWith('table=')),
  ].join(' ');
  return table ? `${line}\n${table}\n` : `${line}\n`;
}

function formatTextValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value);
}
