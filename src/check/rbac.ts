// Check 4: for each scanned namespace (or cluster-wide for SCAN_NAMESPACES=*) and each resource the scanner reads,
// whether its account may do so: one SelfSubjectAccessReview each (`kubectl auth can-i`), nothing is listed. A denial
// names the missing rule in the words discovery uses when a list is forbidden, in the sentence the run's summary
// prints for it (run/permission-gaps.ts); a namespace with some lists allowed and some not is "partly forbidden",
// as the summary marks it.
import type { Config } from '../config/index.js';
import { messageOf } from '../errors.js';
import { KIND_SPECS } from '../kube/workload-kinds.js';
import { DISCOVERY_LISTS, denialSentence, forbiddenListConsequence, scopeOf } from '../run/permission-gaps.js';
import type { KubeAccess } from './kubernetes.js';
import { fail, pass, warn, type CheckResult } from './types.js';

const SSAR_PATH = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';
const PARALLEL_REVIEWS = 8;

export interface Question {
  /** '' = cluster-wide (every namespace, or a cluster-scoped resource). */
  namespace: string;
  /** A resource that has no namespace (nodes): reported as cluster-wide, not as "in every namespace". */
  clusterScoped?: true;
  verb: 'list' | 'get';
  group: string;
  resource: string;
  /** fail: the scan cannot do its job; warn: it runs with less. */
  severity: 'fail' | 'warn';
  /** What is lost without it. */
  consequence: string;
}

export interface Answer {
  question: Question;
  allowed: boolean;
  reason?: string;
}

interface AccessReview {
  status?: { allowed?: unknown; denied?: unknown; reason?: unknown; evaluationError?: unknown };
}

/** The questions a scan with this configuration raises. */
export function questionsFor(config: Config): Question[] {
  const { namespaces, namespaceSelector, workloadKinds } = config.scan;
  const questions: Question[] = [];
  if (namespaces === 'all' || namespaceSelector) {
    questions.push({
      namespace: '',
      verb: 'list',
      group: '',
      resource: 'namespaces',
      severity: 'fail',
      consequence: forbiddenListConsequence('Namespace', false),
      clusterScoped: true,
    });
  }
  questions.push({
    namespace: '',
    verb: 'list',
    group: '',
    resource: 'nodes',
    severity: 'warn',
    consequence: forbiddenListConsequence('Node', false),
    clusterScoped: true,
  });
  const standalonePods = workloadKinds.includes('Pod');
  for (const namespace of namespaces === 'all' ? [''] : namespaces) {
    const ask = (
      verb: Question['verb'],
      group: string,
      resource: string,
      severity: Question['severity'],
      consequence: string,
    ) => questions.push({ namespace, verb, group, resource, severity, consequence });
    for (const kind of workloadKinds) {
      if (kind === 'Pod') continue;
      const spec = KIND_SPECS[kind];
      ask('list', spec.group, spec.resource, 'fail', forbiddenListConsequence(kind, standalonePods));
    }
    ask('list', '', 'pods', standalonePods ? 'fail' : 'warn', forbiddenListConsequence('Pod', standalonePods));
    ask('list', 'apps', 'replicasets', 'warn', 'running Pods are matched to their Deployments by name only');
    ask('list', 'batch', 'jobs', 'warn', 'running Pods are matched to their CronJobs by name only');
    if (config.registryAuth) {
      ask('get', '', 'secrets', 'warn', "private images are pulled without the workloads' pull secrets");
      ask('get', '', 'serviceaccounts', 'warn', "the pull secrets of the workloads' service accounts are not used");
    }
  }
  return questions;
}

export async function checkRbac(config: Config, access: KubeAccess): Promise<CheckResult[]> {
  const questions = questionsFor(config);
  const answers: Answer[] = [];
  let trouble: unknown;
  let next = 0;
  const worker = async () => {
    while (next < questions.length && trouble === undefined) {
      const question = questions[next++]!;
      try {
        answers.push(await ask(access, question));
      } catch (error) {
        trouble ??= error; // the API server does not answer reviews: asking the rest would only wait as long again
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_REVIEWS, questions.length) }, worker));
  if (trouble !== undefined) {
    const message = messageOf(trouble);
    return [
      fail(
        'rbac',
        `could not ask the API server what the scanner may read (SelfSubjectAccessReview: ${message})`,
        'every authenticated account may create SelfSubjectAccessReviews (ClusterRole system:basic-user); ' +
          'check that this binding exists and that the API server answers',
      ),
    ];
  }
  const order = new Map(questions.map((q, i) => [q, i]));
  answers.sort((a, b) => order.get(a.question)! - order.get(b.question)!);
  return describe(answers, access.user);
}

async function ask(access: KubeAccess, question: Question): Promise<Answer> {
  const resourceAttributes: Record<string, string> = {
    verb: question.verb,
    group: question.group,
    resource: question.resource,
  };
  if (question.namespace) resourceAttributes.namespace = question.namespace;
  const review = await access.client.postJson<AccessReview>(SSAR_PATH, {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes },
  });
  const status = review.status ?? {};
  const reason = [status.reason, status.evaluationError]
    .filter((s): s is string => typeof s === 'string' && s !== '')
    .join('; ');
  return { question, allowed: status.allowed === true, ...(reason && { reason }) };
}

/** Where a pass line's permissions apply: a namespace, every namespace, or the cluster (cluster-scoped resources). */
function passScope(question: Question): string {
  if (question.clusterScoped) return 'cluster-wide';
  return question.namespace ? `in namespace "${question.namespace}"` : 'in every namespace';
}

/**
 * One pass line per namespace (and one for cluster-scoped resources) with what is allowed, saying "partly
 * forbidden" when some list there is not; one line per denial with its rule.
 */
export function describe(answers: Answer[], user: string): CheckResult[] {
  const results: CheckResult[] = [];
  const namespaces = [...new Set(answers.map((a) => a.question.namespace))];
  for (const namespace of namespaces) {
    const here = answers.filter((a) => a.question.namespace === namespace);
    const denied = here.filter((a) => !a.allowed);
    for (const where of [...new Set(here.filter((a) => a.allowed).map((a) => passScope(a.question)))]) {
      const allowed = here.filter((a) => a.allowed && passScope(a.question) === where);
      results.push(pass('rbac', allowedLine(where, allowed, where.startsWith('in namespace') ? denied : [])));
    }
    const secretPair = ['secrets', 'serviceaccounts'].every((r) =>
      denied.some((a) => a.question.resource === r && a.question.verb === 'get'),
    );
    for (const answer of denied) {
      const { question } = answer;
      if (secretPair && question.resource === 'serviceaccounts') continue; // reported together with secrets
      const why = answer.reason ? ` (${answer.reason})` : '';
      if (secretPair && question.resource === 'secrets') {
        results.push(
          warn(
            'rbac',
            `the scanner may not get secrets and serviceaccounts ${scopeOf(namespace)}${why}: ` +
              "private images are pulled without the workloads' pull secrets",
            'allow verb "get" on resources "secrets" and "serviceaccounts" ' +
              `(apiGroup "") ${scopeOf(namespace)} for ${user}`,
          ),
        );
        continue;
      }
      const message = denialSentence({ ...question, note: why });
      const rule =
        `allow verb "${question.verb}" on resource "${question.resource}" ` +
        `(apiGroup "${question.group}") ${scopeOf(namespace)} for ${user}`;
      results.push(question.severity === 'fail' ? fail('rbac', message, rule) : warn('rbac', message, rule));
    }
  }
  return results;
}

/** `denied`: the namespace's refused questions (empty where "partly forbidden" does not apply). */
function allowedLine(where: string, allowed: Answer[], denied: Answer[]): string {
  const byVerb = (verb: string) => allowed.filter((a) => a.question.verb === verb).map((a) => a.question.resource);
  const parts = (['list', 'get'] as const)
    .map((verb) => ({ verb, resources: byVerb(verb) }))
    .filter(({ resources }) => resources.length > 0)
    .map(({ verb, resources }) => `${verb} ${resources.join(', ')}`);
  // Partly forbidden as a run's summary marks it: a list discovery makes refused while others are allowed.
  const discoveryList = (a: Answer) => a.question.verb === 'list' && DISCOVERY_LISTS.has(a.question.resource);
  const partly = allowed.some(discoveryList) && denied.some(discoveryList);
  return `${where}${partly ? ' (partly forbidden: see below)' : ''} the scanner may ${parts.join(' and ')}`;
}
