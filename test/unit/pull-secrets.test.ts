import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  dockerConfigFor,
  entryForRegistry,
  parseDockerSecret,
  registerCredentials,
} from '../../src/kube/pull-secrets.js';
import { SecretRegistry } from '../../src/log.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const auth = (user: string, pass: string) => ({ auth: b64(`${user}:${pass}`) });

describe('pull secrets → registry credentials', () => {
  test('kubernetes.io/dockerconfigjson is a Docker config; legacy dockercfg is its auths map', () => {
    const auths = { 'registry.local:5000': auth('u', 'p') };
    assert.deepEqual(
      parseDockerSecret({
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': b64(JSON.stringify({ auths })) },
      }),
      auths,
    );
    assert.deepEqual(
      parseDockerSecret({ type: 'kubernetes.io/dockercfg', data: { '.dockercfg': b64(JSON.stringify(auths)) } }),
      auths,
    );
    assert.equal(parseDockerSecret({ type: 'Opaque', data: { password: b64('x') } }), undefined);
    assert.equal(
      parseDockerSecret({ type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': 'not base64 json' } }),
      undefined,
    );
  });

  test("only the entry of the image's registry is chosen, whatever the key's form", () => {
    const auths = {
      'https://index.docker.io/v1/': auth('hub', 'h'),
      'registry.local:5000': auth('local', 'l'),
      'https://ghcr.io': auth('gh', 'g'),
      'quay.io/team': auth('team', 't'),
      'quay.io': auth('quay', 'q'),
      '*.azurecr.io': auth('azure', 'a'),
    };
    assert.deepEqual(entryForRegistry(auths, 'docker.io', 'library/nginx'), auths['https://index.docker.io/v1/']);
    assert.deepEqual(entryForRegistry(auths, 'registry.local:5000', 'app'), auths['registry.local:5000']);
    assert.deepEqual(entryForRegistry(auths, 'ghcr.io', 'acme/api'), auths['https://ghcr.io']);
    assert.deepEqual(
      entryForRegistry(auths, 'quay.io', 'team/api'),
      auths['quay.io/team'],
      'the most specific path wins',
    );
    assert.deepEqual(entryForRegistry(auths, 'quay.io', 'other/api'), auths['quay.io']);
    assert.deepEqual(entryForRegistry(auths, 'acme.azurecr.io', 'api'), auths['*.azurecr.io']);
    assert.equal(entryForRegistry(auths, 'registry.local:6000', 'app'), undefined, 'another port is another registry');
    assert.equal(entryForRegistry(auths, 'gcr.io', 'x'), undefined);
  });

  test("the config written for Trivy holds only that one entry, under Docker's key for the registry", () => {
    assert.deepEqual(JSON.parse(dockerConfigFor('docker.io', { auth: 'abc' })), {
      auths: { 'https://index.docker.io/v1/': { auth: 'abc' } },
    });
    assert.deepEqual(JSON.parse(dockerConfigFor('registry.local:5000', { username: 'u', password: 'p' })), {
      auths: { 'registry.local:5000': { username: 'u', password: 'p' } },
    });
  });
});

describe('credentials of a pull secret are secrets of the run', () => {
  test('the auth string, its decoded user:password, the password alone and tokens are scrubbed; the user name is not', () => {
    const registry = new SecretRegistry();
    const auth = Buffer.from('robot:s3cr3t-pass').toString('base64');
    registerCredentials(registry, {
      'registry.example.com': { auth },
      'ghcr.io': { username: 'bot', password: 'other-pass', identitytoken: 'id-tok-1' },
    });
    const text = `${auth} robot:s3cr3t-pass s3cr3t-pass other-pass id-tok-1 robot bot`;
    const scrubbed = registry.scrub(text);
    for (const value of [auth, 's3cr3t-pass', 'other-pass', 'id-tok-1'])
      assert.ok(!scrubbed.includes(value), `${value} is scrubbed: ${scrubbed}`);
    assert.match(scrubbed, /robot/);
    assert.match(scrubbed, / bot$/);
  });
});
