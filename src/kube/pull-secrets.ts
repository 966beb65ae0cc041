// Registry credentials for one image, as the kubelet would use them: the Pod's imagePullSecrets, then those of its
// ServiceAccount (`kubernetes.io/dockerconfigjson`, or the legacy `kubernetes.io/dockercfg` without `auths`), keeping
// only the entries for that image's registry. Every credential is registered as a secret, so no log can print it.
import type { Logger, SecretRegistry } from '../log.js';
import type { PullSecretSource, ScanTarget } from '../types.js';
import { KubeApiError, type KubeClient } from './client.js';

export interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface RegistryCredential {
  /** `namespace/secret`, for logs and error messages (never the credential itself). */
  source: string;
  entry: DockerAuthEntry;
}

/** A Secret as the API returns it (data values base64-encoded). */
export interface RawSecret {
  type?: string;
  data?: Record<string, string>;
}

type Lookup<T> = Promise<T | undefined>;

export class PullSecretResolver {
  private readonly secrets = new Map<string, Lookup<Record<string, DockerAuthEntry>>>();
  private readonly accounts = new Map<string, Lookup<string[]>>();
  private readonly forbiddenNamespaces = new Set<string>();

  constructor(
    private readonly client: KubeClient,
    private readonly registry: SecretRegistry,
    private readonly log: Logger,
  ) {}

  /** The credentials to try for the target's registry, in order, and the names of every secret looked at. */
  async credentialsFor(target: ScanTarget): Promise<{ candidates: RegistryCredential[]; secretsTried: string[] }> {
    const candidates: RegistryCredential[] = [];
    const secretsTried: string[] = [];
    for (const source of target.pullSecrets) {
      for (const name of await this.secretNames(source)) {
        const ref = `${source.namespace}/${name}`;
        if (!secretsTried.includes(ref)) secretsTried.push(ref);
        const auths = await this.dockerAuths(source.namespace, name);
        const entry = auths && entryForRegistry(auths, target.registry, target.repository);
        if (entry && !candidates.some((c) => JSON.stringify(c.entry) === JSON.stringify(entry)))
          candidates.push({ source: ref, entry });
      }
    }
    return { candidates, secretsTried };
  }

  /** The workload's own secrets first, then its ServiceAccount's (as the kubelet merges them). */
  private async secretNames(source: PullSecretSource): Promise<string[]> {
    const fromAccount = (await this.accountSecrets(source.namespace, source.serviceAccount)) ?? [];
    return [...new Set([...source.secretNames, ...fromAccount])];
  }

  private accountSecrets(namespace: string, account: string): Lookup<string[]> {
    return memo(this.accounts, `${namespace}/${account}`, async () => {
      const sa = await this.get<{ imagePullSecrets?: Array<{ name?: unknown } | null> }>(
        namespace,
        'serviceaccounts',
        account,
      );
      return (sa?.imagePullSecrets ?? [])
        .map((s) => s?.name)
        .filter((n): n is string => typeof n === 'string' && n !== '');
    });
  }

  private dockerAuths(namespace: string, name: string): Lookup<Record<string, DockerAuthEntry>> {
    return memo(this.secrets, `${namespace}/${name}`, async () => {
      const secret = await this.get<RawSecret>(namespace, 'secrets', name);
      if (!secret) return undefined;
      const auths = parseDockerSecret(secret);
      if (!auths) {
        this.log.warn(
          { namespace, secret: name, type: secret.type },
          'pull secret is not a kubernetes.io/dockerconfigjson or dockercfg secret; ignored',
        );
        return undefined;
      }
      registerCredentials(this.registry, auths);
      return auths;
    });
  }

  private async get<T>(
    namespace: string,
    resource: 'secrets' | 'serviceaccounts',
    name: string,
  ): Promise<T | undefined> {
    if (this.forbiddenNamespaces.has(namespace)) return undefined;
    try {
      return await this.client.getJson<T>(
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/${resource}/${encodeURIComponent(name)}`,
      );
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 403) {
        if (!this.forbiddenNamespaces.has(namespace)) {
          this.forbiddenNamespaces.add(namespace);
          const user = /User "([^"]+)"/.exec(error.message)?.[1] ?? "the scanner's service account";
          this.log.warn(
            {
              namespace,
              missing_rbac:
                'allow verb "get" on resources "secrets" and "serviceaccounts" ' +
                `(apiGroup "") in namespace "${namespace}" for ${user}`,
            },
            'registry credentials cannot be read: ' +
              'images of this namespace are pulled anonymously (enable registryAuth in the chart)',
          );
        }
        return undefined;
      }
      if (error instanceof KubeApiError && error.status === 404) {
        // A missing pull secret is a real misconfiguration (the kubelet cannot use it either); a missing
        // ServiceAccount only means it has no pull secrets to add.
        if (resource === 'secrets')
          this.log.warn({ namespace, secret: name }, 'pull secret named by a workload does not exist');
        else this.log.debug({ namespace, service_account: name }, 'service account not found: no pull secrets from it');
        return undefined;
      }
      this.log.warn(
        { namespace, resource, name, error: (error as Error).message },
        'registry credentials could not be read',
      );
      return undefined;
    }
  }
}

/** Every credential of a pull secret (the auth string, its decoded `user:password` and the password alone, tokens)
 * becomes a secret of the registry, so that no log line or error message can print it. */
export function registerCredentials(registry: SecretRegistry, auths: Record<string, DockerAuthEntry>): void {
  for (const entry of Object.values(auths)) {
    registry.add(entry.auth, entry.password, entry.identitytoken, entry.registrytoken);
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon >= 0) registry.add(decoded.slice(colon + 1), decoded);
    }
  }
}

function memo<T>(cache: Map<string, Lookup<T>>, key: string, load: () => Lookup<T>): Lookup<T> {
  let value = cache.get(key);
  if (!value) {
    value = load();
    cache.set(key, value);
  }
  return value;
}

/**
 * `.dockerconfigjson` is a Docker config.json (`{"auths": {...}}`); the legacy `.dockercfg` is the `auths` map itself.
 */
export function parseDockerSecret(secret: RawSecret): Record<string, DockerAuthEntry> | undefined {
  const decode = (value: string | undefined) =>
    value ? (JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as unknown) : undefined;
  try {
    if (secret.type === 'kubernetes.io/dockerconfigjson') {
      const config = decode(secret.data?.['.dockerconfigjson']) as { auths?: unknown } | null | undefined;
      return authEntries(config?.auths);
    }
    if (secret.type === 'kubernetes.io/dockercfg') return authEntries(decode(secret.data?.['.dockercfg']));
  } catch {
    return undefined; // not base64 JSON: treated like a secret of another type
  }
  return undefined;
}

/** The entries of an `auths` map that are objects (anything else in the JSON is ignored, as Docker does). */
function authEntries(auths: unknown): Record<string, DockerAuthEntry> | undefined {
  if (typeof auths !== 'object' || auths === null) return undefined;
  const entries = Object.entries(auths as Record<string, unknown>).filter(
    (entry): entry is [string, DockerAuthEntry] => typeof entry[1] === 'object' && entry[1] !== null,
  );
  return Object.fromEntries(entries);
}

const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/**
 * The entry whose key names the image's registry. Keys may carry a scheme, a `/v1/` or `/v2/` suffix, a
 * repository path prefix (`registry.example.com/team`) or a leading wildcard (`*.gcr.io`), as the kubelet accepts.
 */
export function entryForRegistry(
  auths: Record<string, DockerAuthEntry>,
  registry: string,
  repository: string,
): DockerAuthEntry | undefined {
  let best: { entry: DockerAuthEntry; specificity: number } | undefined;
  for (const [key, entry] of Object.entries(auths)) {
    const { host, path } = splitKey(key);
    const hostMatches = sameRegistry(host, registry) || (host.startsWith('*.') && registry.endsWith(host.slice(1)));
    const pathMatches = path === '' || repository === path || repository.startsWith(`${path}/`);
    if (!hostMatches || !pathMatches) continue;
    const specificity = path.length + (host.startsWith('*.') ? 0 : 1);
    if (!best || specificity > best.specificity) best = { entry, specificity };
  }
  return best?.entry;
}

function splitKey(key: string): { host: string; path: string } {
  const bare = key
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/+$/, '')
    .replace(/\/v[12]$/, '');
  const slash = bare.indexOf('/');
  return slash < 0
    ? { host: bare.toLowerCase(), path: '' }
    : { host: bare.slice(0, slash).toLowerCase(), path: bare.slice(slash + 1) };
}

function sameRegistry(host: string, registry: string): boolean {
  const r = registry.toLowerCase();
  return host === r || (DOCKER_HUB_HOSTS.has(host) && DOCKER_HUB_HOSTS.has(r));
}

/**
 * The Docker config.json for one Trivy process: only the chosen credential, under the key Docker uses for that
 * registry.
 */
export function dockerConfigFor(registry: string, entry: DockerAuthEntry): string {
  const key = DOCKER_HUB_HOSTS.has(registry.toLowerCase()) ? 'https://index.docker.io/v1/' : registry;
  return JSON.stringify({ auths: { [key]: entry } });
}
