// `npm run demo`: one real scan run with no infrastructure. It starts the project's loopback stand-ins (a Kubernetes
// API server holding the sample cluster of demo/cluster.ts, a replaying `trivy` over the hand-written reports in
// demo/reports, and an Ephor receiver that validates and models every payload), then runs the built CLI
// (dist/ephor-scanner.mjs) as a child process exactly as the CronJob runs it: first `ephor-scanner check`, then the
// scan. Every payload the receiver accepted is written to demo-output/<namespace>.json. One image cannot be scanned
// (its registry refuses the pull): the demo ends by showing where that is recorded, each payload's ledger.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEphorServer } from '../test/support/ephor-server.js';
import {
  FAKE_TRIVY_BIN,
  FAKE_TRIVY_SCENARIO_ENV,
  writeScenario,
  type ImageBehaviour,
} from '../test/support/fake-trivy.js';
import { scannerEnv } from '../test/support/harness.js';
import { startKubeServer } from '../test/support/k8s-server.js';
import { IMAGES, NAMESPACES, sampleCluster, scanTargets } from './cluster.js';
import { refusedPull } from './refused-pull.js';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const CLI = path.join(REPO_ROOT, 'dist', 'ephor-scanner.mjs');
const REPORTS = path.join(REPO_ROOT, 'demo', 'reports');
const OUTPUT = path.join(REPO_ROOT, 'demo-output');
/** Hard bound of each child run: the demo must never hang. */
const RUN_TIMEOUT_MS = 120_000;

const say = (text = '') => process.stdout.write(`${text}\n`);
const heading = (text: string) => say(`\n=== ${text} ${'='.repeat(Math.max(3, 100 - text.length))}`);

/** The parts of an accepted payload the demo prints. */
interface DemoPayload {
  namespace: string;
  workloads: Array<{ containers: Array<{ vulnerabilities: unknown[] }> }>;
  scan_config: {
    not_delivered: Array<{
      workload: string;
      kind: string;
      container: string;
      image: string;
      reason: string;
      detail: string;
    }>;
  };
}

function run(args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ephor-scanner ${args.join(' ')} did not finish within ${RUN_TIMEOUT_MS / 1000} s`));
    }, RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

async function main(): Promise<number> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'ephor-demo-'));
  const [kube, ephor] = await Promise.all([startKubeServer({ objects: sampleCluster() }), startEphorServer()]);
  try {
    const images: Record<string, ImageBehaviour> = {};
    for (const target of scanTargets()) {
      const { report } = IMAGES[target.image];
      images[target.ref] =
        report === undefined
          ? { fatal: refusedPull(target.ref) }
          : { report: path.join(REPORTS, report), ...(target.digest && { digest: target.digest }), delayMs: 150 };
    }
    const { scenarioPath } = await writeScenario(work, { images });
    const env: Record<string, string> = {
      ...(await scannerEnv(work, kube, ephor.url, FAKE_TRIVY_BIN)),
      SCAN_NAMESPACES: NAMESPACES.join(','),
      SCAN_WORKLOAD_TYPES: 'Deployment,StatefulSet,DaemonSet,CronJob,Pod',
      LOG_FORMAT: 'text',
      // the chart's default: scans as clients of the run's own Trivy server, its layer cache kept in TRIVY_CACHE_DIR
      TRIVY_CACHE_MODE: 'server',
      [FAKE_TRIVY_SCENARIO_ENV]: scenarioPath,
    };

    say(
      'ephor-scanner demo: a sample cluster (namespaces shop, payments, platform), a replaying trivy and an Ephor receiver,',
    );
    say(
      'all on loopback; the scanner itself is the built CLI (dist/ephor-scanner.mjs), run exactly as the CronJob runs it.',
    );
    say('One image is private and its registry refuses the scan: watch where that shows.');
    heading('1/2 preflight: ephor-scanner check');
    const checkCode = await run(['check'], env);
    heading('2/2 one scan run: ephor-scanner');
    const scanCode = await run([], env);
    await ephor.settled();

    heading('what Ephor accepted');
    await rm(OUTPUT, { recursive: true, force: true });
    await mkdir(OUTPUT, { recursive: true });
    const accepted = ephor.scanIngests();
    const parts = new Map<string, number>();
    const ledger: string[] = [];
    for (const request of accepted) {
      const body = request.body as DemoPayload;
      const count = (parts.get(body.namespace) ?? 0) + 1;
      parts.set(body.namespace, count);
      const file = path.join(OUTPUT, count === 1 ? `${body.namespace}.json` : `${body.namespace}.part-${count}.json`);
      await writeFile(file, `${JSON.stringify(body, null, 2)}\n`);
      const findings = body.workloads.reduce(
        (n, w) => n + w.containers.reduce((m, c) => m + c.vulnerabilities.length, 0),
        0,
      );
      const response = JSON.parse(request.response.body) as { scan_id: number };
      say(
        `${path.relative(process.cwd(), file).padEnd(28)} namespace ${body.namespace.padEnd(9)} ${String(body.workloads.length).padStart(2)} workloads ${String(findings).padStart(3)} findings  (HTTP ${request.response.status}, scan_id ${response.scan_id})`,
      );
      for (const entry of body.scan_config.not_delivered)
        ledger.push(
          `${body.namespace}: ${entry.kind}/${entry.workload} container ${entry.container} (${entry.image}): ${entry.reason}\n    ${entry.detail}`,
        );
    }
    if (ledger.length > 0) {
      heading('not delivered: the ledger of each payload (scan_config.not_delivered)');
      for (const line of ledger) say(line);
      say('Their findings in Ephor are left as they were; the rest of each namespace is delivered.');
    }
    const missing = NAMESPACES.filter((ns) => !parts.has(ns));
    say();
    say(
      `${accepted.length} payloads accepted for ${parts.size} of ${NAMESPACES.length} namespaces${missing.length > 0 ? ` (missing: ${missing.join(', ')})` : ''}; they are in ${path.relative(process.cwd(), OUTPUT) || '.'}/.`,
    );
    say(`preflight exit code ${checkCode}, scan exit code ${scanCode}.`);
    say('Next: "npm test" runs every test; the README explains how to install the scanner on a cluster.');
    return scanCode !== 0 || missing.length > 0 ? 1 : 0;
  } finally {
    await Promise.all([kube.close(), ephor.close()]);
    await rm(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
