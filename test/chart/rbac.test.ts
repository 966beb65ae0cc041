// The chart's RBAC, rendered by the real Helm: the exact rules for each rbac.scope, scan.namespaces, selector,
// registryAuth.enabled and rbac.nodes combination, and, through a small evaluator of Kubernetes RBAC, that the rendered
// objects allow every request the scanner makes for that configuration (the `check` command's questions, the run
// lock's Lease calls, the node list) and nothing else that matters: no Secret outside the scanned namespaces, no write
// verb except on the one Lease.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { loadConfig } from '../../src/config/index.js';
import { questionsFor } from '../../src/check/rbac.js';
import { chartRenderer, type Obj } from './chart-render.js';

const { render } = chartRenderer('ephor-chart-rbac-');
const API = ['--set', 'ephor.apiUrl=http://ephor-api:8080'];
const TWO = [...API, '--set', 'scan.namespaces={default,production}'];
const ALL = [...API, '--set', 'scan.namespaces=*'];
const SELECTOR = ['--set', 'scan.namespaceSelector=team=payments'];

/** Read the workloads and attribute their Pods (ReplicaSets and Jobs listed metadata-only). */
const READ_RULES = [
  { apiGroups: ['apps'], resources: ['deployments', 'statefulsets', 'daemonsets'], verbs: ['get', 'list'] },
  { apiGroups: ['batch'], resources: ['cronjobs'], verbs: ['get', 'list'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
  { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['list'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['list'] },
];
/** registryAuth.enabled: the Pods' and ServiceAccounts' imagePullSecrets, by name. */
const PULL_SECRETS = { apiGroups: [''], resources: ['secrets', 'serviceaccounts'], verbs: ['get'] };
const NAMESPACES = { apiGroups: [''], resources: ['namespaces'], verbs: ['list'] };
const NODES = { apiGroups: [''], resources: ['nodes'], verbs: ['list'] };
const leaseRules = (name = 'ephor-scanner') => [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [name], verbs: ['get', 'update'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
];
const SUBJECTS = [{ kind: 'ServiceAccount', name: 'ephor-scanner', namespace: 'ephor' }];

const rbacObjects = (docs: Obj[]) => docs.filter((d) => d.apiVersion === 'rbac.authorization.k8s.io/v1');

/** Every RBAC object as "Kind namespace/name" (cluster-scoped without a namespace), sorted. */
function inventory(docs: Obj[]): string[] {
  return rbacObjects(docs)
    .map((d) => `${d.kind} ${d.metadata.namespace ? `${d.metadata.namespace}/` : ''}${d.metadata.name}`)
    .sort();
}

function rulesOf(docs: Obj[], kind: 'Role' | 'ClusterRole', name: string, namespace?: string): Obj[] {
  const found = docs.filter((d) => d.kind === kind && d.metadata.name === name && d.metadata.namespace === namespace);
  assert.equal(found.length, 1, `one ${kind} ${namespace ?? ''}/${name}`);
  return found[0]!.rules as Obj[];
}

/** Valid Kubernetes objects, and every binding names an existing role of this release and the scanner's account. */
function assertWellFormed(docs: Obj[], subjects: Obj[] = SUBJECTS): void {
  const models: Record<string, new (data: any) => { validate(): void }> = {
    Role,
    RoleBinding,
    ClusterRole,
    ClusterRoleBinding,
  };
  for (const d of rbacObjects(docs)) {
    new models[d.kind as string]!(d).validate();
    if (!d.kind.endsWith('Binding')) continue;
    assert.deepEqual(d.subjects, subjects, `${d.kind} ${d.metadata.name} subjects`);
    const roleKind = d.kind === 'RoleBinding' ? 'Role' : 'ClusterRole';
    assert.deepEqual(d.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: d.metadata.name });
    rulesOf(docs, roleKind, d.metadata.name, d.metadata.namespace);
  }
}

describe('the exact rules of each configuration', () => {
  test('default install (scope cluster, explicit namespaces): read-only Roles there, nodes cluster-wide, the lock', () => {
    const docs = render(TWO);
    assertWellFormed(docs);
    assert.deepEqual(inventory(docs), [
      'ClusterRole ephor-scanner',
      'ClusterRoleBinding ephor-scanner',
      'Role default/ephor-scanner',
      'Role ephor/ephor-scanner-run-lock',
      'Role production/ephor-scanner',
      'RoleBinding default/ephor-scanner',
      'RoleBinding ephor/ephor-scanner-run-lock',
      'RoleBinding production/ephor-scanner',
    ]);
    for (const ns of ['default', 'production'])
      assert.deepEqual(rulesOf(docs, 'Role', 'ephor-scanner', ns), [...READ_RULES, PULL_SECRETS]);
    assert.deepEqual(rulesOf(docs, 'ClusterRole', 'ephor-scanner'), [NODES]);
    assert.deepEqual(rulesOf(docs, 'Role', 'ephor-scanner-run-lock', 'ephor'), leaseRules());
  });

  test('registryAuth.enabled=false: the same without secrets and serviceaccounts', () => {
    const docs = render([...TWO, '--set', 'registryAuth.enabled=false']);
    for (const ns of ['default', 'production'])
      assert.deepEqual(rulesOf(docs, 'Role', 'ephor-scanner', ns), READ_RULES);
    assert.deepEqual(rulesOf(docs, 'ClusterRole', 'ephor-scanner'), [NODES]);
  });

  test('scan.namespaces "*": everything in the ClusterRole (the only case with cluster-wide secrets)', () => {
    const docs = render(ALL);
    assertWellFormed(docs);
    assert.deepEqual(inventory(docs), [
      'ClusterRole ephor-scanner',
      'ClusterRoleBinding ephor-scanner',
      'Role ephor/ephor-scanner-run-lock',
      'RoleBinding ephor/ephor-scanner-run-lock',
    ]);
    assert.deepEqual(rulesOf(docs, 'ClusterRole', 'ephor-scanner'), [...READ_RULES, PULL_SECRETS, NAMESPACES, NODES]);
    const anonymous = render([...ALL, '--set', 'registryAuth.enabled=false']);
    assert.deepEqual(rulesOf(anonymous, 'ClusterRole', 'ephor-scanner'), [...READ_RULES, NAMESPACES, NODES]);
  });

  test('"*" with a selector: the same ClusterRole', () => {
    const docs = render([...ALL, ...SELECTOR]);
    assert.deepEqual(rulesOf(docs, 'ClusterRole', 'ephor-scanner'), [...READ_RULES, PULL_SECRETS, NAMESPACES, NODES]);
  });

  test('a selector over explicit namespaces: Roles in those namespaces, only the namespace list cluster-wide', () => {
    const docs = render([...TWO, ...SELECTOR]);
    assertWellFormed(docs);
    for (const ns of ['default', 'production'])
      assert.deepEqual(rulesOf(docs, 'Role', 'ephor-scanner', ns), [...READ_RULES, PULL_SECRETS]);
    assert.deepEqual(rulesOf(docs, 'ClusterRole', 'ephor-scanner'), [NAMESPACES, NODES]);
  });

  test('rbac.scope=namespaced: nothing cluster-wide', () => {
    const docs = render([...TWO, '--set', 'rbac.scope=namespaced']);
    assertWellFormed(docs);
    assert.deepEqual(inventory(docs), [
      'Role default/ephor-scanner',
      'Role ephor/ephor-scanner-run-lock',
      'Role production/ephor-scanner',
      'RoleBinding default/ephor-scanner',
      'RoleBinding ephor/ephor-scanner-run-lock',
      'RoleBinding production/ephor-scanner',
    ]);
    for (const ns of ['default', 'production'])
      assert.deepEqual(rulesOf(docs, 'Role', 'ephor-scanner', ns), [...READ_RULES, PULL_SECRETS]);
  });

  test('rbac.nodes: true opts namespaced scope into the node list; false takes it from cluster scope', () => {
    const opted = render([...TWO, '--set', 'rbac.scope=namespaced', '--set', 'rbac.nodes=true']);
    assertWellFormed(opted);
    assert.deepEqual(rulesOf(opted, 'ClusterRole', 'ephor-scanner'), [NODES]);
    assert.equal(inventory(opted).filter((o) => o.startsWith('Cluster')).length, 2);

    const noNodes = render([...TWO, '--set', 'rbac.nodes=false']);
    assert.deepEqual(
      inventory(noNodes).filter((o) => o.startsWith('Cluster')),
      [],
      'nothing left to grant cluster-wide, so no ClusterRole',
    );
    const allNoNodes = render([...ALL, '--set', 'rbac.nodes=false']);
    assert.deepEqual(rulesOf(allNoNodes, 'ClusterRole', 'ephor-scanner'), [...READ_RULES, PULL_SECRETS, NAMESPACES]);
  });

  test('runLock.name and runLock.namespace move the lock Role to that Lease', () => {
    const docs = render([...TWO, '--set', 'runLock.name=shared.lock', '--set', 'runLock.namespace=locks']);
    assertWellFormed(docs);
    assert.deepEqual(rulesOf(docs, 'Role', 'ephor-scanner-run-lock', 'locks'), leaseRules('shared.lock'));
    assert.ok(!inventory(docs).includes('Role ephor/ephor-scanner-run-lock'));
    // Naming the release namespace is the same as leaving it empty.
    const same = render([...TWO, '--set', 'runLock.namespace=ephor']);
    assert.deepEqual(inventory(same), inventory(render(TWO)));
  });

  test('two releases in one namespace: their own Roles, both naming the one shared Lease', () => {
    const a = render(TWO, 'team-a');
    const b = render(TWO, 'team-b');
    assert.deepEqual(rulesOf(a, 'Role', 'team-a-ephor-scanner-run-lock', 'ephor'), leaseRules());
    assert.deepEqual(rulesOf(b, 'Role', 'team-b-ephor-scanner-run-lock', 'ephor'), leaseRules());
    const names = (docs: Obj[]) => new Set(inventory(docs));
    const shared = [...names(a)].filter((n) => names(b).has(n));
    assert.deepEqual(shared, [], 'no object of one release is also made by the other');
  });

  test('the release namespace scanned too: its read Role and the lock Role side by side', () => {
    const docs = render([...API, '--set', 'scan.namespaces={ephor,shop}']);
    assertWellFormed(docs);
    assert.deepEqual(rulesOf(docs, 'Role', 'ephor-scanner', 'ephor'), [...READ_RULES, PULL_SECRETS]);
    assert.deepEqual(rulesOf(docs, 'Role', 'ephor-scanner-run-lock', 'ephor'), leaseRules());
  });

  test('an existing ServiceAccount is the subject; rbac.create=false makes no RBAC object', () => {
    const existing = render([...TWO, '--set', 'serviceAccount.create=false', '--set', 'serviceAccount.name=scanner']);
    assertWellFormed(existing, [{ kind: 'ServiceAccount', name: 'scanner', namespace: 'ephor' }]);
    assert.deepEqual(inventory(render([...TWO, '--set', 'rbac.create=false'])), []);
    assert.deepEqual(inventory(render([...ALL, '--set', 'rbac.create=false'])), []);
  });
});

// ---------------------------------------------------------------- what the rendered RBAC allows

interface Request {
  verb: string;
  group: string;
  resource: string;
  /** '' = a cluster-wide request (a cluster-scoped resource, or a list across all namespaces). */
  namespace: string;
  name?: string;
}

/** A rule matches as in the RBAC authorizer: resourceNames only match requests that carry a name (not list, create). */
function ruleAllows(rule: Obj, r: Request): boolean {
  const has = (list: string[] | undefined, value: string) => (list ?? []).some((v) => v === value || v === '*');
  if (!has(rule.apiGroups, r.group) || !has(rule.resources, r.resource) || !has(rule.verbs, r.verb)) return false;
  const names = (rule.resourceNames ?? []) as string[];
  return names.length === 0 || (r.name !== undefined && names.includes(r.name));
}

/** What the release's bindings grant the scanner's account (Kubernetes RBAC: ClusterRoleBindings everywhere). */
function allows(docs: Obj[], r: Request): boolean {
  const role = (kind: string, name: string, namespace?: string) =>
    docs.find((d) => d.kind === kind && d.metadata.name === name && d.metadata.namespace === namespace);
  for (const binding of docs) {
    if (binding.kind === 'ClusterRoleBinding') {
      if ((role('ClusterRole', binding.roleRef.name)?.rules ?? []).some((rule: Obj) => ruleAllows(rule, r)))
        return true;
    } else if (binding.kind === 'RoleBinding' && r.namespace !== '' && binding.metadata.namespace === r.namespace) {
      const target = role(
        binding.roleRef.kind,
        binding.roleRef.name,
        binding.roleRef.kind === 'Role' ? r.namespace : undefined,
      );
      if ((target?.rules ?? []).some((rule: Obj) => ruleAllows(rule, r))) return true;
    }
  }
  return false;
}

/** The scanner's configuration as it loads it from the rendered ConfigMap. */
function configOf(docs: Obj[]) {
  const data = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name.endsWith('ephor-scanner'))!.data as Record<
    string,
    string
  >;
  return loadConfig(data, { resolveExecutable: (name) => name, stdoutIsTerminal: false });
}

/** The Lease calls of the run lock (src/lock/lease-api.ts: get, create, update; release is an update). */
const leaseCalls = (namespace: string, name: string): Request[] => [
  { verb: 'get', group: 'coordination.k8s.io', resource: 'leases', namespace, name },
  { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace, name },
  { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace },
];

const WRITE_VERBS = ['create', 'update', 'patch', 'delete', 'deletecollection'];

describe('what the rendered RBAC allows, for every combination', () => {
  const combinations: { name: string; args: string[]; nodes: boolean; scanned: string[] | 'all' }[] = [];
  for (const [nsName, nsArgs, scanned] of [
    ['explicit', TWO, ['default', 'production']],
    ['"*"', ALL, 'all'],
    ['explicit + selector', [...TWO, ...SELECTOR], ['default', 'production']],
    ['"*" + selector', [...ALL, ...SELECTOR], 'all'],
  ] as const) {
    for (const scope of ['cluster', 'namespaced'] as const) {
      if (scope === 'namespaced' && nsName !== 'explicit') continue; // refused at install time (messages.test.ts)
      for (const registryAuth of ['true', 'false']) {
        for (const nodes of [undefined, 'true', 'false']) {
          const args = [...nsArgs, '--set', `rbac.scope=${scope}`, '--set', `registryAuth.enabled=${registryAuth}`];
          if (nodes) args.push('--set', `rbac.nodes=${nodes}`);
          combinations.push({
            name: `${nsName}, scope ${scope}, registryAuth ${registryAuth}, rbac.nodes ${nodes ?? 'null'}`,
            args,
            nodes: nodes === undefined ? scope === 'cluster' : nodes === 'true',
            scanned: scanned as string[] | 'all',
          });
        }
      }
    }
  }

  for (const c of combinations) {
    test(c.name, () => {
      const docs = render(c.args);
      assertWellFormed(docs);
      const config = configOf(docs);
      // The node list is the one rule the chart may leave out on purpose (rbac.nodes): checked on its own below.
      const denied = questionsFor(config)
        .filter((q) => q.resource !== 'nodes')
        .map((q) => ({ verb: q.verb, group: q.group, resource: q.resource, namespace: q.namespace }))
        .filter((r) => !allows(docs, r));
      assert.deepEqual(denied, [], 'every rule the scanner checks for is granted');
      assert.ok(
        questionsFor(config).some((q) => q.resource === 'nodes'),
        'check asks for the node list',
      );
      for (const call of leaseCalls('ephor', 'ephor-scanner')) assert.ok(allows(docs, call), `${call.verb} lease`);

      const nodes = { verb: 'list', group: '', resource: 'nodes', namespace: '' };
      assert.equal(allows(docs, nodes), c.nodes, 'list nodes');

      // Not scanned: no Secret, no Pod spec there.
      const elsewhere = c.scanned === 'all' ? [] : ['kube-system', 'ephor'];
      for (const namespace of elsewhere) {
        for (const resource of ['secrets', 'serviceaccounts', 'pods'])
          assert.ok(
            !allows(docs, { verb: 'get', group: '', resource, namespace, name: 'x' }),
            `get ${resource} in ${namespace}`,
          );
      }
      if (c.scanned !== 'all') {
        assert.ok(!allows(docs, { verb: 'get', group: '', resource: 'secrets', namespace: '', name: 'x' }));
        assert.ok(!allows(docs, { verb: 'list', group: '', resource: 'pods', namespace: '' }));
      }
      // Never: listing secrets (every value of a namespace), nor writing anything but the one Lease.
      for (const namespace of ['', 'default', 'ephor'])
        assert.ok(
          !allows(docs, { verb: 'list', group: '', resource: 'secrets', namespace }),
          `list secrets ${namespace}`,
        );
      for (const verb of WRITE_VERBS) {
        for (const [group, resource] of [
          ['', 'pods'],
          ['', 'secrets'],
          ['apps', 'deployments'],
          ['batch', 'jobs'],
          ['rbac.authorization.k8s.io', 'roles'],
        ])
          assert.ok(
            !allows(docs, { verb, group: group!, resource: resource!, namespace: 'default', name: 'x' }),
            `${verb} ${resource}`,
          );
        const otherLease = {
          verb,
          group: 'coordination.k8s.io',
          resource: 'leases',
          namespace: 'ephor',
          name: 'other',
        };
        assert.equal(allows(docs, otherLease), verb === 'create', `${verb} another Lease`);
      }
      for (const verb of ['delete', 'patch', 'list', 'watch'])
        assert.ok(
          !allows(docs, {
            verb,
            group: 'coordination.k8s.io',
            resource: 'leases',
            namespace: 'ephor',
            name: 'ephor-scanner',
          }),
          `${verb} the lock's Lease`,
        );
    });
  }

  test('the evaluator itself: a ClusterRoleBinding reaches every namespace, a RoleBinding only its own', () => {
    const docs = render(ALL);
    assert.ok(allows(docs, { verb: 'get', group: '', resource: 'secrets', namespace: 'anywhere', name: 'x' }));
    assert.ok(allows(docs, { verb: 'list', group: '', resource: 'pods', namespace: '' }));
    const explicit = render(TWO);
    assert.ok(allows(explicit, { verb: 'get', group: '', resource: 'secrets', namespace: 'default', name: 'x' }));
    assert.ok(!allows(explicit, { verb: 'get', group: '', resource: 'secrets', namespace: 'other', name: 'x' }));
    assert.ok(
      !allows(explicit, {
        verb: 'get',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: 'default',
        name: 'ephor-scanner',
      }),
    );
  });
});
