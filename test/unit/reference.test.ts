import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ImageReferenceError, parseReference, payloadNameOf, scanKeyOf } from '../../src/images/reference.js';
import { planScans } from '../../src/images/plan.js';
import type { Workload } from '../../src/types.js';

const D = 'sha256:' + 'a'.repeat(64);
const E = 'sha256:' + 'b'.repeat(64);

// [spec image, what Trivy scans (dedup key), image_name, image_tag]
const VALID: Array<[string, string, string, string]> = [
  ['nginx', 'docker.io/library/nginx:latest', 'docker.io/library/nginx', 'latest'],
  ['nginx:1.25', 'docker.io/library/nginx:1.25', 'docker.io/library/nginx', '1.25'],
  ['library/nginx:1.25', 'docker.io/library/nginx:1.25', 'docker.io/library/nginx', '1.25'],
  ['docker.io/nginx:1.25', 'docker.io/library/nginx:1.25', 'docker.io/library/nginx', '1.25'],
  ['index.docker.io/library/nginx:1.25', 'docker.io/library/nginx:1.25', 'docker.io/library/nginx', '1.25'],
  ['bitnami/redis:7', 'docker.io/bitnami/redis:7', 'docker.io/bitnami/redis', '7'],
  ['ghcr.io/org/app:v1', 'ghcr.io/org/app:v1', 'ghcr.io/org/app', 'v1'],
  ['ghcr.io/org/repo:sha-a1b2c3d', 'ghcr.io/org/repo:sha-a1b2c3d', 'ghcr.io/org/repo', 'sha-a1b2c3d'],
  ['registry.io:5000/myapp:v2', 'registry.io:5000/myapp:v2', 'registry.io:5000/myapp', 'v2'],
  ['registry.io:5000/myapp', 'registry.io:5000/myapp:latest', 'registry.io:5000/myapp', 'latest'],
  // The Go scanner turned these two into docker.io/library/localhost:5000/app and docker.io/localhost/app:1.
  ['localhost:5000/app', 'localhost:5000/app:latest', 'localhost:5000/app', 'latest'],
  ['localhost/app:1', 'localhost/app:1', 'localhost/app', '1'],
  [`nginx@${D}`, `docker.io/library/nginx@${D}`, 'docker.io/library/nginx', D],
  // The Go scanner put the tag into image_name ("docker.io/library/nginx:1.25") for tag@digest.
  [`nginx:1.25@${D}`, `docker.io/library/nginx@${D}`, 'docker.io/library/nginx', '1.25'],
  [
    `localhost:32000/kotsadm-api:v1.0.1-abc@${D}`,
    `localhost:32000/kotsadm-api@${D}`,
    'localhost:32000/kotsadm-api',
    'v1.0.1-abc',
  ],
  [
    'gcr.io/stackdriver-agents/stackdriver-logging-agent:0.6-1.6.0-1',
    'gcr.io/stackdriver-agents/stackdriver-logging-agent:0.6-1.6.0-1',
    'gcr.io/stackdriver-agents/stackdriver-logging-agent',
    '0.6-1.6.0-1',
  ],
  [
    'quay.io/prometheus/node-exporter:v1.8.1',
    'quay.io/prometheus/node-exporter:v1.8.1',
    'quay.io/prometheus/node-exporter',
    'v1.8.1',
  ],
  [
    '123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api:2024.06',
    '123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api:2024.06',
    '123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api',
    '2024.06',
  ],
  ['my-registry/app:1', 'docker.io/my-registry/app:1', 'docker.io/my-registry/app', '1'],
  ['a/b/c/d:e', 'docker.io/a/b/c/d:e', 'docker.io/a/b/c/d', 'e'],
  [
    'repo_with__double_underscore/x-y--z.w:TAG_1',
    'docker.io/repo_with__double_underscore/x-y--z.w:TAG_1',
    'docker.io/repo_with__double_underscore/x-y--z.w',
    'TAG_1',
  ],
  ['[::1]:5000/app:dev', '[::1]:5000/app:dev', '[::1]:5000/app', 'dev'],
  ['192.168.1.10:5000/app', '192.168.1.10:5000/app:latest', '192.168.1.10:5000/app', 'latest'],
  ['Registry.Example.com/app:1', 'Registry.Example.com/app:1', 'Registry.Example.com/app', '1'],
  ['localhost:5000', 'docker.io/library/localhost:5000', 'docker.io/library/localhost', '5000'],
];

const INVALID: Array<[string, RegExp]> = [
  ['', /empty/],
  ['nginx:1.25 ', /whitespace/],
  ['NGINX:1.25', /must be lowercase/],
  ['ghcr.io/Org/App:v1', /must be lowercase/],
  ['nginx:', /invalid tag ""/],
  ['nginx:-bad', /invalid tag/],
  [`nginx:${'t'.repeat(129)}`, /invalid tag/],
  ['nginx@sha256:abc', /invalid digest/],
  [`nginx@sha256:${'A'.repeat(64)}`, /64 lowercase hex/],
  ['a'.repeat(64), /image ID, not a repository name/],
  ['ghcr.io//app', /invalid repository path component ""/],
  ['-registry.io/app', /invalid registry host|invalid repository path/],
  [`ghcr.io/${'x'.repeat(250)}`, /longer than 255/],
];

describe('image references (distribution grammar, Docker normalisation)', () => {
  for (const [spec, scanKey, imageName, imageTag] of VALID) {
    test(`valid: ${spec}`, () => {
      const ref = parseReference(spec);
      assert.equal(scanKeyOf(ref), scanKey);
      assert.deepEqual(payloadNameOf(ref), { imageName, imageTag });
    });
  }
  for (const [spec, reason] of INVALID) {
    test(`invalid: ${JSON.stringify(spec.length > 40 ? `${spec.slice(0, 40)}…` : spec)}`, () => {
      assert.throws(
        () => parseReference(spec),
        (error: unknown) => error instanceof ImageReferenceError && reason.test(error.message),
      );
    });
  }
  test('an invalid reference throws ImageReferenceError, which does not shadow the global ReferenceError', () => {
    assert.throws(
      () => parseReference('Nginx'),
      (error: unknown) =>
        error instanceof ImageReferenceError &&
        !(error instanceof globalThis.ReferenceError) &&
        error.name === 'ImageReferenceError',
    );
  });
  test('the table has at least 25 valid references', () => {
    assert.ok(VALID.length >= 25);
  });
});

describe('scan plan: one scan per distinct normalised reference', () => {
  const workload = (namespace: string, name: string, ...images: string[]): Workload => ({
    namespace,
    kind: 'Deployment',
    name,
    labels: {},
    containers: images.map((specImage, i) => ({ name: `c${i}`, role: 'app', specImage, running: [] })),
    pullSecrets: { namespace, secretNames: [], serviceAccount: 'default' },
  });

  test('spellings of one image are one scan; namespaces are recorded in first-use order', () => {
    const plan = planScans(
      ['b', 'a'],
      [
        workload('a', 'w1', 'nginx', 'docker.io/library/nginx:latest', `nginx:1.25@${D}`),
        workload('b', 'w2', 'nginx:latest', `docker.io/library/nginx@${D}`, `nginx@${E}`),
        workload('b', 'w3', 'Bad:Ref'),
      ],
    );
    assert.deepEqual(
      plan.targets.map((t) => [t.ref, t.namespaces]),
      [
        ['docker.io/library/nginx:latest', ['b', 'a']],
        [`docker.io/library/nginx@${D}`, ['b', 'a']],
        [`docker.io/library/nginx@${E}`, ['b']],
      ],
    );
    const bad = [...plan.containers.entries()].find(([c]) => c.specImage === 'Bad:Ref')![1];
    assert.deepEqual(bad, { invalid: 'repository name must be lowercase' });
    assert.equal(plan.targets[0]!.registry, 'docker.io');
  });
});
