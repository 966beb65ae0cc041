// Access to the Kubernetes API. The official client (@kubernetes/client-node 1.4.0) loads the configuration and
// applies its authentication (service-account token, client certificates, exec plugins, proxies); the requests
// themselves are plain GETs so that every call has a timeout and list pages are reduced to the fields we need
// instead of being turned into model objects. The only writes are the run lock's Lease (writeJson); the other POSTs
// are the read-only access reviews of `check`.
import { existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig, type Cluster } from '@kubernetes/client-node';
import { messageOf } from '../errors.js';
import { USER_AGENT } from '../version.js';

export class KubeConfigError extends Error {}

/** A failed API call: an HTTP status with the server's Status object, or a network failure or timeout. */
export class KubeApiError extends Error {
  constructor(
    message: string,
    readonly kind: 'http' | 'timeout' | 'network',
    readonly status?: number,
    readonly reason?: string,
    /** From a Retry-After header (429/503). */
    readonly retryAfterMs?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'KubeApiError';
  }
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const MAX_BODY_BYTES = 256 * 1024 * 1024;

/**
 * In a pod: the service account (unless KUBECONFIG is set explicitly, as kubectl does). Elsewhere: the files in
 * KUBECONFIG, or ~/.kube/config, with its current context, or the context KUBE_CONTEXT names (`--context`). A
 * context is an entry of a kubeconfig, so with KUBE_CONTEXT the service account is not a candidate; a context that
 * is not there is a configuration error, as for kubectl 1.32 ("context was not found for specified context"), here
 * naming the contexts that exist.
 */
export function loadKubeConfig(env: Record<string, string | undefined>): { kubeConfig: KubeConfig; source: string } {
  const kubeConfig = new KubeConfig();
  let source: string;
  const listed = (env.KUBECONFIG ?? '').split(path.delimiter).filter(Boolean);
  const context = env.KUBE_CONTEXT?.trim() || undefined;
  const home = env.HOME || os.homedir();
  const homeConfig = home ? path.join(home, '.kube', 'config') : undefined;
  try {
    if (listed.length > 0) {
      const files = listed.filter((file) => existsSync(file));
      if (files.length === 0) throw new KubeConfigError(`KUBECONFIG=${env.KUBECONFIG}: no such file`);
      kubeConfig.loadFromFile(files[0]!);
      for (const file of files.slice(1)) {
        const other = new KubeConfig();
        other.loadFromFile(file);
        kubeConfig.mergeConfig(other, true);
      }
      source = `kubeconfig ${files.join(path.delimiter)}`;
    } else if (!context && env.KUBERNETES_SERVICE_HOST && existsSync(path.join(SERVICE_ACCOUNT_DIR, 'token'))) {
      kubeConfig.loadFromCluster();
      source = 'in-cluster service account';
    } else if (homeConfig && existsSync(homeConfig)) {
      kubeConfig.loadFromFile(homeConfig);
      source = `kubeconfig ${homeConfig}`;
    } else if (context) {
      throw new KubeConfigError(
        `KUBE_CONTEXT=${JSON.stringify(context)} names a kubeconfig context, but there is no kubeconfig: ` +
          'KUBECONFIG is not set and ~/.kube/config does not exist (the in-cluster service account has no contexts)',
      );
    } else {
      throw new KubeConfigError(
        'no Kubernetes configuration: not running in a pod with a service account, ' +
          'KUBECONFIG is not set and ~/.kube/config does not exist',
      );
    }
  } catch (error) {
    if (error instanceof KubeConfigError) throw error;
    throw new KubeConfigError(`Kubernetes configuration could not be read: ${messageOf(error)}`, { cause: error });
  }
  if (context) source = selectContext(kubeConfig, context, source);

  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster)
    throw new KubeConfigError(`${source}: the current context "${kubeConfig.getCurrentContext()}" names no cluster`);
  if (!/^https?:\/\//.test(cluster.server))
    throw new KubeConfigError(`${source}: cluster server "${cluster.server}" is not an http(s) URL`);
  return { kubeConfig: allowPlainHttp(kubeConfig), source };
}

function selectContext(kubeConfig: KubeConfig, context: string, source: string): string {
  const known = kubeConfig.getContexts().map((c) => c.name);
  if (!known.includes(context)) {
    const list = known.length > 0 ? `its contexts: ${known.join(', ')}` : 'it has no contexts';
    throw new KubeConfigError(`${source} has no context ${JSON.stringify(context)} (KUBE_CONTEXT, --context); ${list}`);
  }
  kubeConfig.setCurrentContext(context);
  return `${source}, context ${context}`;
}

/**
 * client-node 1.4.0 refuses an http:// server unless the cluster sets insecure-skip-tls-verify, although plain HTTP
 * has no TLS to verify (kubectl accepts it). Mark such clusters so; https clusters are left untouched.
 */
function allowPlainHttp(kubeConfig: KubeConfig): KubeConfig {
  if (!kubeConfig.clusters.some((c) => c.server.startsWith('http://'))) return kubeConfig;
  const fixed = new KubeConfig();
  fixed.loadFromOptions({
    clusters: kubeConfig.clusters.map((c): Cluster =>
      c.server.startsWith('http://') ? { ...c, skipTLSVerify: true } : c,
    ),
    users: kubeConfig.users,
    contexts: kubeConfig.contexts,
    currentContext: kubeConfig.getCurrentContext(),
  });
  return fixed;
}

export interface KubeClient {
  server: string;
  getJson<T>(apiPath: string, query?: Record<string, string | undefined>, accept?: string): Promise<T>;
  /** A JSON POST: only for reviews that change nothing (SelfSubjectAccessReview, SelfSubjectReview). */
  postJson<T>(apiPath: string, body: unknown): Promise<T>;
}

/**
 * The only writes the scanner makes: the run lock's Lease, created (POST) and replaced (PUT, with its resourceVersion).
 */
export interface KubeJsonWriter {
  writeJson<T>(method: 'POST' | 'PUT', apiPath: string, body: unknown): Promise<T>;
}

export function createKubeClient(kubeConfig: KubeConfig, timeoutMs: number): KubeClient & KubeJsonWriter {
  const server = kubeConfig.getCurrentCluster()!.server.replace(/\/+$/, '');
  let agent: http.Agent | undefined;

  /**
   * Headers with the current credentials; re-applied on every call: tokens (projected service-account tokens, exec
   * plugins) rotate.
   */
  async function prepare(accept: string): Promise<{ agent: http.Agent; headers: Record<string, string> }> {
    const options: https.RequestOptions = {};
    await kubeConfig.applyToHTTPSOptions(options);
    agent ??= reusableAgent(options, kubeConfig.getCurrentCluster());
    const headers: Record<string, string> = {
      ...(options.headers as Record<string, string>),
      Accept: accept,
      'User-Agent': USER_AGENT,
    };
    if (options.auth) headers.Authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
    return { agent, headers };
  }

  return {
    server,
    async getJson<T>(
      apiPath: string,
      query: Record<string, string | undefined> = {},
      accept = 'application/json',
    ): Promise<T> {
      const url = new URL(server + apiPath);
      for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, value);
      const body = await request(url, { ...(await prepare(accept)), method: 'GET' }, timeoutMs);
      return JSON.parse(body) as T;
    },
    async postJson<T>(apiPath: string, payload: unknown): Promise<T> {
      const prepared = await prepare('application/json');
      const headers = { ...prepared.headers, 'Content-Type': 'application/json' };
      const body = await request(
        new URL(server + apiPath),
        { agent: prepared.agent, headers, method: 'POST', body: JSON.stringify(payload) },
        timeoutMs,
      );
      return JSON.parse(body) as T;
    },
    async writeJson<T>(method: 'POST' | 'PUT', apiPath: string, payload: unknown): Promise<T> {
      const prepared = await prepare('application/json');
      const headers = { ...prepared.headers, 'Content-Type': 'application/json' };
      const options = { agent: prepared.agent, headers, method, body: JSON.stringify(payload) };
      return JSON.parse(await request(new URL(server + apiPath), options, timeoutMs)) as T;
    },
  };
}

/**
 * client-node makes a new Agent without keep-alive for every call, so each list page would open its own TCP
 * connection and TLS session (901 of them for 20,000 workloads). One keep-alive agent with the same TLS material
 * serves every call of the run instead; its idle sockets do not keep the process alive. Behind a proxy,
 * client-node's proxy agent is used as it made it.
 */
function reusableAgent(options: https.RequestOptions, cluster: Cluster | null): http.Agent {
  const made = options.agent as http.Agent;
  if (!cluster || cluster.proxyUrl) return made;
  if (cluster.server.startsWith('http:')) return new http.Agent({ keepAlive: true });
  const { ca, cert, key, rejectUnauthorized, servername } = options;
  return new https.Agent({ keepAlive: true, ca, cert, key, rejectUnauthorized, servername });
}

interface RequestOptions {
  agent: http.Agent;
  headers: Record<string, string>;
  method: 'GET' | 'POST' | 'PUT';
  body?: string;
}

function request(url: URL, options: RequestOptions, timeoutMs: number): Promise<string> {
  const transport = url.protocol === 'https:' ? https : http;
  const { method } = options;
  return new Promise((resolve, reject) => {
    const req = transport.request(url, { method, agent: options.agent, headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES)
          req.destroy(new KubeApiError(`${method} ${url.pathname}: response over ${MAX_BODY_BYTES} bytes`, 'network'));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const body = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(body);
          return;
        }
        reject(httpError(method, url, status, body, res.headers['retry-after']));
      });
      res.on('error', (error) => {
        reject(networkError(method, url, error));
      });
    });
    const timer = setTimeout(
      () =>
        req.destroy(
          new KubeApiError(`${method} ${url.pathname}: no answer within ${timeoutMs} ms (KUBE_TIMEOUT)`, 'timeout'),
        ),
      timeoutMs,
    );
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error instanceof KubeApiError ? error : networkError(method, url, error));
    });
    req.end(options.body);
  });
}

function networkError(method: string, url: URL, error: Error): KubeApiError {
  const code = (error as NodeJS.ErrnoException).code;
  return new KubeApiError(
    `${method} ${url.pathname}: ${code ? `${code} ` : ''}${error.message}`,
    'network',
    undefined,
    undefined,
    undefined,
    { cause: error },
  );
}

/** The API server answers errors with a Status object: `{kind: "Status", reason, message, code}`. */
function httpError(
  method: string,
  url: URL,
  status: number,
  body: string,
  retryAfter: string | string[] | undefined,
): KubeApiError {
  let reason: string | undefined;
  let message = body.slice(0, 300);
  try {
    const parsed = JSON.parse(body) as { kind?: string; reason?: string; message?: string };
    if (parsed.kind === 'Status') {
      reason = parsed.reason;
      message = parsed.message ?? message;
    }
  } catch {
    // not a Status object (a proxy's page): keep the start of the body
  }
  const seconds = Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
  return new KubeApiError(
    `${method} ${url.pathname}: HTTP ${status}${reason ? ` ${reason}` : ''}: ${message}`,
    'http',
    status,
    reason,
    Number.isFinite(seconds) ? seconds * 1000 : undefined,
  );
}
