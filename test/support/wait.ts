// Waiting in tests: poll until a condition holds (or the process it depends on has exited), never for a fixed
// time. The machine running the suite may be slow by a factor of ten, so a wait has no window of its own: its bound
// is only a safety net against a condition that never comes, far beyond what a loaded machine needs (the test's own
// `timeout` usually comes first).
import { setTimeout as sleep } from 'node:timers/promises';

/** How long a poll may go on before it gives up: a hang guard, not a time limit on the behaviour under test. */
export const SAFETY_NET_MS = 60_000;

/**
 * Polls `condition` every `intervalMs` until it holds or `stop()` says waiting is pointless (e.g. the process it
 * watches has exited); true if the condition held. Give the result to an assertion with a message.
 */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  options: { stop?: () => boolean; intervalMs?: number; boundMs?: number } = {},
): Promise<boolean> {
  const { stop = () => false, intervalMs = 50, boundMs = SAFETY_NET_MS } = options;
  for (const until = Date.now() + boundMs; Date.now() < until && !stop(); await sleep(intervalMs))
    if (await condition()) return true;
  return condition();
}
