// Rendering the chart with the real Helm for the RBAC and message tests: the objects `helm install` would create, or
// the one sentence a failed render prints.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CHART, helmWorkspace, runHelm } from '../support/helm.js';

export type Obj = Record<string, any>;

export interface ChartRenderer {
  /** `helm template` of release `release` in namespace `ephor` (the test hook left out), as objects. */
  render: (args: string[], release?: string) => Obj[];
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
  return {
    render(args, release = 'ephor-scanner') {
      const r = runHelm(['template', release, CHART, '--namespace', 'ephor', '--skip-tests', ...args], env);
      assert.equal(r.status, 0, `helm template ${args.join(' ')} failed:\n${r.stderr}`);
      return parseAllDocuments(r.stdout)
        .map((d) => d.toJS() as Obj | null)
        .filter((d): d is Obj => d !== null);
    },
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
