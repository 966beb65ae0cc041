// Lease timestamps are MicroTime (k8s.io/apimachinery meta/v1 micro_time.go): RFC 3339 in UTC with exactly six
// fraction digits, "2026-12-02T14:39:06.123456Z". The API server parses them with that layout and rejects anything
// else (a JavaScript toISOString() has three digits), so they are written here in exactly that form.

/** A wall-clock time (epoch milliseconds, fractions kept to the microsecond) as MicroTime. */
export function formatMicroTime(epochMs: number): string {
  const micros = Math.floor(epochMs * 1000);
  const seconds = Math.floor(micros / 1_000_000);
  const fraction = String(micros - seconds * 1_000_000).padStart(6, '0');
  return `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${fraction}Z`;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Epoch milliseconds (microseconds as the fraction) of an RFC 3339 time, as other writers of a Lease may send it
 * (any fraction, any offset); undefined when it is not one.
 */
export function parseMicroTime(text: string): number | undefined {
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second, fraction = '', zone = 'Z'] = match;
  const fields = [month, day, hour, minute, second].map(Number) as [number, number, number, number, number];
  const [mo, d, h, mi, s] = fields;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return undefined;
  const offsetMinutes =
    zone.toUpperCase() === 'Z'
      ? 0
      : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4)));
  const micros = Number(fraction.slice(0, 6).padEnd(6, '0'));
  return Date.UTC(Number(year), mo - 1, d, h, mi, s) - offsetMinutes * 60_000 + micros / 1000;
}
