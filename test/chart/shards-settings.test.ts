// The sharded chart against the scanner's settings table (src/config/settings.ts): every variable sharding adds to the
// CronJob's container is a setting the table binds to the value that sets it, and each shard Pod's environment, as
// Kubernetes builds it (the ConfigMap, the Secret's tokens, the job-name label, JOB_COMPLETION_INDEX, the $(JOB_NAME)
// expansion), is a configuration the scanner accepts with the part in the run that Pod has.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { settingOf } from '../../src/config/settings.js';
import { chartRenderer, type Obj } from './chart-render.js';

const { render } = chartRenderer('ephor-chart-shard-settings-');
const INSTALL = ['--set', 'ephor.apiUrl=http://ephor-api:8080', '--set', 'scan.namespaces={default,production}'];
/** Set by Kubernetes or the Pod, not the scanner's own settings. */
const POD_INPUTS = new Set(['JOB_NAME']);

const scannerOf = (docs: Obj[]): Obj =>
  docs.find((d) => d.kind === 'CronJob')!.spec.jobTemplate.spec.template.spec.containers[0];
const envNames = (docs: Obj[]): string[] => (scannerOf(docs).env as Obj[]).map((e) => e.name as string);

/** The environment of one shard Pod of the Job `jobName`, as the kubelet gives it to the scanner. */
function podEnvironment(docs: Obj[], jobName: string, index: number): Record<string, string> {
  const container = scannerOf(docs);
  const env: Record<string, string> = {};
  for (const source of container.envFrom as Obj[]) {
    const configMap = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === source.configMapRef?.name);
    Object.assign(env, configMap?.data);
  }
  // The Job controller adds JOB_COMPLETION_INDEX to every container of an Indexed Job's Pod.
  env.JOB_COMPLETION_INDEX = String(index);
  for (const e of container.env as Obj[]) {
    const ref = e.valueFrom as Obj | undefined;
    if (ref?.secretKeyRef) {
      const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name === ref.secretKeyRef.name);
      env[e.name as string] = Buffer.from(secret!.data[ref.secretKeyRef.key] as string, 'base64').toString();
    } else if (ref?.fieldRef) {
      assert.equal(ref.fieldRef.fieldPath, "metadata.labels['job-name']");
      env[e.name as string] = jobName;
    } else {
      env[e.name as string] = (e.value as string).replace(/\$\((\w+)\)/g, (whole, name: string) => env[name] ?? whole);
    }
  }
  return env;
}

describe('sharded chart ↔ settings table', () => {
  const docs = render([...INSTALL, '--set', 'scan.shards=4', '--kube-version', '1.33.0']);

  test('every variable sharding adds is a table setting bound to the value the README row names', () => {
    const unsharded = new Set(envNames(render(INSTALL)));
    const added = envNames(docs).filter((name) => !unsharded.has(name) && !POD_INPUTS.has(name));
    assert.deepEqual(added.sort(), [
      'SHARD_COORDINATOR_URL',
      'SHARD_COUNT',
      'SHARD_LISTEN',
      'SHARD_TOKEN',
      'TRIVY_SERVER_TOKEN',
    ]);
    const bound = Object.fromEntries(added.map((name) => [name, settingOf(name)?.chart?.value]));
    assert.deepEqual(bound, {
      SHARD_COORDINATOR_URL: 'scan.shardPort',
      SHARD_COUNT: 'scan.shards',
      SHARD_LISTEN: 'scan.shardPort',
      SHARD_TOKEN: 'scan.shards',
      TRIVY_SERVER_TOKEN: 'trivy.serverToken',
    });
    assert.equal(settingOf('SHARD_TOKEN')?.secret, true, 'environment only: from the Secret by reference');
    assert.equal(settingOf('JOB_COMPLETION_INDEX')?.chart?.value, 'scan.shards', 'set by Kubernetes');
  });

  test('index 0 and the last shard of a scheduled run get a configuration the scanner accepts, each its part', () => {
    const jobName = 'ephor-scanner-29410560';
    const options = { resolveExecutable: (name: string) => name, stdoutIsTerminal: false };
    const first = loadConfig(podEnvironment(docs, jobName, 0), options);
    assert.deepEqual(first.warnings, []);
    assert.equal(first.shard.count, 4);
    assert.equal(first.shard.index, 0);
    assert.ok('listen' in first.shard);
    assert.deepEqual(first.shard.listen, { host: '0.0.0.0', port: 8470 });
    const last = loadConfig(podEnvironment(docs, jobName, 3), options);
    assert.equal(last.shard.index, 3);
    assert.ok('coordinatorUrl' in last.shard);
    assert.equal(new URL(last.shard.coordinatorUrl).host, `${jobName}-0.ephor-scanner-shards:8470`);
    assert.ok('token' in first.shard && 'token' in last.shard);
    assert.equal(first.shard.token, last.shard.token, 'one Secret, one token for all shards');
    assert.ok(first.secrets.includes(first.shard.token), 'never logged');
    assert.equal(first.trivy.cacheMode, 'server');
    assert.equal(first.trivy.externalServer?.url, 'http://ephor-scanner-trivy.ephor.svc:4954');
    assert.equal(first.trivy.externalServer.token?.length, 48, "the chart's server token, from the Secret");
  });
});
