// Entry point. With no arguments: one scan run configured by environment variables, exactly as the CronJob runs it.
// Flags mirror the variables (a flag overrides its variable). Exit codes: 0 every namespace delivered, 1 something
// was not delivered, 2 configuration error (nothing was contacted).
// `ephor-scanner check` is the read-only preflight (src/check), with the same variables and flags.
import { randomUUID } from 'node:crypto';
import { CommanderError, Option, type Command } from 'commander';
import { runCheck, type CheckOutput } from './check/index.js';
import { ConfigError, loadConfig, logFormatOf, type Config, type Env } from './config/index.js';
import { SettingsCommand, flagOverrides, settingOptions } from './config/flags.js';
import { SWITCH_FORMS, helpRows } from './config/settings-table.js';
import { KubeConfigError } from './kube/client.js';
import { SecretRegistry, createLogger, type Logger } from './log.js';
import { runScan } from './run/run.js';
import { stopLauncher } from './trivy/launcher/client.js';
import { VERSION } from './version.js';

export const EXIT_OK = 0;
export const EXIT_NOT_DELIVERED = 1;
export const EXIT_CONFIG = 2;

function buildProgram(
  onRun: (env: Env) => Promise<number>,
  onCheck: (env: Env, output: CheckOutput) => Promise<number>,
): Command {
  const program = new SettingsCommand('ephor-scanner')
    .description(
      'Scans the container images of Kubernetes workloads with Trivy and delivers the findings to Ephor, one payload per namespace.',
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
      'Preflight, read-only: configuration, Ephor readiness, Kubernetes access and RBAC, Trivy and its DB, pull secrets. Exit codes: 0 ready (warnings allowed), 1 a blocker, 2 invalid configuration.',
    )
    .addOption(
      new Option('--output <format>', 'text (one line per check) or json').choices(['text', 'json']).default('text'),
    )
    .addHelpText(
      'after',
      '\nEvery variable and flag of a scan run applies (ephor-scanner --help lists them); flags may also come after "check".',
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

/** Every secret of this process, so that even an unexpected crash report cannot print one. */
const secrets = new SecretRegistry();

export async function runCommand(env: Env): Promise<number> {
  const scanGroupId = randomUUID();
  const startedAt = new Date();
  // Registered before validation, so that not even a configuration error can print them.
  secrets.add(env.EPHOR_AUTH_VALUE, env.TRIVY_CACHE_BACKEND);

  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const log = fallbackLogger(env, secrets).child({ scan_group_id: scanGroupId });
    log.error(
      { errors: error.problems.map((p) => p.message), help: 'ephor-scanner --help lists every variable' },
      'invalid configuration: nothing was contacted',
    );
    return EXIT_CONFIG;
  }
  secrets.add(...config.secrets);
  const log = createLogger({ level: config.log.level, format: config.log.format, secrets }).child({
    scan_group_id: scanGroupId,
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
      api_url: config.ephor.apiUrl,
      auth_header: config.ephor.auth?.header,
    },
    'configuration loaded',
  );

  const shutdown = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (shutdown.signal.aborted) {
      log.error({ signal }, 'second signal: exiting now');
      process.exit(EXIT_NOT_DELIVERED); // running Trivy process groups are killed by the exit hook
    }
    log.warn({ signal }, 'signal received');
    shutdown.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const summary = await runScan({ config, env, log, secrets, scanGroupId, startedAt, shutdown: shutdown.signal });
    return summary.exitCode;
  } catch (error) {
    if (error instanceof KubeConfigError) {
      log.error({ error: error.message }, 'invalid Kubernetes configuration: nothing was contacted');
      return EXIT_CONFIG;
    }
    log.fatal({ err: error }, 'unexpected error');
    return EXIT_NOT_DELIVERED;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

export async function checkCommand(env: Env, output: CheckOutput): Promise<number> {
  secrets.add(env.EPHOR_AUTH_VALUE, env.TRIVY_CACHE_BACKEND);
  return runCheck(env, { output, secrets });
}

/** For reporting a configuration error, which may itself concern LOG_FORMAT or LOG_LEVEL. */
function fallbackLogger(env: Env, secrets: SecretRegistry): Logger {
  return createLogger({ level: 'info', format: logFormatOf(env), secrets });
}

async function main(): Promise<void> {
  const program = buildProgram(runCommand, checkCommand);
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // --help and --version end here with exit code 0; a bad flag is a configuration error.
    process.exit(error.exitCode === 0 ? EXIT_OK : EXIT_CONFIG);
  }
  await stopLauncher();
  process.exit(process.exitCode ?? EXIT_OK);
}

main().catch((error: unknown) => {
  process.stderr.write(
    secrets.scrub(
      `ephor-scanner: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    ),
  );
  process.exit(EXIT_NOT_DELIVERED);
});
