export const EPHOR_LABEL_PREFIX = 'ephor.dev/';

/** A workload's own `ephor.dev/*` labels, prefix stripped (`ephor.dev/exposure: public` → `exposure: public`). */
export function ephorLabels(labels: Record<string, unknown> | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (key.startsWith(EPHOR_LABEL_PREFIX) && key.length > EPHOR_LABEL_PREFIX.length && typeof value === 'string') {
      result[key.slice(EPHOR_LABEL_PREFIX.length)] = value;
    }
  }
  return result;
}
