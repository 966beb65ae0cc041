// The process's exit codes, one definition for a scan run, `check` and the command line: the CronJob's Job status,
// `helm test` and scripts read them, so they must never drift apart.

/** A scan run delivered every namespace; `check` found nothing that blocks. */
export const EXIT_OK = 0;
/** A scan run did not deliver something (or could not run at all). */
export const EXIT_NOT_DELIVERED = 1;
/** `check` found a blocker: the same code as a run that would not deliver. */
export const EXIT_BLOCKED = EXIT_NOT_DELIVERED;
/** The configuration itself is invalid (a variable, a flag, the Kubernetes configuration): nothing was contacted. */
export const EXIT_CONFIG = 2;
