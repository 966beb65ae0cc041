// Check 4: for each scanned namespace (or cluster-wide for SCAN_NAMESPACES=*) and each resource the scanner reads,
// whether its account may do so: one SelfSubjectAccessReview each (`kubectl auth can-i`), nothing is listed. A denial
// names the missing rule in the words discovery uses when a list is forbidden.
import type { Config } from '../config/index.js';
import { messageOf } from '../errors.js';
import { KIND_SPECS } from '../kube/workload-kinds.js';
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
      consequence: 'the namespaces to scan cannot be found, so nothing is scanned',
      clusterScoped: true,
    });
  }
  questions.push({
    namespace: '',
    verb: 'list',
    group: '',
    resource: 'nodes',
    severity: 'warn',
    consequence:
      "images are scanned without --platform: a multi-platform image is scanned as Trivy's default linux/amd64 variant, whatever node runs it",
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
      ask('list', spec.group, spec.resource, 'fail', `its ${kind}s are not scanned`);
    }
    ask(
      'list',
      '',
      'pods',
      standalonePods ? 'fail' : 'warn',
      standalonePods
        ? 'its standalone Pods are not scanned, and images are scanned by the tags in the workload specs, not by the digests that run'
        : 'images are scanned by the tags in the workload specs, not by the digests that run',
    );
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
        'every authenticated account may create SelfSubjectAccessReviews (ClusterRole system:basic-user); check that this binding exists and that the API server answers',
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

const scope = (namespace: string) => (namespace ? `in namespace "${namespace}"` : 'cluster-wide');

/** Where a pass line's permissions apply: a namespace, every namespace, or the cluster (cluster-scoped resources). */
function passScope(question: Question): string {
  if (question.clusterScoped) return 'cluster-wide';
  return question.namespace ? `in namespace "${question.namespace}"` : 'in every namespace';
}

/** One pass line per namespace (and one for cluster-scoped resources) with what is allowed; one line per denial. */
export function describe(answers: Answer[], user: string): CheckResult[] {
  const results: CheckResult[] = [];
  const namespaces = [...new Set(answers.map((a) => a.question.namespace))];
  for (const namespace of namespaces) {
    const here = answers.filter((a) => a.question.namespace === namespace);
    for (const where of [...new Set(here.filter((a) => a.allowed).map((a) => passScope(a.question)))]) {
      const allowed = here.filter((a) => a.allowed && passScope(a.question) === where);
      const byVerb = (verb: string) => allowed.filter((a) => a.question.verb === verb).map((a) => a.question.resource);
      const parts = (['list', 'get'] as const)
        .map((verb) => ({ verb, resources: byVerb(verb) }))
        .filter(({ resources }) => resources.length > 0)
        .map(({ verb, resources }) => `${verb} ${resources.join(', ')}`);
      results.push(pass('rbac', `${where} the scanner may ${parts.join(' and ')}`));
    }
    const denied = here.filter((a) => !a.allowed);
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
            `the scanner may not get secrets and serviceaccounts ${scope(namespace)}${why}: private images are pulled without the workloads' pull secrets`,
            `allow verb "get" on resources "secrets" and "serviceaccounts" (apiGroup "") ${scope(namespace)} for ${user}`,
          ),
        );
        continue;
      }
      const message = `the scanner may not ${question.verb} ${question.resource} ${scope(namespace)}${why}: ${question.consequence}`;
      const rule = `allow verb "${question.verb}" on resource "${question.resource}" (apiGroup "${question.group}") ${scope(namespace)} for ${user}`;
      results.push(question.severity === 'fail' ? fail('rbac', message, rule) : warn('rbac', message, rule));
    }
  }
  return results;
}
