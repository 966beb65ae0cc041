// The entry point (bundled as dist/ephor-scanner.mjs): registers what must hold for the whole process (the exit
// hook that kills Trivy process groups still running), runs the command line (cli.ts) and exits with its code.
import { CommanderError } from 'commander';
import { buildProgram, checkCommand, runCommand } from './cli.js';
import { messageOf } from './errors.js';
import { EXIT_CONFIG, EXIT_NOT_DELIVERED, EXIT_OK } from './exit-codes.js';
import { SecretRegistry } from './log.js';
import { stopLauncher } from './trivy/launcher/client.js';
import { registerTrivyExitHook } from './trivy/state.js';

/** Every secret of this process, so that even an unexpected crash report cannot print one. */
const secrets = new SecretRegistry();

async function main(): Promise<void> {
  registerTrivyExitHook();
  const program = buildProgram(
    (env) => runCommand(env, secrets),
    (env, output) => checkCommand(env, output, secrets),
  );
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
  // A bug outside a run's own error handling: one line, no stack trace for users.
  process.stderr.write(secrets.scrub(`ephor-scanner: unexpected error: ${messageOf(error)}\n`));
  process.exit(EXIT_NOT_DELIVERED);
});
