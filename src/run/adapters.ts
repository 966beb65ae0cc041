// The real collaborators of a scan run, wired in one place: the Kubernetes API, Trivy, the Ephor API, the spool on
// disk, the system clock. The command line (cli.ts) builds them and hands them to runScan; tests hand it fakes.
import os from 'node:os';
import type { Config, Env } from '../config/index.js';
import { deliverFile, deliverSbom, deliverScan, type DeliveryOptions } from '../ephor/client.js';
import { createKubeClient, loadKubeConfig, type KubeClient } from '../kube/client.js';
import { discoverWorkloads } from '../kube/discover.js';
import { PullSecretResolver } from '../kube/pull-secrets.js';
import type { Logger, SecretRegistry } from '../log.js';
import { launcherUsage } from '../trivy/launcher/client.js';
import { prepareTrivyRun, releaseTrivyRun } from '../trivy/run-setup.js';
import { readImageScan, runImageScan, type ScanContext } from '../trivy/scan.js';
import { SHUTDOWN_DELIVERY_MS } from './deliveries.js';
import type { Clock, DiscoveryPort, EphorPort, RunDependencies, RunResources, TrivyPort } from './ports.js';
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
    spool: config.ephor.dryRun ? undefined : new Spool(config.spool.dir, config.spool.maxAgeMs, log),
    clock: systemClock,
    log,
    shutdownGraceMs: SHUTDOWN_DELIVERY_MS,
    tempRoot: os.tmpdir(),
    resources: processResources,
  };
}

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
  const { namespaces, excludeNamespaces, namespaceSelector, workloadKinds: kinds } = config.scan;
  return { discover: () => discoverWorkloads(kube, { namespaces, excludeNamespaces, namespaceSelector, kinds }, log) };
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

function ephorClient(config: Config, log: Logger): EphorPort {
  const { apiUrl, auth, timeoutMs, maxRetries } = config.ephor;
  const options = (cutoff: AbortSignal): DeliveryOptions => ({ apiUrl, auth, timeoutMs, maxRetries, log, cutoff });
  return {
    deliverScan: (namespace, part, cutoff) => deliverScan(namespace, part, options(cutoff)),
    deliverFile: (namespace, file, bytes, cutoff) => deliverFile(namespace, file, bytes, options(cutoff)),
    deliverSbom: (request, cutoff) => deliverSbom(request, options(cutoff)),
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
