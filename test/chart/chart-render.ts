// Rendering the chart with the real Helm for the RBAC and message tests: the objects `helm install` would create, or
// the one sentence a failed render prints.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { CronJob } from 'kubernetes-models/batch/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { parseAllDocuments } from 'yaml';
import { CHART, helmWorkspace, runHelm } from '../support/helm.js';

export type Obj = Record<string, any>;

export interface ChartRenderer {
  /** `helm template` of release `release` in namespace `ephor` (the test hook left out), as objects. */
  render: (args: string[], release?: string) => Obj[];
  /** The same with the test hook (`helm test`'s check Pod), as `helm test` would create it. */
  renderWithHooks: (args: string[], release?: string) => Obj[];
  /** The failed render's message without Helm's "Error: execution error at (file:line:col): " prefix. */
  renderError: (args: string[]) => string;
  /** The whole stderr of a failed render. */
  renderStderr: (args: string[]) => string;
  valuesFile: (content: string) => string;
}

export function chartRenderer(prefix: string): ChartRenderer {
  const { work, env } = helmWorkspace(prefix);
  let files = 0;
  const renderStderr = (args: string[]): string => {
    const r = runHelm(['template', 'ephor-scanner', CHART, '--namespace', 'ephor', ...args], env);
    assert.notEqual(r.status, 0, `expected helm template ${args.join(' ')} to fail, it rendered`);
    return r.stderr;
  };
  const renderObjects = (args: string[], release: string, hooks: boolean): Obj[] => {
    const skip = hooks ? [] : ['--skip-tests'];
    const r = runHelm(['template', release, CHART, '--namespace', 'ephor', ...skip, ...args], env);
    assert.equal(r.status, 0, `helm template ${args.join(' ')} failed:\n${r.stderr}`);
    return parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as Obj | null)
      .filter((d): d is Obj => d !== null);
  };
  return {
    render: (args, release = 'ephor-scanner') => renderObjects(args, release, false),
    renderWithHooks: (args, release = 'ephor-scanner') => renderObjects(args, release, true),
    renderError(args) {
      const first = renderStderr(args).trim().split('\n')[0] ?? '';
      return first.replace(/^Error: execution error at \([^)]*\): /, '');
    },
    renderStderr,
    valuesFile(content) {
      const file = path.join(work, `values-${++files}.yaml`);
      writeFileSync(file, content);
      return file;
    },
  };
}

/** The Kubernetes schema of every kind the chart renders (kubernetes-models): an object of another kind is an error. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'batch/v1/CronJob': CronJob,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/ServiceAccount': ServiceAccount,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
};

/** Every rendered object passes its kind's Kubernetes schema; something must have been rendered. */
export function validateAll(docs: Obj[]): void {
  assert.ok(docs.length > 0, 'nothing rendered');
  for (const d of docs) {
    const Model = MODELS[`${d.apiVersion}/${d.kind}`];
    assert.ok(Model, `unexpected object ${d.apiVersion} ${d.kind}`);
    assert.doesNotThrow(() => {
      new Model(d).validate();
    }, `${d.kind} ${d.metadata?.name} fails the Kubernetes schema`);
  }
}

/** The one object of `kind` (and `name`, when given). */
export function one(docs: Obj[], kind: string, name?: string): Obj {
  const found = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata?.name === name));
  assert.equal(found.length, 1, `expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}
