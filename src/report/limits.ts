// Ephor stores strings in PostgreSQL columns of fixed length; a longer value, a NUL character or a broken UTF-16
// surrogate is a 500 that rolls back the whole namespace. Every string sent goes through these functions.

/** Column lengths (characters) from the contract, ephor-api-contract.md §3.2 and §7. */
export const COLUMN_LENGTH = {
  namespace: 255,
  scanLabel: 255,
  workloadName: 255,
  containerName: 255,
  labelKey: 100,
  labelValue: 255,
  imageName: 500,
  imageTag: 255,
  osFamily: 50,
  osName: 50,
  trivyVersion: 50,
  cveId: 50,
  packageName: 255,
  packageVersion: 100,
  fixedVersion: 100,
  primaryUrl: 500,
  cvssVector: 200,
  packageClass: 20,
  packageType: 50,
  scannerType: 100,
} as const;

/** Removes NUL and replaces lone surrogates, which PostgreSQL cannot store. */
export function cleanText(text: string): string {
  return text.replaceAll('\u0000', '').toWellFormed();
}

/** Cuts to at most `max` characters, counted in code points as PostgreSQL counts them (never splitting a pair). */
export function truncate(text: string, max: number): string {
  const clean = cleanText(text);
  if (clean.length <= max) return clean;
  const codePoints = Array.from(clean);
  return codePoints.length <= max ? clean : codePoints.slice(0, max).join('');
}

export function codePointLength(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** A value Ephor's @NotBlank accepts: at least one character above U+0020 after trimming. */
export function isBlank(text: string | undefined): boolean {
  // eslint-disable-next-line no-control-regex -- the control characters are exactly what counts as blank
  return text === undefined || !/[^\u0000-\u0020]/.test(text);
}

/**
 * Trivy may join alternative fixes with ", " (`1.2.3, 2.2.1, 3.0.1`). Beyond the column length, keep as many whole
 * alternatives as fit, so the value stays meaningful; a single over-long version is cut.
 */
export function truncateVersionList(text: string, max: number): string {
  const clean = cleanText(text);
  if (codePointLength(clean) <= max) return clean;
  let kept = '';
  for (const part of clean.split(', ')) {
    const next = kept ? `${kept}, ${part}` : part;
    if (codePointLength(next) > max) break;
    kept = next;
  }
  return kept || truncate(clean, max);
}

/** An ISO-8601 instant with `Z` that Ephor's Instant parser accepts, or undefined for anything unparsable. */
export function isoInstant(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const date = new Date(value);
  const year = date.getUTCFullYear();
  if (!Number.isFinite(date.getTime()) || year < 1 || year > 9999) return undefined;
  return date.toISOString();
}
