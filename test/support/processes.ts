// Whether a process the tests started (or had started) still runs, from signal 0 and /proc: for kill and cleanup
// assertions, always polled (processGone), since how soon a kill takes effect depends on the load of the machine.
import { readFileSync } from 'node:fs';
import { eventually } from './wait.js';

/** Signal 0 reaches it, and it is not a zombie nobody reaped yet (dead for every purpose of the tests). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Polls until the process is gone; false if it still runs when the wait's safety net ends. */
export const processGone = (pid: number): Promise<boolean> => eventually(() => !isAlive(pid));
