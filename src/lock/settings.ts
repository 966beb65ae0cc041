// The run lock's settings as the settings table parses them (src/config/settings.ts): pure parsers that throw a
// ValueError saying what is allowed; the config loader adds the variable's name and value.
import { ValueError, parseChoice, parseDurationMs } from '../config/parse.js';
import { lockNameProblem, lockNamespaceProblem } from './identity.js';

/** RUN_LOCK: `lease` (a coordination.k8s.io Lease) or `none` (no lock: nothing keeps two runs from posting at once). */
export type LockMode = 'lease' | 'none';

export const DEFAULT_LOCK_NAME = 'ephor-scanner';

export function parseLockMode(text: string): LockMode {
  return parseChoice(text, ['lease', 'none'] as const);
}

export function parseLockName(text: string): string {
  const name = text.trim();
  const problem = lockNameProblem(name);
  if (problem) throw new ValueError(problem);
  return name;
}

export function parseLockNamespace(text: string): string {
  const namespace = text.trim();
  const problem = lockNamespaceProblem(namespace);
  if (problem) throw new ValueError(problem);
  return namespace;
}

/** RUN_LOCK_WAIT: a duration, or 0 (0s, 0m…): do not wait, give up at once when another run holds the lock. */
export function parseLockWait(text: string): number {
  const trimmed = text.trim();
  if (/^0+(\.0+)?(ns|us|µs|μs|ms|s|m|h)?$/.test(trimmed)) return 0;
  return parseDurationMs(trimmed);
}
