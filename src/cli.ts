// The command line: with no arguments, one scan run configured by environment variables, exactly as the CronJob runs
// it; flags mirror the variables (a flag overrides its variable). `ephor-scanner check` is the read-only preflight
// (src/check), with the same variables and flags. Exit codes (exit-codes.ts): 0 every namespace delivered, 1
// something was not delivered, 2 configuration error (nothing was contacted). Importing this module runs nothing:
// the entry point is main.ts.
import { randomUUID } from 'node:crypto';
import { Option, type Command } from 'commander';
import { runCheck, type CheckOutput } from './check/index.js';
import { ConfigError, loadConfig, logFormatOf, type Config, type Env } from './config/index.js';
import { SettingsCommand, flagOverrides, settingOptions } from './config/flags.js';
import { SWITCH_FORMS, helpRows } from './config/settings-table.js';
import { messageOf } from './errors.js';
import { EXIT_CONFIG, EXIT_NOT_DELIVERED } from './exit-codes.js';
import { KubeConfigError } from './kube/client.js';
import { createLogger, type Logger, type SecretRegistry } from './log.js';
import { createRunDependencies } from './run/adapters.js';
import { runScan } from './run/run.js';
import { ShardListenError } from './shard/coordinator-server.js';
import { startShardCoordinator } from './shard/index-zero.js';
import { runShard } from './shard/worker.js';
import { VERSION } from './version.js';

export function buildProgram(
  onRun: (env: Env) => Promise<number>,
  onCheck: (env: Env, output: CheckOutput) => Promise<number>,
): Command {
  const program = new SettingsCommand('ephor-scanner')
    .description(
      'Scans the container images of Kubernetes workloads with Trivy ' +
        'and delivers the findings to Ephor, one payload per namespace.',
    )
    .version(VERSION, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .allowExcessArguments(false)
    .exitOverride();
  for (const option of settingOptions()) program.addOption(option);
  program.addHelpText('after', helpText());
  const withFlags = (options: Record<string, unknown>): Env => ({ ...process.env, ...flagOverrides(options) });
  program.action(async (options: Record<string, string | boolean>) => {
    process.exitCode = await onRun(withFlags(options));
  });
  // The same variables and flags as a scan run (flags may come before or after "check").
  program
    .command('check')
    .description(
      'Preflight, read-only: configuration, Ephor readiness, Kubernetes access and RBAC, Trivy and its DB, ' +
        'pull secrets. Exit codes: 0 ready (warnings allowed), 1 a blocker, 2 invalid configuration.',
    )
    .addOption(
      new Option('--output <format>', 'text (one line per check) or json').choices(['text', 'json']).default('text'),
    )
    .addHelpText(
      'after',
      '\nEvery variable and flag of a scan run applies ' +
        '(ephor-scanner --help lists them); flags may also come after "check".',
    )
    .action(async (options: { output: CheckOutput }, command: Command) => {
      process.exitCode = await onCheck(withFlags(command.optsWithGlobals()), options.output);
    });
  return program;
}

function helpText(): string {
  return [
    '',
    'Environment variables (a flag overrides its variable; durations are integer seconds or e.g. 90s, 10m, 1h30m):',
    ...helpRows(),
    '',
    `Switches (true/false settings) take every form: ${SWITCH_FORMS.replaceAll('`', '')}.`,
    '',
    'Exit codes: 0 every namespace delivered (image scan failures are reported, not fatal);',
    '            1 something was not delivered, or nothing could be discovered; 2 configuration error.',
  ].join('\n');
}

/** A scan run. `secrets` holds every secret of this process, so that even a crash report cannot print one. */
export async function runCommand(env: Env, secrets: SecretRegistry): Promise<number> {
  const scanGroupId = randomUUID();
  const startedAt = new Date();
  // Registered before validation, so that not even a configuration error can print them.
  secrets.add(env.EPHOR_AUTH_VALUE, env.TRIVY_CACHE_BACKEND, env.SHARD_TOKEN);
  const config = validConfig(env, secrets, scanGroupId);
  if (!config) return EXIT_CONFIG;
  secrets.add(...config.secrets);
  const log = startLogging(config, secrets, scanGroupId);
  const shutdown = shutdownOnSignals(log);
  try {
    const deps = createRunDependencies({ config, env, log, secrets });
    const context = { config, scanGroupId, startedAt, shutdown: shutdown.signal };
    if ('coordinatorUrl' in config.shard) return await runShard(context, deps);
    if ('listen' in config.shard) deps.shards = await startShardCoordinator(config.shard, deps.clock, log, scanGroupId);
    const summary = await runScan(context, deps);
    return summary.exitCode;
  } catch (error) {
    if (error instanceof ShardListenError) {
      log.error(
        { error: error.message },
        'index 0 cannot listen for the other shards: nothing was scanned or delivered',
      );
      return EXIT_NOT_DELIVERED;
    }
    if (error instanceof KubeConfigError) {
      log.error({ error: error.message }, 'invalid Kubernetes configuration: nothing was contacted');
      return EXIT_CONFIG;
    }
    // One line for the operator; the stack only at LOG_LEVEL=debug.
    log.fatal({ error: messageOf(error) }, 'unexpected error: the run stopped, nothing more was delivered');
    log.debug({ err: error }, 'the unexpected error');
    return EXIT_NOT_DELIVERED;
  } finally {
    shutdown.dispose();
  }
}

/** The configuration, or undefined after logging every problem with it. */
function validConfig(env: Env, secrets: SecretRegistry, scanGroupId: string): Config | undefined {
  try {
    return loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const log = fallbackLogger(env, secrets).child({ scan_group_id: scanGroupId });
    log.error(
      { errors: error.problems.map((p) => p.message), help: 'ephor-scanner --help lists every variable' },
      'invalid configuration: nothing was contacted',
    );
    return undefined;
  }
}

function startLogging(config: Config, secrets: SecretRegistry, scanGroupId: string): Logger {
  // In a sharded run every line names its shard, so that `kubectl logs` of any Pod says which one it is.
  const shard = config.shard.count > 1 ? { shard: config.shard.index } : {};
  const log = createLogger({ level: config.log.level, format: config.log.format, secrets }).child({
    scan_group_id: scanGroupId,
    ...shard,
  });
  log.info({ version: VERSION }, 'ephor-scanner starting');
  for (const warning of config.warnings) log.warn(warning);
  log.info(
    {
      namespaces: config.scan.namespaces,
      concurrency: config.scan.concurrency,
      severities: config.scan.severities,
      workload_types: config.scan.workloadKinds,
      cache_mode: config.trivy.cacheMode,
      shards: config.shard.count,
      api_url: config.ephor.apiUrl,
      auth_header: config.ephor.auth?.header,
    },
    'configuration loaded',
  );
  return log;
}

/** SIGTERM or SIGINT aborts the run's shutdown signal; a second one exits at once. */
function shutdownOnSignals(log: Logger): { signal: AbortSignal; dispose(): void } {
  const shutdown = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (shutdown.signal.aborted) {
      log.error({ signal }, 'second signal: exiting now');
      process.exit(EXIT_NOT_DELIVERED); // running Trivy process groups are killed by the exit hook (trivy/state.ts)
    }
    log.warn({ signal }, 'signal received');
    shutdown.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return {
    signal: shutdown.signal,
    dispose() {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    },
  };
}

export async function checkCommand(env: Env, output: CheckOutput, secrets: SecretRegistry): Promise<number> {
  secrets.add(env.EPHOR_AUTH_VALUE, env.TRIVY_CACHE_BACKEND, env.SHARD_TOKEN);
  return runCheck(env, { output, secrets });
}

/** For reporting a configuration error, which may itself concern LOG_FORMAT or LOG_LEVEL. */
function fallbackLogger(env: Env, secrets: SecretRegistry): Logger {
  return createLogger({ level: 'info', format: logFormatOf(env), secrets });
}
