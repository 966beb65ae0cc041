// The real collaborators of a scan run, wired in one place: the Kubernetes API, Trivy, the Ephor API, the spool on
// disk, the system clock. The command line (cli.ts) builds them and hands them to runScan; tests hand it fakes.
import os from 'node:os';
import type { Config, Env } from '../config/index.js';
import { deliverFile, deliverSbom, deliverScan, type DeliveryOptions } from '../ephor/client.js';
import { createKubeClient, loadKubeConfig, type KubeClient, type KubeJsonWriter } from '../kube/client.js';
import { discoverWorkloads } from '../kube/discover.js';
import { PullSecretResolver } from '../kube/pull-secrets.js';
import { createRunLock, defaultLockNamespace, noRunLock } from '../lock/index.js';
import type { Logger, SecretRegistry } from '../log.js';
import { metricsInputFromSummary, pushRunMetrics } from '../metrics/index.js';
import { launcherUsage } from '../trivy/launcher/client.js';
import { prepareTrivyRun, releaseTrivyRun } from '../trivy/run-setup.js';
import { readImageScan, runImageScan, type ScanContext } from '../trivy/scan.js';
import { VERSION } from '../version.js';
import { SHUTDOWN_DELIVERY_MS } from './deliveries.js';
import type {
  Clock,
  DiscoveryPort,
  EphorPort,
  MetricsPort,
  RunDependencies,
  RunLockPort,
  RunResources,
  SendGuard,
  TrivyPort,
} from './ports.js';
import { acquisitionOf } from './run-lock.js';
import { Spool } from './spool.js';

export interface AdapterInputs {
  config: Config;
  env: Env;
  log: Logger;
  /** Registry credentials read from pull secrets are registered here, so that no log line can print one. */
  secrets: SecretRegistry;
}

/** Throws KubeConfigError when there is no usable Kubernetes configuration (nothing is contacted then). */
export function createRunDependencies({ config, env, log, secrets }: AdapterInputs): RunDependencies {
  const { kubeConfig, source } = loadKubeConfig(env);
  const kube = createKubeClient(kubeConfig, config.kube.timeoutMs);
  log.info({ source, server: kube.server }, 'kubernetes configured');
  return {
    discovery: kubeDiscovery(kube, config, log),
    trivy: trivyRunner(kube, { config, env, log, secrets }),
    ephor: ephorClient(config, log),
    lock: leaseRunLock(kube, defaultLockNamespace(kubeConfig), { config, env, log }),
    spool: config.ephor.dryRun ? undefined : new Spool(config.spool.dir, config.spool.maxAgeMs, log),
    metrics: pushgateway(config, log),
    clock: systemClock,
    log,
    shutdownGraceMs: SHUTDOWN_DELIVERY_MS,
    tempRoot: os.tmpdir(),
    resources: processResources,
  };
}

/** A run waiting for the lock says whom it waits for this often (as the progress lines of a long scan). */
const LOCK_PROGRESS_MS = 30_000;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, ms) {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return {
      cancel() {
        clearTimeout(timer);
      },
    };
  },
};

function kubeDiscovery(kube: KubeClient, config: Config, log: Logger): DiscoveryPort {
  const { namespaces, excludeNamespaces, namespaceSelector, workloadKinds: kinds, otherControllers } = config.scan;
  const options = { namespaces, excludeNamespaces, namespaceSelector, kinds, otherControllers, platforms: true };
  return { discover: () => discoverWorkloads(kube, options, log) };
}

function trivyRunner(kube: KubeClient, { config, env, log, secrets }: AdapterInputs): TrivyPort {
  return {
    prepare: (signal) =>
      prepareTrivyRun(
        {
          config,
          env,
          log,
          registerSecret: (secret) => {
            secrets.add(secret);
          },
        },
        signal,
      ),
    release: (setup) => releaseTrivyRun(setup, log),
    imageScanner(setup, dirs) {
      const context: ScanContext = { config, setup, env, ...dirs };
      if (config.registryAuth) {
        const resolver = new PullSecretResolver(kube, secrets, log);
        context.credentials = (target) => resolver.credentialsFor(target);
      }
      return {
        run: (target, signal, onStarted) => runImageScan(target, context, signal, onStarted),
        read: (target, run, signal) => readImageScan(target, run, context, signal),
      };
    },
  };
}

/** The Ephor client; the guard's fence runs before every attempt of its retry loop, retries included. */
export function ephorClient(config: Config, log: Logger, tuning: Partial<DeliveryOptions> = {}): EphorPort {
  const { apiUrl, auth, timeoutMs, maxRetries } = config.ephor;
  const options = ({ cutoff, beforeAttempt }: SendGuard): DeliveryOptions => ({
    apiUrl,
    auth,
    timeoutMs,
    maxRetries,
    log,
    cutoff,
    beforeAttempt,
    ...tuning,
  });
  return {
    deliverScan: (namespace, part, guard) => deliverScan(namespace, part, options(guard)),
    deliverFile: (namespace, file, bytes, guard) => deliverFile(namespace, file, bytes, options(guard)),
    deliverSbom: (request, guard) => deliverSbom(request, options(guard)),
  };
}

/**
 * RUN_LOCK=lease: a Lease on the run's own Kubernetes client, in RUN_LOCK_NAMESPACE (default: the Pod's namespace, or
 * the kubeconfig context's). The lock is made when the run asks for it: its holder identity names the run.
 */
function leaseRunLock(
  kube: KubeClient & KubeJsonWriter,
  contextNamespace: string,
  { config, env, log }: Omit<AdapterInputs, 'secrets'>,
): RunLockPort {
  const { mode, name, namespace = contextNamespace, waitMs } = config.lock;
  return {
    async acquire(scanGroupId, signal) {
      if (mode === 'none') {
        log.warn('RUN_LOCK=none: no run lock; nothing keeps another run from posting to Ephor at the same time');
        return { handle: noRunLock, outcome: { state: 'off' } };
      }
      const lock = createRunLock({
        client: kube,
        namespace,
        name,
        waitLimitMs: waitMs,
        ephorTimeoutMs: config.ephor.timeoutMs,
        kubeTimeoutMs: config.kube.timeoutMs,
        scanGroupId,
        env,
        hostname: os.hostname(),
        progressIntervalMs: LOCK_PROGRESS_MS,
        log,
      });
      return acquisitionOf(await lock.acquire(signal), lock, `${namespace}/${name}`);
    },
  };
}

/** The run's metrics to METRICS_PUSHGATEWAY_URL (one POST, PUSH_TIMEOUT_MS at most); none without the URL. */
function pushgateway(config: Config, log: Logger): MetricsPort | undefined {
  const { pushgatewayUrl: url, job, groupingLabels } = config.metrics;
  if (url === undefined) return undefined;
  return {
    async push(summary, startedAt, signal) {
      const input = metricsInputFromSummary(summary, { startedAt, scannerVersion: VERSION });
      await pushRunMetrics(input, { url, job, groupingLabels, log, signal });
    },
  };
}

async function processResources(): Promise<RunResources> {
  const usage = process.resourceUsage();
  const launcher = await launcherUsage();
  return {
    cpuUserMs: Math.round(usage.userCPUTime / 1000),
    cpuSystemMs: Math.round(usage.systemCPUTime / 1000),
    maxRssKiB: usage.maxRSS,
    launcher: launcher && {
      cpuUserMs: Math.round(launcher.userMs),
      cpuSystemMs: Math.round(launcher.systemMs),
      maxRssKiB: launcher.maxRssKiB,
    },
  };
}
