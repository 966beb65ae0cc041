// The launcher: a small long-lived Node process that starts the Trivy processes for the scanner. Forking the
// scanner itself, whose heap grows to hundreds of MiB on a big cluster, costs milliseconds of blocked event loop per
// process and then a copy-on-write page fault for every heap page it touches afterwards; forking this process costs
// little. It holds no secrets of its own (its environment is empty; each request carries Trivy's environment), and
// when the scanner goes away, however it dies, it kills every process group it started and exits. It also keeps the
// SCAN_CONCURRENCY limit (start-gate.ts): scans handed over early wait here and start the moment a slot frees.
import { killGroup, type SpawnCallbacks } from '../child-process.js';
import { cancelWaitingStart, StartGate, startThroughGate } from '../start-gate.js';
import type { FromLauncher, ToLauncher } from './protocol.js';

const live = new Set<number>();
const gate = new StartGate();
/** Calls not started yet (most wait in the gate), by id, for a cancel to end them. */
const notStarted = new Map<number, SpawnCallbacks>();

function send(message: FromLauncher): void {
  if (process.connected) process.send!(message);
}

process.on('message', (message: ToLauncher) => {
  if (message.type === 'usage') {
    const usage = process.resourceUsage();
    send({
      type: 'usage',
      id: message.id,
      userMs: usage.userCPUTime / 1000,
      systemMs: usage.systemCPUTime / 1000,
      maxRssKiB: usage.maxRSS,
    });
    return;
  }
  if (message.type === 'cancel') {
    // A call that already started is killed by the scanner itself (it knows the process group).
    const callbacks = notStarted.get(message.id);
    if (callbacks) cancelWaitingStart(gate, message.id, callbacks);
    return;
  }
  const { id, type: _type, gate: limit, ...request } = message;
  let pid: number | undefined;
  const callbacks: SpawnCallbacks = {
    started(started) {
      notStarted.delete(id);
      pid = started;
      live.add(started);
      send({ type: 'started', id, pid: started });
    },
    done(result) {
      notStarted.delete(id);
      if (pid !== undefined) live.delete(pid);
      send({ type: 'done', id, ...result });
    },
  };
  notStarted.set(id, callbacks);
  startThroughGate(gate, id, limit, request, callbacks);
});

process.on('disconnect', () => {
  for (const pid of live) killGroup(pid);
  process.exit(0);
});
