// The result of one preflight check: what was looked at, whether it passed, and what to change when it did not.

export type CheckGroup = 'configuration' | 'ephor' | 'kubernetes' | 'rbac' | 'lock' | 'trivy' | 'registry';

/** pass; warn: the scanner runs, but something is missing or degraded; fail: a blocker. */
export type CheckStatus = 'pass' | 'warn' | 'fail';

export interface CheckResult {
  group: CheckGroup;
  status: CheckStatus;
  /** One line: what was checked and what was found. */
  message: string;
  /** For warn and fail: the change to make, in words an operator can apply. */
  fix?: string;
  /** A failure of the configuration itself (exit code 2 instead of 1). */
  configuration?: boolean;
}

export const pass = (group: CheckGroup, message: string): CheckResult => ({ group, status: 'pass', message });
export const warn = (group: CheckGroup, message: string, fix: string): CheckResult => ({
  group,
  status: 'warn',
  message,
  fix,
});
export const fail = (group: CheckGroup, message: string, fix: string): CheckResult => ({
  group,
  status: 'fail',
  message,
  fix,
});

/** Every outside call of the check (HTTP, Kubernetes API, `trivy version`) gives up after this long. */
export const CALL_TIMEOUT_MS = 5_000;
/** A whole check group gives up after this long, whatever hangs inside it. */
export const GROUP_TIMEOUT_MS = 20_000;
