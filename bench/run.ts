// `npm run bench`: builds nothing itself (the npm script builds the bundle first), runs the scenarios, prints each
// measurement as it comes and writes docs/performance.md. See docs/performance.md for what is measured.
//
//   npm run bench [-- --scenario overhead,discovery,memory|all] [--quick] [--repeat N] [--output FILE|-]
//                    [--cpu-prof DIR] [--keep]
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { renderReport, type Machine, type Report } from './doc.js';
import { GNU_TIME, measureRun, type Measurement } from './measure.js';
import { judge, planRuns, SCENARIOS, valid, type ScenarioName } from './scenarios.js';
import { compileC, PROCESS_START_SOURCE, trivyStandIn } from './stand-in.js';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const DEFAULT_OUTPUT = path.join(REPO_ROOT, 'docs', 'performance.md');

export interface BenchOptions {
  scenarios: ScenarioName[];
  quick: boolean;
  repeat: number;
  /** Where to write the report; undefined: print only. */
  output?: string;
  /** Where to write every measurement as JSON. */
  json?: string;
  /** Measure nothing: write the report from a JSON file an earlier run wrote with --json. */
  fromJson?: string;
  cpuProfDir?: string;
  /** More node options for the scanner process (diagnostics). */
  nodeArgs: string[];
  keep: boolean;
}

const USAGE = `usage: npm run bench [-- options]
  --scenario LIST   overhead, discovery, memory, incremental, sharded or all (default), comma-separated
  --quick           small sizes (about a minute); targets are not judged; prints only unless --output is given
  --repeat N        runs of the overhead configuration (default 3; --quick: 1)
  --output FILE     where to write the report (default docs/performance.md; '-' to print only)
  --json FILE       also write every measurement as JSON
  --from-json FILE  measure nothing: write the report again from such a file (after a change to the report's text)
  --cpu-prof DIR    write a V8 CPU profile of each scanner process into DIR (node --cpu-prof)
  --node-arg ARG    pass ARG to the scanner's node too, e.g. --node-arg=--trace-gc (repeatable; with --keep)
  --keep            keep each run's temporary directory (scanner log, GNU time output)`;

export function parseArgs(argv: string[]): BenchOptions {
  let scenarios: ScenarioName[] = [...SCENARIOS];
  let quick = false;
  let repeat: number | undefined;
  let output: string | undefined | null = null;
  let json: string | undefined;
  let fromJson: string | undefined;
  let cpuProfDir: string | undefined;
  const nodeArgs: string[] = [];
  let keep = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new Error(`${name} needs a value\n${USAGE}`);
      return v;
    };
    switch (name) {
      case '--scenario': {
        const list = value()
          .split(',')
          .map((s) => s.trim());
        if (list.includes('all')) scenarios = [...SCENARIOS];
        else {
          const unknown = list.filter((s) => !SCENARIOS.includes(s as ScenarioName));
          if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}\n${USAGE}`);
          scenarios = list as ScenarioName[];
        }
        break;
      }
      case '--quick':
        quick = true;
        break;
      case '--repeat':
        repeat = Number(value());
        if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat takes a positive integer\n${USAGE}`);
        break;
      case '--output': {
        const v = value();
        output = v === '-' ? undefined : path.resolve(v);
        break;
      }
      case '--json':
        json = path.resolve(value());
        break;
      case '--from-json':
        fromJson = path.resolve(value());
        break;
      case '--cpu-prof':
        cpuProfDir = path.resolve(value());
        break;
      case '--node-arg':
        nodeArgs.push(value());
        break;
      case '--keep':
        keep = true;
        break;
      case '--help':
      case '-h':
        throw new Error(USAGE);
      default:
        throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  return {
    scenarios,
    quick,
    repeat: repeat ?? (quick ? 1 : 3),
    // a quick run must not replace the full results: it writes only where it is told to
    output: output === null ? (quick ? undefined : DEFAULT_OUTPUT) : output,
    json,
    fromJson,
    cpuProfDir,
    nodeArgs,
    keep,
  };
}

export async function runBench(options: BenchOptions, log: (line: string) => void = console.log): Promise<Report> {
  if (options.fromJson) {
    const saved = JSON.parse(await readFile(options.fromJson, 'utf8')) as Report;
    const report: Report = { ...saved, startedAt: new Date(saved.startedAt) };
    if (options.output) await writeFile(options.output, renderReport(report));
    log(`written from ${options.fromJson}: ${options.output ?? '(nothing: --output -)'}`);
    return report;
  }
  const startedAt = new Date();
  const started = performance.now();
  const machine = await describeMachine();
  log(
    `ephor-scanner benchmark: ${options.scenarios.join(', ')}${options.quick ? ' (quick)' : ''}; ${machine.nproc} CPUs, Node ${machine.node}`,
  );
  if (options.cpuProfDir) await mkdir(options.cpuProfDir, { recursive: true });
  const results: Report['results'] = [];
  // The incremental scenario's cache directories live for the whole benchmark (one run reuses the previous one's).
  const cacheRoot = await mkdtemp(path.join(os.tmpdir(), 'ephor-bench-incremental-'));
  let runs = planRuns(options.scenarios, { quick: options.quick, repeat: options.repeat, cacheRoot });
  const standIn = await trivyStandIn();
  if (standIn.kind !== 'c' && runs.some((r) => r.scenario === 'incremental')) {
    log(`incremental scenario skipped: it needs the C Trivy stand-in (${standIn.note})`);
    runs = runs.filter((r) => r.scenario !== 'incremental');
  }
  try {
    for (const [index, run] of runs.entries()) {
      log(
        `[${index + 1}/${runs.length}] ${run.scenario} ${run.config.label}: ${run.config.cluster.namespaces} × ${run.config.cluster.workloadsPerNamespace} workloads, U = ${run.config.cluster.images}, C = ${run.config.concurrency}, L = ${run.config.latencyMs} ms`,
      );
      const config = { ...run.config, label: `${run.scenario} ${run.config.label}` };
      const measurement = {
        ...(await measureRun(config, {
          progress: (line) => {
            log(`  ${line}`);
          },
          cpuProfDir: options.cpuProfDir,
          nodeArgs: options.nodeArgs,
          keep: options.keep,
        })),
        config: run.config,
      };
      results.push({ scenario: run.scenario, measurement });
      log(`  ${summaryLine(measurement)}`);
    }
  } finally {
    await rm(cacheRoot, { recursive: true, force: true });
  }
  const report: Report = {
    machine,
    startedAt,
    durationMs: performance.now() - started,
    quick: options.quick,
    command: commandLine(options),
    results,
  };
  log('');
  for (const t of judge(results, options.quick))
    log(`${t.verdict === 'met' ? 'met   ' : t.verdict === 'missed' ? 'MISSED' : '  -   '}  ${t.target}: ${t.measured}`);
  log(`benchmark took ${(report.durationMs / 60_000).toFixed(1)} min`);
  if (options.output) {
    await mkdir(path.dirname(options.output), { recursive: true });
    await writeFile(options.output, renderReport(report));
    log(`written: ${path.relative(process.cwd(), options.output) || options.output}`);
  }
  if (options.json) {
    await mkdir(path.dirname(options.json), { recursive: true });
    await writeFile(options.json, `${JSON.stringify(report, null, 2)}\n`);
    log(`written: ${options.json}`);
  }
  return report;
}

function summaryLine(m: Measurement): string {
  const cpu = (m.cpuUserS ?? 0) + (m.cpuSystemS ?? 0);
  const parts = [
    m.layers
      ? `wall ${(m.wallMs / 1000).toFixed(2)} s, ${m.layers.downloaded} layers downloaded (${m.layers.downloadedBase} base)`
      : `wall ${(m.wallMs / 1000).toFixed(2)} s / ideal ${(m.idealMs / 1000).toFixed(2)} s = ${(m.wallMs / m.idealMs).toFixed(4)}`,
    `discovery ${m.discoveryMs ?? '–'} ms`,
    `CPU ${cpu.toFixed(2)} s (${((cpu * 1000) / m.cluster.images).toFixed(1)} ms/image, ${((cpu * 1000) / m.cluster.workloads).toFixed(2)} ms/workload)`,
    `peak RSS ${((m.time.maxRssKiB ?? 0) / 1024).toFixed(1)} MiB`,
    `posted ${(m.ephor.bytes / 1024 / 1024).toFixed(1)} MiB`,
  ];
  return valid(m) ? parts.join(', ') : `INVALID (${m.problems.join('; ')}): ${parts.join(', ')}`;
}

function commandLine(options: BenchOptions): string {
  const args: string[] = [];
  if (options.scenarios.length !== SCENARIOS.length) args.push('--scenario', options.scenarios.join(','));
  if (options.quick) args.push('--quick');
  for (const arg of options.nodeArgs) args.push(`--node-arg=${arg}`);
  if (options.repeat !== (options.quick ? 1 : 3)) args.push('--repeat', String(options.repeat));
  return ['npm run bench', ...(args.length > 0 ? ['--', ...args] : [])].join(' ');
}

export async function describeMachine(): Promise<Machine> {
  const cpus = os.cpus();
  const run = (file: string, args: string[]) => {
    try {
      return execFileSync(file, args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  const commit = run('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = run('git', ['status', '--porcelain', '--', 'src', 'package.json', 'package-lock.json']);
  return {
    nproc: os.availableParallelism(),
    cpu: cpus[0]?.model ?? 'unknown',
    memoryGiB: os.totalmem() / 1024 ** 3,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    gnuTime: run(GNU_TIME, ['--version'])?.split('\n')[0] ?? 'unknown',
    processStartMs: await processStartMs(),
    processStartFromCMs: await processStartFromCMs(),
    commit: commit ? `${commit}${dirty ? ' + uncommitted changes in src/' : ''}` : 'unknown',
  };
}

/** The median wall time of starting `/bin/true` and reaping it, 30 times. */
async function processStartMs(): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 30; i++) {
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const child = spawn('/bin/true', [], { stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', () => {
        resolve();
      });
    });
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** The same from a C program (bench/process-start.c, posix_spawn): the machine's own floor. Undefined without a C compiler. */
async function processStartFromCMs(): Promise<number | undefined> {
  const built = await compileC(PROCESS_START_SOURCE);
  if (!('binary' in built)) return undefined;
  try {
    const { stdout } = await promisify(execFile)(built.binary, ['30'], { timeout: 60_000 });
    return Number(stdout.trim());
  } finally {
    await rm(path.dirname(built.binary), { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  let options: BenchOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error((error as Error).message);
    process.exit(2);
  }
  runBench(options).then(
    (report) => process.exit(report.results.every((r) => valid(r.measurement)) ? 0 : 1),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
