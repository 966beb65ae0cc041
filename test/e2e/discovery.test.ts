// The Kubernetes side of a run: paged lists, expired continue tokens, retried and failed list calls, a stalled API
// server, RBAC gaps, `SCAN_NAMESPACES=*`, workload-type selection, kubeconfig loading and invalid image references.
// Every case runs the built CLI against the three stand-ins and checks what an operator would check.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import type { ScanIngestRequest } from '../../src/types.js';
import {
  logsWith,
  runScanner,
  scannedRef,
  startStandIns,
  type ScannerRun,
  type StandIns,
  type StandInOptions,
} from '../support/harness.js';
import { cronJob, daemonSet, deployment, statefulSet } from '../support/k8s-objects.js';
import type { RecordedRequest, ResourceName } from '../support/k8s-server.js';

// ---------------------------------------------------------------- helpers

/** Every image scans fine with a small real report, so only the Kubernetes side can fail. */
const EVERY_IMAGE_SCANS = { defaultImage: { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' } } as const;
const RESOURCES: ResourceName[] = ['deployments', 'statefulsets', 'daemonsets', 'cronjobs'];
const GROUP: Partial<Record<ResourceName, string>> = {
  deployments: 'apps',
  statefulsets: 'apps',
  daemonsets: 'apps',
  cronjobs: 'batch',
};
const MISSING_RBAC =
  /^allow verb "list" on resource "(deployments|statefulsets|daemonsets|cronjobs)" \(apiGroup "(apps|batch)"\) in namespace "[^"]+" for system:serviceaccount:ephor:ephor-scanner$/;

interface DiscoveryErrorEntry {
  kind: string;
  status?: number;
  reason: string;
  message: string;
  missing_rbac?: string;
}
interface LedgerEntry {
  workload: string;
  kind: string;
  container: string;
  image: string;
  reason: string;
  detail: string;
}

/**
 * Starts the stand-ins, lets `prepare` seed them, runs the scanner once with `env` on top of their environment;
 * the stand-ins stay up for the checks.
 */
async function scenario(
  options: StandInOptions,
  env: Record<string, string | undefined>,
  { timeoutMs = 60_000, prepare }: { timeoutMs?: number; prepare?: (standIns: StandIns) => void } = {},
): Promise<{ standIns: StandIns; run: ScannerRun }> {
  const standIns = await startStandIns({ trivy: EVERY_IMAGE_SCANS, ...options });
  try {
    prepare?.(standIns);
    const run = await runScanner({ ...standIns.env, ...env }, { timeoutMs });
    return { standIns, run };
  } catch (error) {
    await standIns.close();
    throw error;
  }
}

/** Every accepted ingest body, grouped by namespace (a namespace posted twice shows up as two entries). */
function payloadsByNamespace(standIns: StandIns): Map<string, ScanIngestRequest[]> {
  const result = new Map<string, ScanIngestRequest[]>();
  for (const request of standIns.ephor.scanIngests()) {
    const body = request.body as ScanIngestRequest;
    result.set(body.namespace, [...(result.get(body.namespace) ?? []), body]);
  }
  return result;
}

/** The one payload of `namespace` (fails if there is none or more than one). */
function payloadOf(standIns: StandIns, namespace: string): ScanIngestRequest {
  const payloads = payloadsByNamespace(standIns).get(namespace) ?? [];
  assert.equal(payloads.length, 1, `exactly one payload for namespace ${namespace}`);
  return payloads[0]!;
}

function workloadIds(payload: ScanIngestRequest): string[] {
  return payload.workloads.map((w) => `${w.kind}/${w.name}`).sort();
}

function discoveryErrorsOf(payload: ScanIngestRequest): DiscoveryErrorEntry[] {
  return (payload.scan_config.discovery_errors as DiscoveryErrorEntry[] | undefined) ?? [];
}

function ledgerOf(payload: ScanIngestRequest): LedgerEntry[] {
  return payload.scan_config.not_delivered;
}

function listPath(resource: ResourceName, namespace: string): string {
  return `/apis/${GROUP[resource]}/v1/namespaces/${namespace}/${resource}`;
}

/** The list requests the stand-in received for one resource in one namespace, in arrival order. */
function listRequests(standIns: StandIns, resource: ResourceName, namespace: string): RecordedRequest[] {
  return standIns.kube.requests.filter((r) => r.path === listPath(resource, namespace));
}

function exitedWith(run: ScannerRun, code: number): void {
  assert.equal(run.exitCode, code, `exit code\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
}

/** One workload of each kind in `namespace`, all with the same image (one scan). */
function oneOfEachKind(namespace: string, image = 'nginx:1.25') {
  return [
    deployment({ namespace, name: 'web', containers: [{ name: 'web', image }] }),
    statefulSet({ namespace, name: 'db', containers: [{ name: 'db', image }] }),
    daemonSet({ namespace, name: 'agent', containers: [{ name: 'agent', image }] }),
    cronJob({ namespace, name: 'report', containers: [{ name: 'report', image }] }),
  ];
}

const SEVEN_DEPLOYMENTS = Array.from({ length: 7 }, (_, i) => `web-${i + 1}`);
function sevenDeployments(namespace: string) {
  return SEVEN_DEPLOYMENTS.map((name) =>
    deployment({ namespace, name, containers: [{ name: 'app', image: 'nginx:1.25' }] }),
  );
}

// ---------------------------------------------------------------- pagination

describe('a namespace with more Deployments than fit on one page', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario(
      { cluster: { maxPageSize: 2, objects: sevenDeployments('paged') } },
      { SCAN_NAMESPACES: 'paged' },
    ));
  });
  after(() => standIns?.close());

  test('exit 0 and all 7 Deployments are in the payload, each once', () => {
    exitedWith(run, 0);
    const payload = payloadOf(standIns, 'paged');
    assert.equal(payload.status, 'completed');
    assert.deepEqual(workloadIds(payload), SEVEN_DEPLOYMENTS.map((n) => `Deployment/${n}`).sort());
    assert.equal(discoveryErrorsOf(payload).length, 0);
  });

  test('the list is paged: every request has a limit, the follow-up pages carry the continue token', () => {
    const pages = listRequests(standIns, 'deployments', 'paged');
    assert.equal(pages.length, 4, '7 objects at 2 per page');
    for (const page of pages) {
      assert.equal(page.status, 200);
      assert.match(page.query.limit ?? '', /^[1-9]\d*$/, 'limit is set on every page');
    }
    assert.equal(pages[0]!.query.continue, undefined, 'the first page has no continue token');
    for (const page of pages.slice(1)) assert.ok(page.query.continue, 'follow-up pages send continue');
    assert.equal(new Set(pages.slice(1).map((p) => p.query.continue)).size, 3, 'each follow-up page uses a new token');
  });

  test('the kubeconfig names a plain http:// server without insecure-skip-tls-verify, and it works', async () => {
    const kubeconfig = YAML.parse(await readFile(standIns.env.KUBECONFIG!, 'utf8')) as {
      clusters: Array<{ cluster: Record<string, unknown> }>;
    };
    assert.equal(kubeconfig.clusters.length, 1);
    const cluster = kubeconfig.clusters[0]!.cluster;
    assert.match(String(cluster.server), /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(!('insecure-skip-tls-verify' in cluster), 'no insecure-skip-tls-verify in the kubeconfig');
    const [configured] = logsWith(run, 'kubernetes configured');
    assert.equal(configured?.server, standIns.kube.url);
    assert.ok(standIns.kube.requests.length > 0);
    exitedWith(run, 0);
  });
});

// ---------------------------------------------------------------- 410 Expired

describe('an expired continue token (410) once', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario(
      {
        cluster: {
          maxPageSize: 2,
          objects: sevenDeployments('paged'),
          faults: [{ resource: 'deployments', namespace: 'paged', status: 410, onlyContinue: true, times: 1 }],
        },
      },
      { SCAN_NAMESPACES: 'paged' },
    ));
  });
  after(() => standIns?.close());

  test('the list is restarted once from the first page', () => {
    const pages = listRequests(standIns, 'deployments', 'paged');
    assert.deepEqual(
      pages.map((p) => [p.query.continue === undefined ? 'first' : 'continue', p.status]),
      [
        ['first', 200],
        ['continue', 410],
        ['first', 200],
        ['continue', 200],
        ['continue', 200],
        ['continue', 200],
      ],
    );
  });

  test('nothing is missing or duplicated, and no discovery error is recorded', () => {
    exitedWith(run, 0);
    const payload = payloadOf(standIns, 'paged');
    assert.deepEqual(workloadIds(payload), SEVEN_DEPLOYMENTS.map((n) => `Deployment/${n}`).sort());
    assert.equal(discoveryErrorsOf(payload).length, 0);
    assert.equal(logsWith(run, 'discovery failed').length, 0);
  });
});

describe('an expired continue token (410) on every continue', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  const hidden = {
    namespace: 'paged',
    workload: 'web-7',
    kind: 'Deployment',
    container: 'app',
    cveId: 'CVE-2024-7777',
    packageName: 'zlib',
    packageVersion: '1.2',
    scannerType: 'alpine',
  };
  before(async () => {
    ({ standIns, run } = await scenario(
      {
        cluster: {
          maxPageSize: 2,
          objects: [
            ...sevenDeployments('paged'),
            statefulSet({ namespace: 'paged', name: 'db', containers: [{ name: 'db', image: 'alpine:3.10' }] }),
            ...oneOfEachKind('other'),
          ],
          faults: [{ resource: 'deployments', namespace: 'paged', status: 410, onlyContinue: true }],
        },
      },
      { SCAN_NAMESPACES: 'paged,other' },
      {
        prepare: (s) => {
          s.ephor.seedFinding(hidden);
        },
      },
    ));
  });
  after(() => standIns?.close());

  test('the list is restarted once, then given up', () => {
    const pages = listRequests(standIns, 'deployments', 'paged');
    assert.deepEqual(
      pages.map((p) => [p.query.continue === undefined ? 'first' : 'continue', p.status]),
      [
        ['first', 200],
        ['continue', 410],
        ['first', 200],
        ['continue', 410],
      ],
    );
  });

  test('the failed list is logged with status 410', () => {
    const failures = logsWith(run, 'discovery failed');
    assert.equal(failures.length, 1, run.stdout);
    assert.equal(failures[0]!.namespace, 'paged');
    assert.equal(failures[0]!.kind, 'Deployment');
    assert.equal(failures[0]!.status, 410);
    assert.equal(failures[0]!.reason, 'Expired');
  });

  test('the rest continues: the other kinds and namespaces are delivered, exit 0', () => {
    exitedWith(run, 0);
    const paged = payloadOf(standIns, 'paged');
    assert.equal(paged.status, 'completed');
    assert.deepEqual(workloadIds(paged), ['StatefulSet/db'], 'no partial Deployment list is sent');
    assert.deepEqual(
      discoveryErrorsOf(paged).map((e) => [e.kind, e.status]),
      [['Deployment', 410]],
    );
    assert.deepEqual(workloadIds(payloadOf(standIns, 'other')), [
      'CronJob/report',
      'DaemonSet/agent',
      'Deployment/web',
      'StatefulSet/db',
    ]);
  });

  test('open findings of the Deployments that could not be listed stay open', () => {
    assert.equal(standIns.ephor.instance(hidden)?.status, 'open');
  });
});

// ---------------------------------------------------------------- 500

describe('an InternalError (500) on one list, once', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario(
      {
        cluster: {
          objects: oneOfEachKind('shop'),
          faults: [{ resource: 'statefulsets', namespace: 'shop', status: 500, times: 1 }],
        },
      },
      { SCAN_NAMESPACES: 'shop' },
    ));
  });
  after(() => standIns?.close());

  test('the list call is retried and succeeds', () => {
    assert.deepEqual(
      listRequests(standIns, 'statefulsets', 'shop').map((r) => r.status),
      [500, 200],
    );
  });

  test('everything is delivered, no discovery error, exit 0', () => {
    exitedWith(run, 0);
    const payload = payloadOf(standIns, 'shop');
    assert.deepEqual(workloadIds(payload), ['CronJob/report', 'DaemonSet/agent', 'Deployment/web', 'StatefulSet/db']);
    assert.equal(discoveryErrorsOf(payload).length, 0);
    assert.equal(logsWith(run, 'discovery failed').length, 0);
  });
});

describe('an InternalError (500) on a later page of a paged list, every time', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario(
      {
        cluster: {
          maxPageSize: 2,
          objects: [...sevenDeployments('paged'), ...sevenDeployments('other')],
          faults: [{ resource: 'deployments', namespace: 'paged', status: 500, onlyContinue: true }],
        },
      },
      { SCAN_NAMESPACES: 'paged,other' },
    ));
  });
  after(() => standIns?.close());

  test('the first page is not delivered alone: the list fails as a whole, is logged with its status, and resolves nothing', () => {
    exitedWith(run, 0);
    const payload = payloadOf(standIns, 'paged');
    assert.deepEqual(workloadIds(payload), [], 'a half-read list would make its missing workloads look gone');
    assert.deepEqual(
      discoveryErrorsOf(payload).map((e) => [e.kind, e.status]),
      [['Deployment', 500]],
    );
    const [failure] = logsWith(run, 'discovery failed');
    assert.equal(failure?.status, 500);
  });

  test('the other namespace is delivered in full', () => {
    assert.deepEqual(workloadIds(payloadOf(standIns, 'other')), SEVEN_DEPLOYMENTS.map((n) => `Deployment/${n}`).sort());
  });
});

describe('an InternalError (500) on every list of one kind', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario(
      {
        cluster: {
          objects: [...oneOfEachKind('shop'), ...oneOfEachKind('tools')],
          faults: [{ resource: 'daemonsets', namespace: 'shop', status: 500 }],
        },
      },
      { SCAN_NAMESPACES: 'shop,tools' },
    ));
  });
  after(() => standIns?.close());

  test('the list is retried a bounded number of times, then logged as failed with status 500', () => {
    const attempts = listRequests(standIns, 'daemonsets', 'shop');
    assert.ok(attempts.length >= 2 && attempts.length <= 6, `retried a few times (${attempts.length} requests)`);
    assert.ok(attempts.every((r) => r.status === 500));
    const failures = logsWith(run, 'discovery failed');
    assert.equal(failures.length, 1, run.stdout);
    assert.deepEqual([failures[0]!.namespace, failures[0]!.kind, failures[0]!.status], ['shop', 'DaemonSet', 500]);
  });

  test('the other kinds of that namespace and the other namespace are delivered, exit 0', () => {
    exitedWith(run, 0);
    const shop = payloadOf(standIns, 'shop');
    assert.deepEqual(workloadIds(shop), ['CronJob/report', 'Deployment/web', 'StatefulSet/db']);
    assert.deepEqual(
      discoveryErrorsOf(shop).map((e) => [e.kind, e.status]),
      [['DaemonSet', 500]],
    );
    assert.deepEqual(workloadIds(payloadOf(standIns, 'tools')), [
      'CronJob/report',
      'DaemonSet/agent',
      'Deployment/web',
      'StatefulSet/db',
    ]);
    assert.equal(discoveryErrorsOf(payloadOf(standIns, 'tools')).length, 0);
  });
});

// ---------------------------------------------------------------- stall

describe('a list call that never answers, with KUBE_TIMEOUT=1', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario(
      {
        // longer than setTimeout can wait: the stand-in never answers
        cluster: {
          objects: oneOfEachKind('shop'),
          faults: [{ resource: 'cronjobs', namespace: 'shop', stallMs: 2 ** 31 }],
        },
      },
      { SCAN_NAMESPACES: 'shop', KUBE_TIMEOUT: '1' },
      { timeoutMs: 30_000 },
    ));
  });
  after(() => standIns?.close());

  test('the run finishes within seconds', () => {
    // It finished (scenario's bound is 30 s): the stalled list can only have ended by KUBE_TIMEOUT=1, since with the
    // default of 30 s the bound would have ended the run first. Its duration is not asserted: it depends on the load.
    const stalled = listRequests(standIns, 'cronjobs', 'shop');
    assert.ok(stalled.length >= 1);
    assert.ok(
      stalled.every((r) => r.status === 0),
      'the stand-in never answered',
    );
  });

  test('that list is logged as a timeout; the other kinds are delivered, exit 0', () => {
    const failures = logsWith(run, 'discovery failed');
    assert.equal(failures.length, 1, run.stdout);
    assert.deepEqual([failures[0]!.namespace, failures[0]!.kind, failures[0]!.reason], ['shop', 'CronJob', 'timeout']);
    assert.match(String(failures[0]!.error), /KUBE_TIMEOUT/);
    exitedWith(run, 0);
    const shop = payloadOf(standIns, 'shop');
    assert.deepEqual(workloadIds(shop), ['DaemonSet/agent', 'Deployment/web', 'StatefulSet/db']);
    assert.deepEqual(
      discoveryErrorsOf(shop).map((e) => [e.kind, e.reason]),
      [['CronJob', 'timeout']],
    );
  });
});

// ---------------------------------------------------------------- RBAC

const forbidAll = (namespace: string) => RESOURCES.map((resource) => ({ resource, namespace, status: 403 as const }));

describe('every list call forbidden in the only namespace', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario(
      { cluster: { objects: oneOfEachKind('locked'), faults: forbidAll('locked') } },
      { SCAN_NAMESPACES: 'locked' },
    ));
  });
  after(() => standIns?.close());

  test('exit 1 and an error log says discovery returned nothing', () => {
    exitedWith(run, 1);
    assert.equal(logsWith(run, 'discovery forbidden by RBAC').length, 4);
    const [nothing] = run.logs.filter((l) => l.level === 'error' && /discovery returned nothing/.test(l.msg));
    assert.ok(nothing, `an error log says discovery returned nothing\n${run.stdout}`);
  });

  test('nothing is posted to Ephor and nothing is scanned', async () => {
    assert.equal(standIns.ephor.requests.length, 0);
    assert.deepEqual(await standIns.scans(), []);
  });
});

describe('every list call forbidden in one of two namespaces', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  const lockedFinding = {
    namespace: 'locked',
    workload: 'web',
    kind: 'Deployment',
    container: 'web',
    cveId: 'CVE-2024-3333',
    packageName: 'openssl',
    packageVersion: '3.0.1',
    scannerType: 'alpine',
  };
  before(async () => {
    ({ standIns, run } = await scenario(
      { cluster: { objects: [...oneOfEachKind('locked'), ...oneOfEachKind('open')], faults: forbidAll('locked') } },
      { SCAN_NAMESPACES: 'locked,open' },
      {
        prepare: (s) => {
          s.ephor.seedFinding(lockedFinding);
        },
      },
    ));
  });
  after(() => standIns?.close());

  test('exit 0: both namespaces delivered', () => {
    exitedWith(run, 0);
    assert.deepEqual([...payloadsByNamespace(standIns).keys()].sort(), ['locked', 'open']);
  });

  test('the forbidden namespace is posted as failed, with no workloads and the four 403s with the missing RBAC rule', () => {
    const locked = payloadOf(standIns, 'locked');
    assert.equal(locked.status, 'failed');
    assert.deepEqual(locked.workloads, []);
    const errors = discoveryErrorsOf(locked);
    assert.deepEqual(errors.map((e) => e.kind).sort(), ['CronJob', 'DaemonSet', 'Deployment', 'StatefulSet']);
    for (const error of errors) {
      assert.equal(error.status, 403);
      assert.match(String(error.missing_rbac), MISSING_RBAC);
      assert.match(String(error.missing_rbac), /in namespace "locked"/);
    }
    assert.equal(standIns.ephor.instance(lockedFinding)?.status, 'open', 'a failed scan resolves nothing');
  });

  test('the other namespace is delivered normally', () => {
    const open = payloadOf(standIns, 'open');
    assert.equal(open.status, 'completed');
    assert.deepEqual(workloadIds(open), ['CronJob/report', 'DaemonSet/agent', 'Deployment/web', 'StatefulSet/db']);
    assert.equal(discoveryErrorsOf(open).length, 0);
  });
});

// ---------------------------------------------------------------- namespace and kind selection

describe('SCAN_NAMESPACES=*', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario(
      {
        cluster: {
          namespaces: { quiet: {} },
          objects: [
            ...oneOfEachKind('alpha'),
            deployment({ namespace: 'beta', name: 'api', containers: [{ name: 'api', image: 'alpine:3.10' }] }),
          ],
        },
      },
      { SCAN_NAMESPACES: '*' },
    ));
  });
  after(() => standIns?.close());

  test('the namespaces are listed from /api/v1/namespaces', () => {
    const lists = standIns.kube.requests.filter((r) => r.path === '/api/v1/namespaces');
    assert.ok(lists.length >= 1);
    assert.ok(lists.every((r) => r.status === 200));
  });

  test('every namespace gets exactly one payload, the empty one too', () => {
    exitedWith(run, 0);
    const ingests = standIns.ephor.requests.filter((r) => r.path === '/api/v1/scans/ingest');
    assert.equal(ingests.length, 3);
    assert.deepEqual([...payloadsByNamespace(standIns).entries()].map(([ns, list]) => [ns, list.length]).sort(), [
      ['alpha', 1],
      ['beta', 1],
      ['quiet', 1],
    ]);
    const quiet = payloadOf(standIns, 'quiet');
    assert.deepEqual(quiet.workloads, []);
    assert.equal(quiet.status, 'completed');
    assert.deepEqual(workloadIds(payloadOf(standIns, 'beta')), ['Deployment/api']);
    assert.equal(payloadOf(standIns, 'alpha').workloads.length, 4);
  });
});

describe('SCAN_WORKLOAD_TYPES=deployment,CronJob', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario(
      { cluster: { objects: oneOfEachKind('shop') } },
      { SCAN_NAMESPACES: 'shop', SCAN_WORKLOAD_TYPES: 'deployment,CronJob' },
    ));
  });
  after(() => standIns?.close());

  test('only Deployments and CronJobs are listed (plus the Pods, for the digests they run)', () => {
    const lists = standIns.kube.requests.filter(
      (r) => r.path.includes('/namespaces/shop/') && r.query.limit !== undefined,
    );
    assert.deepEqual(
      [...new Set(lists.map((r) => r.path))].sort(),
      [listPath('cronjobs', 'shop'), listPath('deployments', 'shop'), '/api/v1/namespaces/shop/pods'].sort(),
    );
  });

  test('only those kinds are in the payload', () => {
    exitedWith(run, 0);
    const shop = payloadOf(standIns, 'shop');
    assert.deepEqual(workloadIds(shop), ['CronJob/report', 'Deployment/web']);
    assert.deepEqual(shop.scan_config.workload_types, ['Deployment', 'CronJob']);
  });
});

// ---------------------------------------------------------------- no kubeconfig

describe('no Kubernetes configuration', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  before(async () => {
    standIns = await startStandIns({ trivy: EVERY_IMAGE_SCANS, cluster: { objects: oneOfEachKind('shop') } });
  });
  after(() => standIns?.close());

  async function assertNothingContacted(): Promise<void> {
    assert.equal(standIns.kube.requests.length, 0, 'no request to the Kubernetes stand-in');
    assert.equal(standIns.ephor.requests.length, 0, 'no request to the Ephor stand-in');
    assert.deepEqual(await standIns.scans(), []);
  }

  test('KUBECONFIG pointing to a missing file: exit 2, a clear error, nothing contacted', async () => {
    const missing = path.join(standIns.dir, 'nowhere', 'kubeconfig');
    const run = await runScanner({ ...standIns.env, SCAN_NAMESPACES: 'shop', KUBECONFIG: missing });
    exitedWith(run, 2);
    const errors = run.logs.filter((l) => l.level === 'error' || l.level === 'fatal');
    assert.ok(
      errors.some(
        (l) => JSON.stringify(l.error ?? l.msg).includes(missing) && /no such file/.test(JSON.stringify(l.error)),
      ),
      `error names the file\n${run.stdout}`,
    );
    await assertNothingContacted();
  });

  test('KUBECONFIG unset and HOME empty: exit 2, a clear error, nothing contacted', async () => {
    const run = await runScanner({ ...standIns.env, SCAN_NAMESPACES: 'shop', KUBECONFIG: undefined, HOME: '' });
    exitedWith(run, 2);
    const errors = run.logs.filter((l) => l.level === 'error' || l.level === 'fatal');
    assert.ok(
      errors.some((l) => /no Kubernetes configuration/i.test(String(l.error))),
      `a clear error\n${run.stdout}`,
    );
    await assertNothingContacted();
  });
});

// ---------------------------------------------------------------- invalid image reference

describe('a workload whose image reference is invalid', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario(
      {
        cluster: {
          objects: [
            deployment({
              namespace: 'shop',
              name: 'web',
              containers: [
                { name: 'app', image: 'nginx:1.25' },
                { name: 'sidecar', image: 'Bad:Ref' },
              ],
            }),
            deployment({ namespace: 'shop', name: 'api', containers: [{ name: 'api', image: 'alpine:3.10' }] }),
          ],
        },
      },
      { SCAN_NAMESPACES: 'shop' },
    ));
  });
  after(() => standIns?.close());

  test('it is not scanned; the valid images are', async () => {
    const refs = (await standIns.scans()).map(scannedRef).sort();
    assert.deepEqual(refs, ['docker.io/library/alpine:3.10', 'docker.io/library/nginx:1.25']);
  });

  test('an error log "invalid image reference: not scanned" names it and where it is used', () => {
    const [line, ...more] = logsWith(run, 'invalid image reference: not scanned');
    assert.ok(line, run.stdout);
    assert.equal(more.length, 0);
    assert.equal(line.level, 'error');
    assert.equal(line.image, 'Bad:Ref');
    assert.deepEqual(line.used_by, ['shop/Deployment/web/sidecar']);
  });

  test('its container is in the ledger with reason invalid_reference; the rest is delivered, exit 0', () => {
    exitedWith(run, 0);
    const shop = payloadOf(standIns, 'shop');
    assert.equal(shop.status, 'completed');
    const ledger = ledgerOf(shop);
    assert.equal(ledger.length, 1);
    assert.deepEqual(
      { ...ledger[0]!, detail: undefined },
      {
        workload: 'web',
        kind: 'Deployment',
        container: 'sidecar',
        image: 'Bad:Ref',
        reason: 'invalid_reference',
        detail: undefined,
      },
    );
    assert.deepEqual(shop.workloads.map((w) => [w.name, w.containers.map((c) => c.name)]).sort(), [
      ['api', ['api']],
      ['web', ['app']],
    ]);
  });
});
