// The entry point's split: importing the command line or the Trivy runner runs nothing and registers nothing on the
// process; the entry point (src/main.ts) registers the exit hook that kills Trivy process groups, once.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

describe('entry point', () => {
  test('importing cli.ts and the Trivy runner registers no exit hook and parses no argv; registerTrivyExitHook adds one, once', async () => {
    const before = process.listeners('exit').length;
    const cli = await import('../../src/cli.js');
    await import('../../src/trivy/process.js');
    await import('../../src/trivy/scan.js');
    await import('../../src/trivy/launcher/client.js');
    assert.equal(typeof cli.buildProgram, 'function');
    assert.equal(process.listeners('exit').length, before, 'nothing registered on import');
    const { killAllTrivyProcesses, registerTrivyExitHook } = await import('../../src/trivy/state.js');
    registerTrivyExitHook();
    registerTrivyExitHook();
    const added = process.listeners('exit').slice(before);
    assert.deepEqual(added, [killAllTrivyProcesses]);
    process.off('exit', killAllTrivyProcesses);
  });

  test('one set of exit codes: a run, check and the command line', async () => {
    const codes = await import('../../src/exit-codes.js');
    const check = await import('../../src/check/output.js');
    assert.deepEqual([codes.EXIT_OK, codes.EXIT_NOT_DELIVERED, codes.EXIT_CONFIG], [0, 1, 2]);
    assert.deepEqual([check.EXIT_PASS, check.EXIT_BLOCKED, check.EXIT_CONFIG], [0, 1, 2]);
  });
});
