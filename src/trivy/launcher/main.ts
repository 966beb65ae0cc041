// The launcher: a small long-lived Node process that starts the Trivy processes for the scanner. Forking the
// scanner itself, whose heap grows to hundreds of MiB on a big cluster, costs milliseconds of blocked event loop per
// process and then a copy-on-write page fault for every heap page it touches afterwards; forking this process costs
// little. It holds no secrets of its own (its environment is empty; each request carries Trivy's environment), and
// when the scanner goes away, however it dies, it kills every process group it started and exits.
import { killGroup, spawnGroup } from '../child-process.js';
import type { FromLauncher, ToLauncher } from './protocol.js';

const live = new Set<number>();

function send(message: FromLauncher): void {
  if (process.connected) process.send!(message);
}

process.on('message', (message: ToLauncher) => {
  if (message.type === 'usage') {
    const usage = process.resourceUsage();
    send({ type: 'usage', id: message.id, userMs: usage.userCPUTime / 1000, systemMs: usage.systemCPUTime / 1000, maxRssKiB: usage.maxRSS });
    return;
  }
  const { id, type: _type, ...request } = message;
  let pid: number | undefined;
  try {
    spawnGroup(request, {
      started(started) {
        pid = started;
        live.add(started);
        send({ type: 'started', id, pid: started });
      },
      done(result) {
        if (pid !== undefined) live.delete(pid);
        send({ type: 'done', id, ...result });
      },
    });
  } catch (error) {
    send({ type: 'done', id, exitCode: null, signal: null, stdout: '', stderr: '', spawnError: (error as Error).message });
  }
});

process.on('disconnect', () => {
  for (const pid of live) killGroup(pid);
  process.exit(0);
});
