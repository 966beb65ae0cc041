// A stand-in scanner for the launcher tests: runs one "Trivy" (argv[2], an executable) through runTrivy, the way the
// scanner does, prints "launched" once the process exists, and waits. The test then kills this process outright.
import { launcherPid } from '../../src/trivy/launcher/client.js';
import { runTrivy } from '../../src/trivy/process.js';

const binary = process.argv[2]!;
const pending = runTrivy({ binary, args: [], env: { PATH: process.env.PATH }, timeoutMs: 120_000 });
const poll = setInterval(() => {
  const pid = launcherPid();
  if (pid !== undefined) {
    clearInterval(poll);
    process.stdout.write(`launched ${pid}\n`);
  }
}, 20);
await pending;
