// The Trivy runner's process-wide state, all of it, in one place. It belongs to the process, not to a run, on
// purpose: the Trivy process groups still running must be killed whenever this process exits, however it exits;
// one launcher serves every Trivy call the process makes (`trivy version`, DB downloads, scans, `check`), and once
// it has failed nobody should try it again; and the limits below bound what the whole process does at once. Nothing
// else in src/trivy keeps module-level state (the launcher process, launcher/main.ts, is its own entry point).
import { Limit } from '../limit.js';
import { killGroup } from './child-process.js';
import type { Launcher } from './launcher/client.js';
import { StartGate } from './start-gate.js';

/** Reports read at a time (scan.ts). Reading is the scanner's own CPU, so more at once gains nothing, and each one
 * holds a read buffer: scans that end together (a round of them, or a burst of quick ones) are read in turn. */
const REPORT_READS_AT_ONCE = 2;

export const trivyState = {
  /** Trivy process groups running (process.ts): killed on shutdown and when this process exits. */
  liveGroups: new Set<number>(),
  /** The launcher process (launcher/client.ts), started on first use. */
  launcher: undefined as Launcher | undefined,
  /** Set once the launcher could not be used; from then on Trivy processes are started directly. */
  direct: false,
  /** Where the SCAN_CONCURRENCY limit is kept for processes this process starts itself (no launcher). */
  directGate: new StartGate(),
  nextDirectId: 1,
  reportReads: new Limit(REPORT_READS_AT_ONCE),
  /** Database directories found once (scan.ts): they are never removed while the process runs. */
  databaseDirs: new Set<string>(),
  exitHookRegistered: false,
};

/** Kills every Trivy process group still running. */
export function killAllTrivyProcesses(): void {
  for (const pid of trivyState.liveGroups) killGroup(pid);
}

/**
 * Registers the exit hook that kills the Trivy process groups still running, whatever ends this process (an
 * error, process.exit on a second signal). Called once by the entry point (src/main.ts), not on import, so that
 * importing the runner (tests, check) has no side effect; a second call changes nothing.
 */
export function registerTrivyExitHook(): void {
  if (trivyState.exitHookRegistered) return;
  trivyState.exitHookRegistered = true;
  process.on('exit', killAllTrivyProcesses);
}
