// Tests of the Ephor stand-in over real HTTP on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync, gzipSync } from 'node:zlib';
import { assertValid } from './contract.js';
import { startEphorServer, type EphorServer, type EphorServerOptions } from './ephor-server.js';

const BOUNDED = { timeout: 10_000 };
const SCAN_PATH = '/api/v1/scans/ingest';
const SBOM_PATH = '/api/v1/sbom/ingest';

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}
interface FieldError {
  field: string;
  message: string;
  rejected_value?: unknown;
}

async function withServer(run: (server: EphorServer) => Promise<void>, options?: EphorServerOptions): Promise<void> {
  const server = await startEphorServer(options);
  try {
    await run(server);
  } finally {
    await server.close();
  }
}

async function call(server: EphorServer, path: string, init: RequestInit = {}): Promise<Reply> {
  const response = await fetch(server.url + path, init);
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // HTML or empty: json stays {}
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Every 201 the stand-in gives must itself match the contract's response schema. */
async function postScan(
  server: EphorServer,
  body: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Reply> {
  const reply = await call(server, SCAN_PATH, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
  if (reply.status === 201) assertValid('ingest-response', reply.json);
  return reply;
}

// --- payload builders -------------------------------------------------------------------------------------------

type Vulnerability = Record<string, unknown>;
const vuln = (cveId: string, overrides: Vulnerability = {}): Vulnerability => ({
  cve_id: cveId,
  package_name: 'openssl',
  package_version: '3.0.1',
  severity: 'HIGH',
  scanner_type: 'debian',
  ...overrides,
});

function workload(
  name: string,
  containers: Array<Record<string, unknown>>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { namespace: 'shop', name, kind: 'Deployment', containers, ...extra };
}

function scan(
  workloads: Array<Record<string, unknown> | null>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { namespace: 'shop', scan_label: 'ephor-scanner/test', status: 'completed', workloads, ...extra };
}

/** One Deployment "api" with one container "app". */
const appScan = (
  vulnerabilities: Vulnerability[] | null,
  extra: Record<string, unknown> = {},
): Record<string, unknown> =>
  scan(
    [
      workload('api', [{ name: 'app', image_name: 'ghcr.io/acme/api', image_tag: '1.0', vulnerabilities }], {
        labels: { team: 'a' },
      }),
    ],
    extra,
  );

const APP = { namespace: 'shop', workload: 'api', kind: 'Deployment', container: 'app' };
const finding = (cveId: string, container = APP) => ({
  ...container,
  cveId,
  packageName: 'openssl',
  packageVersion: '3.0.1',
  scannerType: 'debian',
});

function fieldErrors(reply: Reply): FieldError[] {
  return reply.json.errors as FieldError[];
}

// --- scan ingest: success and the model ----------------------------------------------------------------------------

test('a valid payload gets 201 with the counts of contract §3.5', BOUNDED, async () => {
  await withServer(async (server) => {
    const body = scan([
      workload('api', [
        { name: 'app', vulnerabilities: [vuln('CVE-1', { severity: 'CRITICAL' }), vuln('CVE-2'), vuln('CVE-2')] },
        { name: 'sidecar', vulnerabilities: [vuln('CVE-3', { severity: 'CRITICAL' })] },
      ]),
      workload('worker', [{ name: 'main', vulnerabilities: [] }], { kind: 'StatefulSet' }),
    ]);
    const reply = await postScan(server, body);
    assert.equal(reply.status, 201);
    assert.equal(reply.headers.get('content-type'), 'application/json');
    assert.match(reply.headers.get('x-trace-id') ?? '', /^[0-9a-f]{16}$/);
    assertValid('ingest-response', reply.json);
    assert.deepEqual(reply.json, {
      scan_id: 1,
      vulnerabilities: 4,
      workloads: 2,
      critical_vulns: 2,
      auto_resolved: 0,
      reopened: 0,
    });
    assert.equal(server.openFindings(APP).length, 2);

    const again = await postScan(server, body);
    assert.deepEqual(again.json, {
      scan_id: 2,
      vulnerabilities: 4,
      workloads: 2,
      critical_vulns: 2,
      auto_resolved: 0,
      reopened: 0,
    });
    assert.equal(server.scanIngests().length, 2);
    assert.deepEqual(server.requests[0]?.contractErrors, []);
  });
});

test('re-posting without a finding auto-resolves it', BOUNDED, async () => {
  await withServer(async (server) => {
    await postScan(server, appScan([vuln('CVE-1'), vuln('CVE-2')]));
    const reply = await postScan(server, appScan([vuln('CVE-1')]));
    assert.equal(reply.json.auto_resolved, 1);
    assert.deepEqual(server.instance(finding('CVE-2')), { status: 'resolved', resolutionType: 'auto' });
    assert.deepEqual(server.instance(finding('CVE-1')), { status: 'open' });
    assert.deepEqual(
      server.scans().map((s) => s.autoResolved),
      [0, 1],
    );
  });
});

test(
  'status failed with an empty container list resolves nothing but still records new findings',
  BOUNDED,
  async () => {
    await withServer(async (server) => {
      await postScan(server, appScan([vuln('CVE-1'), vuln('CVE-2')]));
      const body = scan(
        [
          workload('api', [
            { name: 'app', vulnerabilities: [] },
            { name: 'sidecar', vulnerabilities: [vuln('CVE-9')] },
          ]),
        ],
        { status: 'failed' },
      );
      const reply = await postScan(server, body);
      assert.equal(reply.status, 201);
      assert.equal(reply.json.auto_resolved, 0);
      assert.equal(server.openFindings(APP).length, 2);
      assert.deepEqual(server.instance(finding('CVE-9', { ...APP, container: 'sidecar' })), { status: 'open' });
    });
  },
);

test('an absent, null or empty list resolves every open finding of the container', BOUNDED, async () => {
  for (const vulnerabilities of [undefined, null, []]) {
    await withServer(async (server) => {
      await postScan(server, appScan([vuln('CVE-1'), vuln('CVE-2')]));
      const body = scan([
        workload('api', [vulnerabilities === undefined ? { name: 'app' } : { name: 'app', vulnerabilities }]),
      ]);
      const reply = await postScan(server, body);
      assert.equal(reply.json.auto_resolved, 2, `vulnerabilities: ${JSON.stringify(vulnerabilities)}`);
      assert.deepEqual(server.openFindings(APP), []);
    });
  }
});

test('a resolved finding (auto or manual) reported again is reopened and counted', BOUNDED, async () => {
  await withServer(async (server) => {
    server.seedFinding({ ...finding('CVE-2'), status: 'resolved' });
    await postScan(server, appScan([vuln('CVE-1')]));
    await postScan(server, appScan([]));
    assert.deepEqual(server.instance(finding('CVE-1')), { status: 'resolved', resolutionType: 'auto' });
    const reply = await postScan(server, appScan([vuln('CVE-1'), vuln('CVE-2')]));
    assert.equal(reply.json.reopened, 2);
    assert.deepEqual(server.instance(finding('CVE-1')), { status: 'open' });
    assert.deepEqual(server.instance(finding('CVE-2')), { status: 'open' });
  });
});

test('triaged, false_positive and accepted_risk are never auto-resolved nor reopened', BOUNDED, async () => {
  await withServer(async (server) => {
    const statuses = ['triaged', 'false_positive', 'accepted_risk'] as const;
    statuses.forEach((status, i) => {
      server.seedFinding({ ...finding(`CVE-${i}`), status });
    });
    const empty = await postScan(server, appScan([]));
    assert.equal(empty.json.auto_resolved, 0);
    const reported = await postScan(server, appScan([vuln('CVE-0'), vuln('CVE-1'), vuln('CVE-2')]));
    assert.equal(reported.json.reopened, 0);
    statuses.forEach((status, i) => {
      assert.deepEqual(server.instance(finding(`CVE-${i}`)), { status });
    });
  });
});

test('workloads and containers absent from the payload are untouched', BOUNDED, async () => {
  await withServer(async (server) => {
    await postScan(
      server,
      scan([
        workload('api', [{ name: 'app', vulnerabilities: [vuln('CVE-1')] }]),
        workload('worker', [{ name: 'main', vulnerabilities: [vuln('CVE-2')] }]),
      ]),
    );
    await postScan(server, appScan([]));
    assert.deepEqual(server.instance(finding('CVE-2', { ...APP, workload: 'worker', container: 'main' })), {
      status: 'open',
    });
  });
});

test('a repeated container entry auto-resolves what the earlier entry reported (contract §3.7)', BOUNDED, async () => {
  await withServer(async (server) => {
    const reply = await postScan(
      server,
      scan([
        workload('api', [
          { name: 'app', vulnerabilities: [vuln('CVE-1')] },
          { name: 'app', vulnerabilities: [vuln('CVE-2')] },
        ]),
      ]),
    );
    assert.equal(reply.json.auto_resolved, 1);
    assert.deepEqual(server.instance(finding('CVE-1')), { status: 'resolved', resolutionType: 'auto' });
  });
});

test('the vulnerability key treats null package_version as equal to null, and distinct from ""', BOUNDED, async () => {
  await withServer(async (server) => {
    await postScan(server, appScan([vuln('CVE-1', { package_version: null })]));
    const reply = await postScan(
      server,
      appScan([vuln('CVE-1', { package_version: null }), vuln('CVE-1', { package_version: '' })]),
    );
    assert.equal(reply.json.auto_resolved, 0);
    assert.deepEqual(server.instance({ ...finding('CVE-1'), packageVersion: null }), { status: 'open' });
    assert.deepEqual(server.instance({ ...finding('CVE-1'), packageVersion: '' }), { status: 'open' });
    assert.equal(server.openFindings(APP).length, 2);
  });
});

test('labels are replaced on every POST: absent, null and {} wipe them', BOUNDED, async () => {
  await withServer(async (server) => {
    const post = (extra: Record<string, unknown>) =>
      postScan(server, scan([workload('api', [{ name: 'app', vulnerabilities: [] }], extra)]));
    await post({ labels: { team: 'a', tier: 'web' } });
    assert.deepEqual(server.workloadLabels('shop', 'api', 'Deployment'), { team: 'a', tier: 'web' });
    await post({ labels: { team: 'b' } });
    assert.deepEqual(server.workloadLabels('shop', 'api', 'Deployment'), { team: 'b' });
    for (const extra of [{}, { labels: null }, { labels: {} }]) {
      await post({ labels: { team: 'c' } });
      await post(extra);
      assert.deepEqual(server.workloadLabels('shop', 'api', 'Deployment'), {}, JSON.stringify(extra));
    }
  });
});

test('only non-null fields overwrite; severity is frozen at first sight', BOUNDED, async () => {
  await withServer(async (server) => {
    await postScan(server, appScan([vuln('CVE-1', { severity: 'LOW', fixed_version: '3.0.2', title: 'old' })]));
    await postScan(
      server,
      scan([
        workload('api', [
          {
            name: 'app',
            image_tag: null,
            vulnerabilities: [vuln('CVE-1', { severity: 'CRITICAL', fixed_version: null, title: 'new' })],
          },
        ]),
      ]),
    );
    assert.deepEqual(server.vulnerability(finding('CVE-1')), {
      severity: 'LOW',
      attributes: { fixed_version: '3.0.2', title: 'new' },
    });
    assert.equal(server.containerAttributes(APP)?.image_tag, '1.0');
  });
});

// --- scan ingest: what Jackson and Bean Validation do ---------------------------------------------------------------

test('a camelCase key is silently dropped: a required one then fails validation', BOUNDED, async () => {
  await withServer(async (server) => {
    const { scan_label: label, ...withoutLabel } = appScan([vuln('CVE-1')]);
    const reply = await postScan(server, { ...withoutLabel, scanLabel: label });
    assert.equal(reply.status, 400);
    assert.equal(reply.json.type, '/problems/validation-error');
    assert.deepEqual(reply.json.errors, [{ field: 'scan_label', message: 'Scan label is required' }]);
    assert.deepEqual(server.scans(), []);

    const optional = await postScan(server, appScan([vuln('CVE-1', { cvssV3Score: 9.8 })]));
    assert.equal(optional.status, 201);
    assert.deepEqual(server.vulnerability(finding('CVE-1'))?.attributes, {});
  });
});

test('validation lists every violated field with its snake_case path', BOUNDED, async () => {
  await withServer(async (server) => {
    const { cve_id: _dropped, ...noCve } = vuln('CVE-2');
    const body = scan([
      workload('api', [
        { name: 'app', vulnerabilities: [vuln('CVE-1'), noCve] },
        { name: '  ', vulnerabilities: [] },
      ]),
    ]);
    const reply = await postScan(server, body);
    assert.equal(reply.status, 400);
    assert.equal(reply.json.detail, 'Request validation failed');
    assert.deepEqual(fieldErrors(reply), [
      { field: 'workloads[0].containers[0].vulnerabilities[1].cve_id', message: 'CVE ID is required' },
      { field: 'workloads[0].containers[1].name', message: 'Container name is required', rejected_value: '  ' },
    ]);
  });
});

test('empty containers is a validation error with the DTO message', BOUNDED, async () => {
  await withServer(async (server) => {
    const reply = await postScan(server, scan([workload('api', [])]));
    assert.equal(reply.status, 400);
    assert.deepEqual(fieldErrors(reply), [
      {
        field: 'workloads[0].containers',
        message: 'Containers list is required and must not be empty',
        rejected_value: [],
      },
    ]);
  });
});

test('"critical" severity is a 400 invalid-format with no field list', BOUNDED, async () => {
  await withServer(async (server) => {
    const reply = await postScan(server, appScan([vuln('CVE-1', { severity: 'critical' })]), {
      'x-trace-id': 'trace-1',
    });
    assert.equal(reply.status, 400);
    assert.deepEqual(Object.keys(reply.json), [
      'type',
      'title',
      'status',
      'detail',
      'instance',
      'trace_id',
      'timestamp',
    ]);
    assert.equal(reply.json.type, '/problems/invalid-format');
    assert.equal(reply.json.title, 'Invalid Format');
    assert.equal(reply.json.detail, 'Request body is malformed or unreadable');
    assert.equal(reply.json.instance, SCAN_PATH);
    assert.equal(reply.json.trace_id, 'trace-1');
    assert.ok(server.requests[0]?.rejectedBecause?.[0]?.includes('severity'));
  });
});

test('Jackson reading rules: coercions accepted, bad dates/UUIDs/types rejected', BOUNDED, async () => {
  const cases: Array<[string, Record<string, unknown>, number]> = [
    ['enum ordinal', appScan([vuln('CVE-1', { severity: 0 })]), 201],
    ['number as string', appScan([vuln('CVE-1', { package_version: 1.2 })]), 201],
    ['numeric string score', appScan([vuln('CVE-1', { cvss_v3_score: '7.5' })]), 201],
    ['epoch seconds', appScan([], { started_at: 1_700_000_000 }), 201],
    ['offset with colon', appScan([], { started_at: '2024-01-01T10:00:00+02:00' }), 201],
    ['empty date', appScan([], { completed_at: '' }), 201],
    ['empty uuid', appScan([], { scan_group_id: '' }), 201],
    ['null in a string list', appScan([vuln('CVE-1', { references: [null, 'https://x'] })]), 201],
    ['local time', appScan([], { started_at: '2024-01-01T10:00:00' }), 400],
    ['offset without colon', appScan([], { started_at: '2024-01-01T10:00:00+0200' }), 400],
    ['impossible date', appScan([], { started_at: '2024-02-30T10:00:00Z' }), 400],
    ['uuid without dashes', appScan([], { scan_group_id: '0123456789abcdef0123456789abcdef' }), 400],
    ['Job kind', scan([workload('api', [{ name: 'app' }], { kind: 'Job' })]), 400],
    ['bare string list', appScan([vuln('CVE-1', { references: 'https://x' })]), 400],
    ['array scan_config', appScan([], { scan_config: [] }), 400],
    ['boolean score', appScan([vuln('CVE-1', { cvss_v3_score: true })]), 400],
  ];
  await withServer(async (server) => {
    for (const [name, body, status] of cases) {
      const reply = await postScan(server, body);
      assert.equal(reply.status, status, name);
      if (status === 400) assert.equal(reply.json.type, '/problems/invalid-format', name);
    }
    const ordinal = await postScan(server, appScan([vuln('CVE-1', { severity: 0 })]));
    assert.equal(ordinal.json.critical_vulns, 1);
    assert.deepEqual(server.instance({ ...finding('CVE-1'), packageVersion: '1.2' }), {
      status: 'resolved',
      resolutionType: 'auto',
    });
  });
});

test('database limits: a 256-char workload name is a 500 and nothing is applied', BOUNDED, async () => {
  await withServer(async (server) => {
    server.seedFinding(finding('CVE-1'));
    const body = scan([
      workload('api', [{ name: 'app', vulnerabilities: [] }], { labels: { team: 'new' } }),
      workload('x'.repeat(256), [{ name: 'app' }]),
    ]);
    const reply = await postScan(server, body);
    assert.equal(reply.status, 500);
    assert.equal(reply.json.type, '/problems/internal-error');
    assert.equal(reply.json.detail, 'An unexpected error occurred. Please try again later.');
    assert.deepEqual(server.scans(), []);
    assert.deepEqual(server.instance(finding('CVE-1')), { status: 'open' });
    assert.deepEqual(server.workloadLabels('shop', 'api', 'Deployment'), {});
    assert.equal(server.workloadLabels('shop', 'x'.repeat(256), 'Deployment'), undefined);
    assert.equal(server.scanIngests().length, 0);
  });
});

test('NUL characters, null label values, long label keys and null list elements are 500s', BOUNDED, async () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['NUL in a title', appScan([vuln('CVE-1', { title: 'bad\u0000title' })])],
    ['NUL in a scan_config key', appScan([], { scan_config: { 'a\u0000': 1 } })],
    ['null label value', scan([workload('api', [{ name: 'app' }], { labels: { team: null } })])],
    ['101-char label key', scan([workload('api', [{ name: 'app' }], { labels: { ['k'.repeat(101)]: 'v' } })])],
    ['51-char cve_id', appScan([vuln('C'.repeat(51))])],
    ['null workload', scan([null])],
  ];
  await withServer(async (server) => {
    for (const [name, body] of cases) {
      const reply = await postScan(server, body);
      assert.equal(reply.status, 500, name);
      assert.equal(reply.json.type, '/problems/internal-error', name);
    }
    assert.deepEqual(server.scans(), []);
  });
});

test('a non-JSON content type is a 415', BOUNDED, async () => {
  await withServer(async (server) => {
    for (const contentType of ['text/plain', undefined]) {
      const reply = await call(server, SCAN_PATH, {
        method: 'POST',
        headers: contentType ? { 'content-type': contentType } : {},
        body: new TextEncoder().encode('{}'),
      });
      assert.equal(reply.status, 415);
      assert.equal(reply.json.type, '/problems/unsupported-media-type');
    }
    const withCharset = await postScan(server, appScan([]), { 'content-type': 'application/json; charset=utf-8' });
    assert.equal(withCharset.status, 201);
  });
});

test('a gzipped scan body is not decoded: 400 invalid-format', BOUNDED, async () => {
  await withServer(async (server) => {
    const reply = await call(server, SCAN_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify(appScan([vuln('CVE-1')]))),
    });
    assert.equal(reply.status, 400);
    assert.equal(reply.json.type, '/problems/invalid-format');
    assert.deepEqual(server.scans(), []);
  });
});

test('the trace id is the first non-blank of X-Trace-Id, X-Request-Id, X-Correlation-Id', BOUNDED, async () => {
  await withServer(async (server) => {
    const invalid = { namespace: '' };
    const cases: Array<[Record<string, string>, string]> = [
      [{ 'x-request-id': 'req-1' }, 'req-1'],
      [{ 'x-trace-id': 'trace-1', 'x-request-id': 'req-1' }, 'trace-1'],
      [{ 'x-trace-id': '  ', 'x-correlation-id': 'corr-1' }, 'corr-1'],
    ];
    for (const [headers, expected] of cases) {
      const reply = await postScan(server, invalid, headers);
      assert.equal(reply.json.trace_id, expected);
      assert.equal(reply.headers.get('x-trace-id'), expected);
    }
    const generated = await postScan(server, invalid);
    assert.match(String(generated.json.trace_id), /^[0-9a-f]{16}$/);
    assert.equal(generated.headers.get('x-trace-id'), generated.json.trace_id);
  });
});

// --- scripted answers, proxies and transport ----------------------------------------------------------------------

test('a scripted 503 is answered first, then normal processing resumes', BOUNDED, async () => {
  await withServer(
    async (server) => {
      const first = await postScan(server, appScan([vuln('CVE-1')]));
      assert.equal(first.status, 503);
      assert.match(first.headers.get('content-type') ?? '', /text\/html/);
      assert.equal(first.headers.get('retry-after'), '1');
      assert.deepEqual(server.scans(), []);
      const second = await postScan(server, appScan([vuln('CVE-1')]));
      assert.equal(second.status, 201);
      assert.equal(second.json.scan_id, 1);
      assert.equal(server.scanIngests().length, 1);
    },
    { script: [{ status: 503, headers: { 'retry-after': '1' } }] },
  );
});

test('scripted defaults: problem JSON for API statuses, HTML for proxy ones', BOUNDED, async () => {
  await withServer(async (server) => {
    server.pushScript({ status: 500 }, { status: 413 }, { html: true }, { status: 200, body: '{"ok":true}' });
    const internal = await postScan(server, appScan([]));
    assert.equal(internal.json.type, '/problems/internal-error');
    const tooLarge = await postScan(server, appScan([]));
    assert.equal(tooLarge.status, 413);
    assert.match(tooLarge.text, /413 Request Entity Too Large/);
    const login = await postScan(server, appScan([]));
    assert.equal(login.status, 200);
    assert.match(login.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(login.text, /Sign in/);
    const raw = await postScan(server, appScan([]));
    assert.equal(raw.text, '{"ok":true}');
    assert.deepEqual(server.scans(), []);
  });
});

test('a reset destroys the connection mid-body and applies nothing', BOUNDED, async () => {
  await withServer(
    async (server) => {
      await assert.rejects(postScan(server, appScan([vuln('CVE-1')])));
      assert.equal(server.requests[0]?.response.status, 0);
      assert.deepEqual(server.scans(), []);
      const next = await postScan(server, appScan([vuln('CVE-1')]));
      assert.equal(next.status, 201);
    },
    { script: [{ reset: true }] },
  );
});

test(
  'maxConcurrentIngests and overlappingPosts see overlapping POSTs, and none for sequential ones',
  BOUNDED,
  async () => {
    await withServer(async (server) => {
      await postScan(server, appScan([]));
      await postScan(server, appScan([]));
      assert.equal(server.maxConcurrentIngests, 1);
      assert.deepEqual(server.overlappingPosts(), []);
      server.pushScript({ delayMs: 300 }, { delayMs: 300 });
      const replies = await Promise.all([postScan(server, appScan([])), postScan(server, appScan([]))]);
      assert.deepEqual(
        replies.map((r) => r.status),
        [201, 201],
      );
      assert.equal(server.maxConcurrentIngests, 2);
      assert.equal(server.maxConcurrentSbomIngests, 0);
      const overlaps = server.overlappingPosts();
      assert.equal(overlaps.length, 1);
      const [earlier, later] = overlaps[0]!;
      assert.deepEqual([earlier, later], server.requests.slice(2, 4));
      assert.ok(later.receivedAt <= earlier.finishedAt!, 'the later one arrived before the earlier one was answered');
    });
  },
);

test('processAnyway commits after the client timed out; without it nothing commits', BOUNDED, async () => {
  await withServer(async (server) => {
    server.pushScript({ delayMs: 600 }, { delayMs: 600, processAnyway: true });
    await assert.rejects(postScan(server, appScan([vuln('CVE-1')]), {}, AbortSignal.timeout(200)));
    await server.settled();
    assert.deepEqual(server.scans(), []);
    await assert.rejects(postScan(server, appScan([vuln('CVE-1')]), {}, AbortSignal.timeout(200)));
    await server.settled();
    assert.equal(server.scans().length, 1);
    assert.equal(server.scanIngests().length, 1);
    assert.deepEqual(server.instance(finding('CVE-1')), { status: 'open' });
  });
});

test('a scripted 504 with processAnyway still applies the payload', BOUNDED, async () => {
  await withServer(
    async (server) => {
      const reply = await postScan(server, appScan([vuln('CVE-1')]));
      assert.equal(reply.status, 504);
      assert.match(reply.text, /504 Gateway Time-out/);
      assert.equal(server.scans().length, 1);
    },
    { script: [{ status: 504, processAnyway: true }] },
  );
});

test('requireHeader answers 401 HTML like a proxy when the header is missing or wrong', BOUNDED, async () => {
  await withServer(
    async (server) => {
      const missingOrWrong: Array<Record<string, string>> = [{}, { 'x-api-key': 'wrong' }];
      for (const headers of missingOrWrong) {
        const reply = await postScan(server, appScan([]), headers);
        assert.equal(reply.status, 401);
        assert.match(reply.headers.get('content-type') ?? '', /^text\/html/);
      }
      const ok = await postScan(server, appScan([]), { 'X-API-Key': 'secret' });
      assert.equal(ok.status, 201);
    },
    { requireHeader: { name: 'X-API-Key', value: 'secret' } },
  );
});

test('health endpoints answer UP; unknown paths 500; wrong methods 405', BOUNDED, async () => {
  await withServer(async (server) => {
    for (const path of ['/api/v1/actuator/health/readiness', '/api/v1/actuator/health']) {
      const reply = await call(server, path);
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.json, { status: 'UP' });
    }
    const typo = await call(server, '/api/v1/scan/ingest', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(typo.status, 500);
    assert.equal(typo.json.type, '/problems/internal-error');
    const wrongMethod = await call(server, SCAN_PATH, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(wrongMethod.status, 405);
    assert.equal(server.requests.length, 4);
  });
});

// --- SBOM ingest -------------------------------------------------------------------------------------------------------

function cyclonedx(serialNumber: string): Record<string, unknown> {
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber,
    components: [
      { name: 'openssl', version: '3.0.1', purl: 'pkg:deb/debian/openssl@3.0.1' },
      { name: 'zlib', version: '1.2.13', purl: 'pkg:deb/debian/zlib@1.2.13' },
    ],
  };
}

async function postSbom(server: EphorServer, body: unknown, encoding?: 'gzip' | 'deflate'): Promise<Reply> {
  const json = JSON.stringify(body);
  const payload = encoding === 'gzip' ? gzipSync(json) : encoding === 'deflate' ? deflateSync(json) : json;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(encoding ? { 'content-encoding': encoding } : {}),
  };
  const reply = await call(server, SBOM_PATH, { method: 'POST', headers, body: payload });
  if (reply.status === 200 || reply.status === 201) assertValid('sbom-response', reply.json);
  return reply;
}

test('SBOM: gzip accepted, dedup by package identities gives 201 created then 200 updated', BOUNDED, async () => {
  await withServer(async (server) => {
    const request = { image_reference: 'ghcr.io/acme/api:1.0', format: 'cyclonedx', sbom: cyclonedx('urn:uuid:1') };
    const created = await postSbom(server, request, 'gzip');
    assert.equal(created.status, 201);
    assertValid('sbom-response', created.json);
    assert.equal(created.json.status, 'created');
    assert.deepEqual(server.requests[0]?.body, request);

    const updated = await postSbom(
      server,
      { ...request, sbom: cyclonedx('urn:uuid:2'), scan_group_id: '6F9619FF-8B86-D011-B42D-00C04FC964FF' },
      'gzip',
    );
    assert.equal(updated.status, 200);
    assert.equal(updated.json.status, 'updated');
    assert.equal(updated.json.id, created.json.id);
    assert.equal(updated.json.content_hash, created.json.content_hash);
    const [stored] = server.sboms();
    assert.equal(stored?.scanGroupId, '6f9619ff-8b86-d011-b42d-00c04fc964ff');
    assert.equal((stored?.document as { serialNumber: string }).serialNumber, 'urn:uuid:1');
    assert.equal(server.maxConcurrentIngests, 0);
    assert.equal(server.maxConcurrentSbomIngests, 1);
  });
});

test('SBOM: spdx-json, a missing bomFormat and a deflate body are rejected; spdx is accepted', BOUNDED, async () => {
  await withServer(async (server) => {
    const spdxJson = await postSbom(server, {
      image_reference: 'a:1',
      format: 'spdx-json',
      sbom: { spdxVersion: 'SPDX-2.3' },
    });
    assert.equal(spdxJson.status, 400);
    assert.equal(spdxJson.json.type, '/problems/validation-error');
    assert.equal(spdxJson.json.detail, "Validation failed for field 'format'");
    assert.equal(fieldErrors(spdxJson)[0]?.field, 'format');
    assert.equal(fieldErrors(spdxJson)[0]?.rejected_value, 'spdx-json');

    const noBomFormat = await postSbom(server, {
      image_reference: 'a:1',
      format: 'cyclonedx',
      sbom: { components: [] },
    });
    assert.equal(noBomFormat.status, 400);
    assert.deepEqual(fieldErrors(noBomFormat), [
      { field: 'sbom', message: "CycloneDX document must contain a 'bomFormat' field" },
    ]);

    const deflated = await postSbom(
      server,
      { image_reference: 'a:1', format: 'cyclonedx', sbom: cyclonedx('x') },
      'deflate',
    );
    assert.equal(deflated.status, 400);
    assert.equal(deflated.json.type, '/problems/invalid-format');

    const missing = await postSbom(server, { format: 'spdx', sbom: null });
    assert.deepEqual(
      fieldErrors(missing).map((e) => e.field),
      ['image_reference', 'sbom'],
    );

    const spdx = await postSbom(
      server,
      { image_reference: 'a:1', format: 'spdx', sbom: { spdxVersion: 'SPDX-2.3', packages: [] } },
      'gzip',
    );
    assert.equal(spdx.status, 201);
    assert.equal(server.sboms().length, 1);
  });
});

test('SBOM: a compact document over 5 MiB is a 400 on field sbom', BOUNDED, async () => {
  await withServer(async (server) => {
    const sbom = { ...cyclonedx('big'), padding: 'x'.repeat(5 * 1024 * 1024) };
    const reply = await postSbom(server, { image_reference: 'a:1', format: 'cyclonedx', sbom }, 'gzip');
    assert.equal(reply.status, 400);
    assert.equal(fieldErrors(reply)[0]?.field, 'sbom');
    assert.match(fieldErrors(reply)[0]?.message ?? '', /exceeds maximum size of 5242880 bytes/);
  });
});

test(
  'SBOM: a blank format is a Bean Validation failure ("Format is required"), listed with the other fields',
  BOUNDED,
  async () => {
    await withServer(async (server) => {
      for (const format of ['', '   ']) {
        const blank = await postSbom(server, { image_reference: 'a:1', format, sbom: cyclonedx('x') }, 'gzip');
        assert.equal(blank.status, 400);
        assert.equal(blank.json.detail, 'Request validation failed', 'not the service check');
        assert.deepEqual(fieldErrors(blank), [
          { field: 'format', message: 'Format is required', rejected_value: format },
        ]);
      }
      const both = await postSbom(server, { image_reference: ' ', format: '', sbom: null });
      assert.deepEqual(
        fieldErrors(both).map((e) => e.field),
        ['image_reference', 'format', 'sbom'],
      );
      const capitalised = await postSbom(server, { image_reference: 'a:1', format: 'CycloneDX', sbom: cyclonedx('x') });
      assert.equal(capitalised.json.detail, "Validation failed for field 'format'");
      assert.equal(server.sboms().length, 0);
    });
  },
);

test(
  'SBOM: what sboms() stores — digest from the creating request only, first/last seen, indexed package count',
  BOUNDED,
  async () => {
    await withServer(async (server) => {
      const digest = `sha256:${'d'.repeat(64)}`;
      const sbom = {
        ...cyclonedx('urn:uuid:1'),
        components: [
          ...(cyclonedx('x').components as unknown[]),
          { name: 'no-version', purl: 'pkg:generic/no-version' },
        ],
      };
      const created = await postSbom(
        server,
        { image_reference: 'ghcr.io/acme/api:1.0', image_digest: digest, format: 'cyclonedx', sbom },
        'gzip',
      );
      const [first] = server.sboms();
      await new Promise((resolve) => setTimeout(resolve, 5));
      const updated = await postSbom(
        server,
        {
          image_reference: 'ghcr.io/acme/api:1.0',
          image_digest: `sha256:${'e'.repeat(64)}`,
          format: 'cyclonedx',
          sbom,
        },
        'gzip',
      );
      const [after] = server.sboms();

      assert.deepEqual([created.status, updated.status], [201, 200]);
      assert.ok(first && after);
      assert.deepEqual({ ...after, lastSeen: first.lastSeen }, first, 'a hit changes nothing but last_seen');
      assert.equal(after.imageDigest, digest);
      assert.equal(after.format, 'cyclonedx');
      assert.equal(after.contentHash, created.json.content_hash);
      assert.equal(after.packageCount, 2, 'components without a string version are not indexed');
      assert.ok(Date.parse(after.lastSeen) > Date.parse(after.firstSeen));
      const spdx = await postSbom(server, {
        image_reference: 'a:1',
        format: 'spdx',
        sbom: { spdxVersion: 'SPDX-2.3', packages: [{ name: 'zlib', versionInfo: '1.3', downloadLocation: 'NONE' }] },
      });
      assert.equal(spdx.status, 201);
      assert.equal(server.sboms().find((d) => d.format === 'spdx')?.packageCount, 1);
    });
  },
);

test(
  'SBOM: the body must be gzip exactly as announced (token case-insensitive) and an sbom object',
  BOUNDED,
  async () => {
    await withServer(async (server) => {
      const body = { image_reference: 'a:1', format: 'cyclonedx', sbom: cyclonedx('x') };
      const send = (encoding: string, payload: Buffer | string) =>
        call(server, SBOM_PATH, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-encoding': encoding },
          body: payload,
        });

      const notGzip = await send('gzip', JSON.stringify(body));
      const xGzip = await send('x-gzip', gzipSync(JSON.stringify(body)));
      const upper = await send('GZIP', gzipSync(JSON.stringify(body)));
      const array = await postSbom(server, { ...body, sbom: [] }, 'gzip');
      const plain = await postSbom(server, body);

      assert.deepEqual([notGzip.status, notGzip.json.type], [400, '/problems/invalid-format']);
      assert.deepEqual([xGzip.status, xGzip.json.type], [400, '/problems/invalid-format']);
      assert.equal(upper.status, 201);
      assert.deepEqual([array.status, array.json.type], [400, '/problems/invalid-format']);
      assert.equal(plain.status, 200, 'uncompressed is accepted too (same packages: a dedup hit)');
    });
  },
);

// --- light mode (the benchmark) -------------------------------------------------------------------------------------

test(
  'light mode: counts from the keys before the answer, bodies not kept, the full check after settled()',
  BOUNDED,
  async () => {
    await withServer(
      async (server) => {
        const body = scan([
          workload('api', [
            {
              name: 'app',
              vulnerabilities: [
                vuln('CVE-1', {
                  severity: 'CRITICAL',
                  description: 'quoted "cve_id": and "severity":"CRITICAL" in text',
                }),
                vuln('CVE-2'),
                vuln('CVE-2'),
              ],
            },
            { name: 'sidecar', vulnerabilities: [vuln('CVE-3', { severity: 'CRITICAL' })] },
          ]),
          workload('worker', [{ name: 'main', vulnerabilities: null }], { kind: 'StatefulSet' }),
        ]);
        const reply = await postScan(server, body);
        assert.equal(reply.status, 201);
        assert.deepEqual(reply.json, {
          scan_id: 1,
          vulnerabilities: 4,
          workloads: 2,
          critical_vulns: 2,
          auto_resolved: 0,
          reopened: 0,
        });
        const [record] = server.scanIngests();
        assert.equal(record?.rawBody.length, 0);
        assert.equal(record?.bytes, Buffer.byteLength(JSON.stringify(body)));
        assert.deepEqual(record?.summary, { workloads: 2, vulnerabilities: 4, critical: 2 });
        await server.settled();
        assert.equal(record?.rejectedBecause, undefined);
        assert.deepEqual(
          { ...record?.summary?.checked, ms: 0 },
          { namespace: 'shop', workloads: 2, containers: 3, vulnerabilities: 4, critical: 2, ms: 0 },
        );
        assert.equal(server.openFindings(APP).length, 0, 'nothing is modelled');
      },
      { light: true },
    );
  },
);

test(
  'light mode: content type, UTF-8 and framing are refused at once; a bad shape or broken JSON inside is recorded by the check',
  BOUNDED,
  async () => {
    await withServer(
      async (server) => {
        const post = (body: string | Buffer, contentType = 'application/json') =>
          call(server, SCAN_PATH, { method: 'POST', headers: { 'content-type': contentType }, body });
        assert.equal((await post(JSON.stringify(appScan([])), 'text/plain')).status, 415);
        assert.equal((await post('[]')).status, 400);
        assert.equal((await post(Buffer.from([0x7b, 0xff, 0x7d]))).status, 400);
        const missingName = await post(
          JSON.stringify(
            scan([
              {
                namespace: 'shop',
                kind: 'Deployment',
                containers: [{ name: 'app', vulnerabilities: [vuln('CVE-1', { severity: 7 })] }],
              },
            ]),
          ),
        );
        const broken = await post('{"namespace":"shop","workloads":[}');
        assert.deepEqual(
          [missingName.status, broken.status],
          [201, 201],
          'shape and syntax are only checked after the answer',
        );
        await server.settled();
        const [shape, syntax] = server.scanIngests();
        assert.deepEqual(shape?.rejectedBecause, [
          'light mode, checked after the answer: workloads[0].name: must be a JSON string',
          'light mode, checked after the answer: workloads[0].containers[0].vulnerabilities[0].severity: must be a JSON string',
        ]);
        assert.match(
          syntax?.rejectedBecause?.[0] ?? '',
          /^light mode, checked after the answer: body is not valid JSON/,
        );
      },
      { light: true },
    );
  },
);

test('light mode: lightSample checks the first body and one in n; scripts still come first', BOUNDED, async () => {
  await withServer(
    async (server) => {
      for (let i = 0; i < 5; i++) assert.equal((await postScan(server, appScan([vuln(`CVE-${i}`)]))).status, 201);
      server.pushScript({ status: 503 });
      assert.equal((await postScan(server, appScan([]))).status, 503);
      await server.settled();
      assert.deepEqual(
        server.scanIngests().map((r) => r.summary?.checked !== undefined),
        [true, false, true, false, true],
      );
    },
    { light: true, lightSample: 2 },
  );
});

test(
  'light mode: a body arriving in small pieces, with keys and UTF-8 sequences cut between them, is counted and checked exactly',
  { timeout: 20_000 },
  async () => {
    const { request } = await import('node:http');
    await withServer(
      async (server) => {
        const sendInPieces = (body: Buffer, size: number) =>
          new Promise<number>((resolve, reject) => {
            const req = request(
              `${server.url}${SCAN_PATH}`,
              { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': body.length } },
              (res) => {
                res.resume();
                res.on('end', () => {
                  resolve(res.statusCode ?? 0);
                });
              },
            );
            req.on('error', reject);
            req.on('socket', (socket) => socket.setNoDelay(true));
            let at = 0;
            const next = () => {
              if (at >= body.length) return void req.end();
              req.write(body.subarray(at, (at += size)));
              setTimeout(next, 2);
            };
            next();
          });
        const text = 'naïve → “quoted” 😀 ';
        const body = Buffer.from(
          JSON.stringify(
            scan([
              workload('api', [
                {
                  name: 'app',
                  vulnerabilities: [
                    vuln('CVE-1', { severity: 'CRITICAL', title: text.repeat(3) }),
                    vuln('CVE-2', { title: text }),
                  ],
                },
              ]),
              workload('web', [{ name: 'app', vulnerabilities: [vuln('CVE-3', { severity: 'CRITICAL' })] }]),
            ]),
          ),
        );
        for (const size of [5, 7, 13]) assert.equal(await sendInPieces(body, size), 201, `pieces of ${size} bytes`);
        const broken = Buffer.concat([body.subarray(0, 40), Buffer.from([0xe2, 0x28, 0xa1]), body.subarray(40)]);
        assert.equal(await sendInPieces(broken, 41), 400, 'an invalid sequence cut between two pieces');
        await server.settled();
        const accepted = server.scanIngests();
        assert.equal(accepted.length, 3);
        for (const record of accepted) {
          assert.equal(record.rejectedBecause, undefined);
          assert.deepEqual(
            { ...record.summary, checked: undefined },
            { workloads: 2, vulnerabilities: 3, critical: 2, checked: undefined },
          );
          assert.equal(record.bytes, body.length);
        }
      },
      { light: true },
    );
  },
);
