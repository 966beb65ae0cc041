// scratch: discovery memory at 20k workloads (server in a child process so its heap doesn't count)
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
if (process.argv[2] === 'server') {
  const { generateCluster } = await import('./bench/cluster.ts');
  const { startKubeServer } = await import('./test/support/k8s-server.ts');
  const g = generateCluster({ namespaces: 100, workloadsPerNamespace: 200, replicas: 3, images: 500 });
  const kube = await startKubeServer({ bulk: true, objects: g.objects });
  const kc = await kube.writeKubeconfig(process.argv[3]!);
  process.send!({ kc });
} else {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'memprobe-'));
  const child = fork(new URL(import.meta.url).pathname, ['server', dir], { execArgv: ['--import', 'tsx'] });
  const kc: string = await new Promise((r) => child.on('message', (m: any) => r(m.kc)));
  const { loadKubeConfig, createKubeClient } = await import('./src/kube/client.ts');
  const { discoverWorkloads } = await import('./src/kube/discover.ts');
  const { planScans } = await import('./src/images/plan.ts');
  const { createLogger, SecretRegistry } = await import('./src/log.ts');
  const log = createLogger({ level: 'warn', format: 'json', secrets: new SecretRegistry() });
  const { kubeConfig } = loadKubeConfig({ KUBECONFIG: kc });
  const client = createKubeClient(kubeConfig, 30_000);
  let peak = 0; const iv = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
  global.gc?.(); const base = process.memoryUsage();
  const t = performance.now();
  const d = await discoverWorkloads(client, { namespaces: 'all', kinds: ['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob'] }, log);
  const ms = performance.now() - t;
  const plan = planScans(d.namespaces, d.workloads);
  global.gc?.();
  const after = process.memoryUsage();
  clearInterval(iv);
  console.log(JSON.stringify({ ms: Math.round(ms), workloads: d.workloads.length, targets: plan.targets.length, baseRss: base.rss >> 20, baseHeap: base.heapUsed >> 20, peakRss: peak >> 20, heapAfterGc: after.heapUsed >> 20, rssAfter: after.rss >> 20 }));
  child.kill();
  process.exit(0);
}
