// docs/performance.md, written from the measurements: the machine, how to reproduce, the targets with what was
// measured, and every measured number of every run.
import { overheadParts, type Measurement } from './measure.js';
import { judge, median, OWN_SECTION, valid, type ScenarioName } from './scenarios.js';

export interface Machine {
  nproc: number;
  cpu: string;
  memoryGiB: number;
  node: string;
  kernel: string;
  gnuTime: string;
  /** Wall time of starting and reaping `/bin/true` from Node, the median of 30 (what every Trivy start costs here). */
  processStartMs: number;
  /** The same from a C program (posix_spawn): what the kernel and hypervisor cost. Undefined without a C compiler. */
  processStartFromCMs?: number;
  commit: string;
}

export interface Report {
  machine: Machine;
  startedAt: Date;
  durationMs: number;
  quick: boolean;
  command: string;
  results: Array<{ scenario: ScenarioName; measurement: Measurement }>;
}

const fmt = {
  int: (n: number | undefined) => (n === undefined ? '–' : Math.round(n).toLocaleString('en-US')),
  ms: (n: number | undefined) => (n === undefined ? '–' : Math.round(n).toLocaleString('en-US')),
  s: (n: number | undefined, digits = 3) => (n === undefined ? '–' : n.toFixed(digits)),
  mib: (kib: number | undefined) => (kib === undefined ? '–' : (kib / 1024).toFixed(1)),
  bytes: (n: number | undefined) => (n === undefined ? '–' : n.toLocaleString('en-US')),
  mb: (n: number | undefined) => (n === undefined ? '–' : (n / 1024 / 1024).toFixed(1)),
};

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function clusterLabel(m: Measurement): string {
  const c = m.cluster;
  return `${c.namespaces} × ${c.workloads / c.namespaces} = ${fmt.int(c.workloads)} workloads, ${fmt.int(c.pods)} Pods`;
}

function scannerCpuS(m: Measurement): number | undefined {
  return m.cpuUserS === undefined || m.cpuSystemS === undefined ? undefined : m.cpuUserS + m.cpuSystemS;
}

function treeCpuS(m: Measurement): number | undefined {
  return m.time.userS === undefined || m.time.systemS === undefined ? undefined : m.time.userS + m.time.systemS;
}

function runName(r: { scenario: ScenarioName; measurement: Measurement }): string {
  return `${r.scenario} ${r.measurement.config.label}${valid(r.measurement) ? '' : ' (INVALID)'}`;
}

export function renderReport(report: Report): string {
  const { machine } = report;
  const targets = judge(report.results, report.quick);
  // The incremental scenario has a section of its own: its runs have no fixed L, so the tables below do not fit them.
  const results = report.results.filter((r) => !OWN_SECTION.includes(r.scenario));
  const incremental = report.results.filter((r) => r.scenario === 'incremental');
  const sharded = report.results.filter((r) => r.scenario === 'sharded');
  const out: string[] = [];
  out.push('# Performance');
  out.push('');
  out.push(
    `Written by \`${report.command}\` on ${report.startedAt.toISOString()} (the whole benchmark took ${(report.durationMs / 60_000).toFixed(1)} min). ` +
      'Every number below was measured in that run; run the benchmark again to refresh them, do not edit them by hand.' +
      (report.quick
        ? " **This is a `--quick` run: its sizes are smaller than the targets', so no target is judged.**"
        : ''),
  );
  out.push('');
  out.push('## Targets');
  out.push('');
  out.push(
    table(
      ['Target', 'Measured', 'Result'],
      targets.map((t) => [
        t.target,
        t.measured,
        t.verdict === 'met' ? 'met' : t.verdict === 'missed' ? '**MISSED**' : t.verdict,
      ]),
    ),
  );
  const invalid = results.filter((r) => !valid(r.measurement));
  if (invalid.length > 0) {
    out.push('');
    out.push('Runs whose numbers are not valid (the scanner did not scan and deliver everything):');
    out.push('');
    for (const r of invalid) out.push(`- ${runName(r)}: ${r.measurement.problems.join('; ')}`);
  }
  out.push('');
  out.push('## Machine');
  out.push('');
  out.push(
    table(
      [
        'nproc',
        'CPU',
        'Memory',
        'Node',
        'Kernel',
        'Starting a process from Node',
        'Starting a process from C',
        'Scanner commit',
      ],
      [
        [
          String(machine.nproc),
          machine.cpu,
          `${machine.memoryGiB.toFixed(1)} GiB`,
          machine.node,
          machine.kernel,
          `${machine.processStartMs.toFixed(1)} ms (\`/bin/true\`, median of 30)`,
          machine.processStartFromCMs === undefined
            ? '– (no C compiler)'
            : `${machine.processStartFromCMs.toFixed(1)} ms (\`bench/process-start.c\`: posix_spawn, median of 30)`,
          machine.commit,
        ],
      ],
    ),
  );
  out.push('');
  out.push('## How to reproduce');
  out.push('');
  out.push('```bash');
  out.push('npm ci');
  out.push('npm run bench                                 # every scenario, writes this file');
  out.push(
    'npm run bench -- --scenario overhead          # or discovery, memory, incremental, sharded; several: --scenario overhead,memory',
  );
  out.push(
    'npm run bench -- --quick                      # small sizes, about a minute; prints only (add --output FILE to write)',
  );
  out.push('npm run bench -- --cpu-prof /tmp/profiles      # also a V8 CPU profile of each scanner process');
  out.push(
    'npm run bench -- --scenario memory --node-arg=--max-old-space-size=192 --output /tmp/capped.md   # the scanner with other node options',
  );
  out.push('npm run bench -- --json /tmp/performance.json    # also every measurement as JSON');
  out.push('```');
  out.push('');
  out.push(
    'It needs `../shared` beside the clone (the Trivy report and Kubernetes objects are read from there at run time), ' +
      'GNU time at `/usr/bin/time`, `bash` and coreutils. `npm run bench` builds the bundle first, then runs ' +
      '`node --import tsx bench/run.ts`.',
  );
  out.push('');
  // The sections of the fixed-latency scenarios, dropped again when only the incremental scenario ran.
  const standardSections = out.length;
  out.push('## What is measured');
  out.push('');
  out.push(...methodText(results));
  out.push('');
  out.push('## Results');
  out.push('');
  out.push('### Time');
  out.push('');
  out.push(
    table(
      [
        'Run',
        'Cluster',
        'U',
        'C',
        'L (ms)',
        'T_db (ms)',
        'Ideal (ms)',
        'Wall (ms)',
        'Wall / ideal',
        'duration_s',
        'Plan → last scan (ms)',
        'ceil(U/C) × L (ms)',
        'Last scan → done (ms)',
      ],
      results.map((r) => {
        const m = r.measurement;
        const scanPhase = scanPhaseMs(m);
        const tail =
          m.timeline.lastScanned !== undefined && m.timeline.completed !== undefined
            ? m.timeline.completed - m.timeline.lastScanned
            : undefined;
        return [
          runName(r),
          clusterLabel(m),
          fmt.int(m.cluster.images),
          String(m.config.concurrency),
          String(m.config.latencyMs),
          `${fmt.ms(m.dbMs.total)} (${fmt.ms(m.dbMs.db)} + ${fmt.ms(m.dbMs.javaDb)})`,
          fmt.ms(m.idealMs),
          fmt.ms(m.wallMs),
          (m.wallMs / m.idealMs).toFixed(4),
          fmt.s(m.durationS, 1),
          fmt.ms(scanPhase),
          fmt.ms(Math.ceil(m.cluster.images / m.config.concurrency) * m.config.latencyMs),
          fmt.ms(tail),
        ];
      }),
    ),
  );
  out.push('');
  out.push('### Trivy slots');
  out.push('');
  out.push(
    "From the C stand-in's own start and end time of every scan (`FAST_TRIVY_TIMELINE`): how soon a slot was used again " +
      'after a Trivy process ended, and how much slot time stood empty between the first and the last start (divided by C: the ' +
      "wall time it cost). A scan's start is its `main()`; the gap includes the launcher noticing the exit, starting the next " +
      'process (fork and exec) and that process being loaded.',
  );
  out.push('');
  out.push(
    table(
      [
        'Run',
        'Scans',
        'Trivy lifetime, mean (ms)',
        'Scanner start → first Trivy (ms)',
        'Exit → next start: median / p90 (ms)',
        'Empty slot time / C (ms)',
      ],
      results
        .filter((r) => r.measurement.slots !== undefined)
        .map((r) => {
          const slots = r.measurement.slots!;
          return [
            runName(r),
            fmt.int(slots.scans),
            slots.meanLifetimeMs.toFixed(1),
            fmt.ms(slots.firstStartMs),
            `${slots.gapMedianMs.toFixed(1)} / ${slots.gapP90Ms.toFixed(1)}`,
            fmt.ms(slots.idleWallMs),
          ];
        }),
    ),
  );
  out.push('');
  out.push('### Where the overhead goes');
  out.push('');
  out.push(
    "Wall time beyond the ideal, in parts that each come from the measurements above: before the scanner's first log line " +
      'and after its summary (Node start-up, loading the bundle, exit); the first Trivy start beyond T_db (discovery outlasting ' +
      "the DB steps, then planning); empty slot time / C; the stand-in's lifetime beyond L in each of the ceil(U / C) rounds; " +
      'the deliveries after the last scan. *Rest* is what these do not explain (they overlap a little, and the last round ' +
      'is not full).',
  );
  out.push('');
  out.push(
    table(
      [
        'Run',
        'Wall − ideal (ms)',
        'Outside the log (ms)',
        'First Trivy start − T_db (ms)',
        'Empty slots / C (ms)',
        'Lifetime beyond L (ms)',
        'Last scan → done (ms)',
        'Rest (ms)',
      ],
      results.flatMap((r) => {
        const parts = overheadParts(r.measurement);
        if (!parts) return [];
        return [
          [
            runName(r),
            fmt.ms(parts.overhead),
            fmt.ms(parts.outsideLog),
            fmt.ms(parts.firstStartBeyondDb),
            fmt.ms(parts.emptySlots),
            fmt.ms(parts.lifetimeBeyondL),
            fmt.ms(parts.afterLastScan),
            fmt.ms(parts.rest),
          ],
        ];
      }),
    ),
  );
  out.push('');
  out.push('### CPU and memory');
  out.push('');
  out.push(
    table(
      [
        'Run',
        'U',
        'Workloads',
        'Scanner CPU user + sys (s)',
        'CPU per image (ms)',
        'CPU per workload (ms)',
        'Peak RSS, GNU time (MiB)',
        'max_rss_mib (scanner)',
        'Peak RSS: discovery / scans / after last scan (MiB)',
        'Launcher peak RSS (MiB)',
        'Process tree CPU, GNU time (s)',
        'Trivy stand-in CPU per scan (ms)',
        'Stand-ins (benchmark process) CPU (s)',
        'Other CPU on the machine (s)',
      ],
      results.map((r) => {
        const m = r.measurement;
        const cpu = scannerCpuS(m);
        const tree = treeCpuS(m);
        const trivyScans = m.cluster.images + 3; // + version and the two DB downloads
        return [
          runName(r),
          fmt.int(m.cluster.images),
          fmt.int(m.cluster.workloads),
          cpu === undefined ? '–' : `${fmt.s(m.cpuUserS)} + ${fmt.s(m.cpuSystemS)} = ${fmt.s(cpu)}`,
          cpu === undefined ? '–' : ((cpu * 1000) / m.cluster.images).toFixed(1),
          cpu === undefined ? '–' : ((cpu * 1000) / m.cluster.workloads).toFixed(2),
          `${fmt.mib(m.time.maxRssKiB)} (${fmt.int(m.time.maxRssKiB)} KiB)`,
          m.maxRssMiB === undefined ? '–' : m.maxRssMiB.toFixed(1),
          `${fmt.mib(m.rssByPhaseKiB.discovery)} / ${fmt.mib(m.rssByPhaseKiB.scans)} / ${fmt.mib(m.rssByPhaseKiB.tail)}`,
          m.launcherMaxRssMiB === undefined ? '–' : m.launcherMaxRssMiB.toFixed(1),
          tree === undefined ? '–' : `${fmt.s(m.time.userS, 2)} + ${fmt.s(m.time.systemS, 2)} = ${fmt.s(tree, 2)}`,
          tree === undefined || cpu === undefined ? '–' : (((tree - cpu) * 1000) / trivyScans).toFixed(1),
          fmt.s(m.machine.benchS, 2),
          m.machine.busyS === undefined || tree === undefined
            ? '–'
            : `${fmt.s(m.machine.busyS - tree - m.machine.benchS, 2)} (steal ${fmt.s(m.machine.stealS, 2)})`,
        ];
      }),
    ),
  );
  out.push('');
  out.push('### Discovery');
  out.push('');
  out.push(
    table(
      [
        'Run',
        'Namespaces',
        'Workloads (Deployments / StatefulSets / DaemonSets / CronJobs)',
        'Pods',
        'ReplicaSets + Jobs',
        'Discovery (ms)',
        'Kubernetes API requests',
      ],
      results.map((r) => {
        const m = r.measurement;
        const k = m.cluster.byKind;
        return [
          runName(r),
          fmt.int(m.cluster.namespaces),
          `${fmt.int(m.cluster.workloads)} (${fmt.int(k.Deployment)} / ${fmt.int(k.StatefulSet)} / ${fmt.int(k.DaemonSet)} / ${fmt.int(k.CronJob)})`,
          fmt.int(m.cluster.pods),
          `${fmt.int(m.cluster.replicaSets)} + ${fmt.int(m.cluster.jobs)}`,
          fmt.ms(m.discoveryMs),
          fmt.int(m.kube.requests),
        ];
      }),
    ),
  );
  out.push('');
  out.push('### Delivery: bytes posted per namespace');
  out.push('');
  out.push(
    table(
      [
        'Run',
        'Namespaces delivered',
        'POSTs (parts)',
        'Bytes per namespace: min / median / max',
        'Bytes posted in all',
        'Findings delivered',
        'Checked in full by the stand-in',
      ],
      results.map((r) => {
        const m = r.measurement;
        const b = m.bytesPerNamespace;
        return [
          runName(r),
          `${m.namespaces.delivered} of ${m.cluster.namespaces}`,
          fmt.int(m.partsPerNamespace.reduce((x, y) => x + y, 0)),
          b.length === 0
            ? '–'
            : `${fmt.bytes(Math.min(...b))} / ${fmt.bytes(median(b))} / ${fmt.bytes(Math.max(...b))}`,
          `${fmt.bytes(m.ephor.bytes)} (${fmt.mb(m.ephor.bytes)} MiB)`,
          fmt.int(m.findings),
          `${m.ephor.checked} bodies, ${fmt.mb(m.ephor.checkedBytes)} MiB`,
        ];
      }),
    ),
  );
  out.push('');
  out.push('### Images');
  out.push('');
  out.push(
    table(
      [
        'Run',
        'U',
        'Most used image: workloads / namespaces',
        'Images used by one workload',
        'Report',
        'Findings per image',
      ],
      results.map((r) => {
        const m = r.measurement;
        return [
          runName(r),
          fmt.int(m.cluster.images),
          `${fmt.int(m.cluster.topImageUses)} / ${fmt.int(m.cluster.topImageNamespaces)}`,
          fmt.int(m.cluster.imagesUsedOnce),
          `${m.report.fixture} (${fmt.bytes(m.report.bytes)} bytes, ${m.report.vulnerabilities} vulnerabilities)`,
          m.findings === undefined ? '–' : (m.findings / m.cluster.containers).toFixed(0),
        ];
      }),
    ),
  );
  out.push('');
  out.push('## Reading the numbers');
  out.push('');
  out.push(...readingText(results));
  out.push('');
  if (results.length === 0) out.length = standardSections;
  if (incremental.length > 0) out.push(...incrementalSection(incremental), '');
  if (sharded.length > 0) out.push(...shardedSection(sharded), '');
  return out.join('\n');
}

/** What the incremental runs' numbers say, from the numbers. */
function incrementalReading(runs: Measurement[]): string[] {
  const find = (mode: string, step: string) =>
    runs.find((m) => m.config.incremental?.mode === mode && m.config.incremental.step === step);
  const [base, unchanged] = [find('ephemeral', 'first'), find('server', 'second')];
  if (!base || !unchanged?.layers) return [];
  const cpu = scannerCpuS(unchanged);
  const lines = [
    `- The unchanged re-scan downloaded ${unchanged.layers.downloaded} layers of the ${fmt.int(unchanged.layers.perImageTotal)} an ephemeral run ` +
      `takes; what is left of its wall time is a manifest and a config per image and the scanner's own work, which the cache does not ` +
      `change: ${fmt.s(cpu, 1)} s of its own CPU (reading ${fmt.int(unchanged.cluster.images)} reports of ${unchanged.report.vulnerabilities} findings and posting ` +
      `${fmt.mb(unchanged.ephor.bytes)} MiB) in ${fmt.s(unchanged.wallMs / 1000, 1)} s of wall time, against ${fmt.s(scannerCpuS(base), 1)} s in the first ` +
      'ephemeral run, where it hides behind the layer downloads.',
  ];
  const firstServer = find('server', 'first');
  if (firstServer?.layers && base.layers)
    lines.push(
      `- The first server run downloaded each base layer at most once per concurrent scan (${firstServer.layers.downloadedBase} base-layer downloads ` +
        `for ${firstServer.layers.base} base layers, against ${base.layers.downloadedBase} in the first ephemeral run); its application layers ` +
        "are each image's own and are downloaded either way, up to 5 at a time, which bounds what the shared base layers can save.",
    );
  return lines;
}

/** The incremental scenario: its runs side by side, as ratios to the first ephemeral run. */
function incrementalSection(runs: Array<{ scenario: ScenarioName; measurement: Measurement }>): string[] {
  const measurements = runs.map((r) => r.measurement);
  const base = measurements.find(
    (m) => m.config.incremental?.mode === 'ephemeral' && m.config.incremental.step === 'first',
  );
  const first = measurements[0]!;
  const model = first.config.incremental!.layers;
  const layers = first.layers;
  const lines = [
    '## Incremental scans',
    '',
    'Reproduce with `npm run bench -- --scenario incremental` (add `--quick` for 60 images; `--output FILE` to write it).',
    '',
    `The same cluster (${clusterLabel(first)}, U = ${fmt.int(first.cluster.images)} images, C = ${first.config.concurrency}) ` +
      `scanned five times in one benchmark run: twice in \`ephemeral\` mode, then three times in \`server\` mode, each mode with ` +
      'its own `TRIVY_CACHE_DIR` kept from one of its runs to the next, the last one after every 10th image was redeployed with a new ' +
      'digest (new application layers on the same base). Images are layered (`bench/layers.ts`): ' +
      `${layers ? `${layers.base} base layers (8 OS layers, 16 runtime families of 2 layers)` : 'base layers'} shared across the images, ` +
      `plus ${model.appLayers} application layers of each image's own; a layer takes ${model.minMs}–${model.maxMs} ms to download and ` +
      `analyse (fixed per layer), the manifest and config ${model.manifestMs} ms per scan, and a scan takes up to 5 layers at once ` +
      "(Trivy's `--parallel`). The Trivy stand-in is `bench/fast-trivy.c`: a local scan has an empty cache and takes every layer; in server " +
      "mode it is a client of `test/support/fake-trivy.mjs`'s `trivy server` (the one the scanner starts, its layer cache in files under " +
      '`TRIVY_CACHE_DIR`) and takes only the layers the server misses (Twirp `MissingBlobs`, `PutBlob`, `PutArtifact`, `Scan`). ' +
      "Absolute times here are the stand-ins' and this machine's; what the runs show is their ratios, measured side by side.",
    '',
    table(
      [
        'Run',
        'Digests changed',
        'Layers downloaded (base)',
        'Layer downloads of an ephemeral scan',
        'Wall (ms)',
        'Faster than the first ephemeral run',
        'Plan → last scan (ms)',
        'Scanner CPU user + sys (s)',
        'Findings delivered (entries / CRITICAL)',
      ],
      runs.map((r) => {
        const m = r.measurement;
        const changed = m.config.cluster.changedEvery
          ? Math.floor(m.cluster.images / m.config.cluster.changedEvery)
          : 0;
        const scanPhase = scanPhaseMs(m);
        return [
          runName(r),
          fmt.int(changed),
          m.layers ? `${fmt.int(m.layers.downloaded)} (${fmt.int(m.layers.downloadedBase)})` : '–',
          m.layers ? fmt.int(m.layers.perImageTotal) : '–',
          fmt.ms(m.wallMs),
          base ? `${(base.wallMs / m.wallMs).toFixed(2)}×` : '–',
          fmt.ms(scanPhase),
          fmt.s(scannerCpuS(m), 2),
          `${fmt.int(m.ephor.vulnerabilities)} / ${fmt.int(m.ephor.critical)}`,
        ];
      }),
    ),
    '',
    ...incrementalReading(measurements),
  ];
  return lines;
}

function methodText(results: Array<{ scenario: ScenarioName; measurement: Measurement }>): string[] {
  const overhead = results.find((r) => r.scenario === 'overhead')?.measurement;
  const large = results.find((r) => r.scenario !== 'overhead')?.measurement;
  const lines = [
    'Each run starts the built bundle (`node dist/ephor-scanner.mjs`, what the image ships) under `/usr/bin/time -v`, ' +
      'configured by environment variables as the CronJob runs it (`SCAN_NAMESPACES=*`, `SCAN_CONCURRENCY=C`, `LOG_LEVEL=info`, ' +
      'defaults otherwise: ephemeral layer cache, registry auth on), against three loopback stand-ins in the benchmark process:',
    '',
    '- **Kubernetes**: `test/support/k8s-server.ts` in its `bulk` mode (objects serialised once when loaded, a page answered ' +
      "by concatenating their bytes). The synthetic cluster (`bench/cluster.ts`) is built with the tests' own builders from real API objects: " +
      'N namespaces × W workloads (per 20: 14 Deployments with their ReplicaSet, 3 StatefulSets, 2 DaemonSets, 1 CronJob with a ' +
      'running Job), R = 3 running Pods each with containerd image IDs `docker.io/library/NAME@sha256:…`, a `default` ServiceAccount ' +
      'per namespace. The U images are drawn Zipf-like (s = 1) over the workloads, every image at least once, so the popular images ' +
      'run in every namespace (see *Images*).',
    `- **Trivy**: ${standInText(results)}: \`version\`, the two DB downloads in Trivy's cache layout, and for each ` +
      'scan: the Trivy report ' +
      `\`${(large ?? overhead)?.report.fixture ?? 'real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json'}\` (read from ../shared at run time, ` +
      'with the scanned reference as ArtifactName, RepoDigests and OS Target), written so that the scan ends L ms after the ' +
      'process started (the C stand-in writes it and waits for the rest of L; fast-trivy.sh waits L, then writes). It accepts ' +
      'exactly the flags the scanner passes. Its ' +
      'own CPU cost per scan is in the *CPU and memory* table (process tree minus scanner).',
    '- **Ephor**: `test/support/ephor-server.ts` in its `light` mode: every body is counted (bytes, workloads, vulnerability entries, ' +
      'CRITICAL ones, from their keys) and checked for content type, UTF-8 and framing before the 201 answer; a sample of bodies ' +
      '(the first, then one in `ceil(workloads / 100)`) is parsed in full and shape-checked after the run, so the check takes no CPU ' +
      'from the scanner. A run counts only if every image was scanned, every namespace and container delivered, and the bytes and ' +
      'findings the scanner reports equal what the stand-in counted.',
    '',
    'Definitions:',
    '',
    '- **Wall**: from spawning the scanner process to its exit (Node start-up and bundle load included). `duration_s` is the ' +
      "scanner's own figure (from its start to its summary, 0.1 s resolution).",
    '- **Ideal**: `T_db + ceil(U / C) × L`, with T_db the two "database downloaded" steps (`duration_ms` of the vulnerability DB ' +
      'and the Java DB) the scanner logs.',
    '- **Plan → last scan**: from "image deduplication completed" to the last "image scanned" (log timestamps, ms); its ideal is ' +
      '`ceil(U / C) × L`. **Last scan → done**: namespaces still to deliver after the last scan, and the summary.',
    '- **Scanner CPU**: `resources.cpu_user_s + cpu_system_s` of the summary plus the same of `resources.launcher` ' +
      '(`process.resourceUsage()` of the scanner process and of its Trivy launcher, the small process that starts the Trivy ' +
      "processes; Trivy processes excluded), divided by U and by the number of workloads. **Process tree CPU**: GNU time's " +
      'user + system of the scanner and every child it reaped (the launcher and the Trivy stand-ins).',
    '- **Peak RSS**: GNU time\'s "Maximum resident set size" of the scanner process (the largest of it and its reaped children: ' +
      "the launcher and the stand-in Trivy processes, all smaller); `max_rss_mib` is the scanner's own report; the per-phase peaks come from sampling " +
      '`/proc/PID/status` VmRSS every 100 ms. The launcher is a second process of the scanner (it starts the Trivy processes, see the ' +
      "README): its own peak (`resources.launcher.max_rss_mib`) is listed beside, and a pod's memory limit must hold both.",
    "- **Discovery**: the summary's `discovery_ms` (listing namespaces, workloads, Pods, ReplicaSets and Jobs, and attributing " +
      'Pods; the Trivy DB steps run at the same time).',
    '- **Bytes per namespace**: `per_namespace[].bytes` of the summary, equal to what the Ephor stand-in received.',
    '- **Other CPU on the machine**: busy CPU time of the whole machine while the scanner ran (`/proc/stat`), minus the ' +
      "scanner's process tree and the benchmark process (the stand-ins): other processes and the kernel's own threads. " +
      'Large values mean the run was disturbed; `steal` is time the hypervisor gave to other guests.',
  ];
  return lines;
}

/** Facts derived from the numbers, to locate where time and memory go. */
function readingText(results: Array<{ scenario: ScenarioName; measurement: Measurement }>): string[] {
  const lines: string[] = [];
  for (const r of results.filter((x) => valid(x.measurement))) {
    const m = r.measurement;
    const cpu = scannerCpuS(m);
    if (cpu === undefined) continue;
    const perImage = (cpu * 1000) / m.cluster.images;
    const budget = m.config.latencyMs / m.config.concurrency;
    const scanPhase = scanPhaseMs(m);
    const idealScan = Math.ceil(m.cluster.images / m.config.concurrency) * m.config.latencyMs;
    const peakSampled = Math.max(m.rssByPhaseKiB.discovery ?? 0, m.rssByPhaseKiB.scans ?? 0, m.rssByPhaseKiB.tail ?? 0);
    const parts = [
      `**${runName(r)}**: the scanner used ${perImage.toFixed(1)} ms of its own CPU per image over the whole run (discovery and deliveries included), ` +
        `against the L / C = ${budget.toFixed(1)} ms per image that keeps C Trivy processes busy`,
      scanPhase === undefined
        ? ''
        : `; the scan phase took ${(scanPhase / 1000).toFixed(2)} s for an ideal ${(idealScan / 1000).toFixed(2)} s (× ${(scanPhase / idealScan).toFixed(2)})`,
      m.slots === undefined
        ? ''
        : ` (the first Trivy started ${(m.slots.firstStartMs! / 1000).toFixed(2)} s after the scanner's first log line; slots stood empty ` +
          `for ${(m.slots.idleWallMs / 1000).toFixed(2)} s of wall time, a median ${m.slots.gapMedianMs.toFixed(1)} ms from one Trivy's exit to the next start)`,
      m.timeline.lastScanned !== undefined && m.timeline.completed !== undefined
        ? `; ${((m.timeline.completed - m.timeline.lastScanned) / 1000).toFixed(2)} s of delivery followed the last scan (${fmt.mb(m.ephor.bytes)} MiB posted in all)`
        : '',
      peakSampled > 0 ? `; the sampled RSS was highest (${fmt.mib(peakSampled)} MiB) ${peakPhase(m)}.` : '.',
    ];
    lines.push(`- ${parts.join('')}`);
  }
  lines.push(
    `- The stand-in Trivy is not free either: on this machine starting a process costs milliseconds of CPU (see *Machine*), ` +
      'and each scan starts at least one; its CPU per scan is in the *CPU and memory* table. It, the ' +
      'scanner and the Kubernetes and Ephor stand-ins share the same cores.',
  );
  lines.push(
    '- Wall times on this virtual machine vary from run to run by several percent; the overhead scenario is run several times and judged on the median.',
  );
  return lines;
}

function peakPhase(m: Measurement): string {
  const phases: Array<[string, number | undefined]> = [
    ['during discovery', m.rssByPhaseKiB.discovery],
    ['during the scans', m.rssByPhaseKiB.scans],
    ['after the last scan (deliveries)', m.rssByPhaseKiB.tail],
  ];
  const [name] = phases.reduce((best, next) => ((next[1] ?? -1) > (best[1] ?? -1) ? next : best));
  return name;
}

function standInText(results: readonly { measurement: Measurement }[]): string {
  const kinds = new Set(results.map((r) => r.measurement.trivyStandIn.kind));
  const c =
    "`bench/fast-trivy.c` (compiled with the machine's `cc` when the benchmark starts; one process per scan, which hands " +
    'every call other than a scan to `bench/fast-trivy.sh`)';
  const bash = '`bench/fast-trivy.sh` (bash + coreutils: two processes per scan, bash then cat)';
  const note = results.find((r) => r.measurement.trivyStandIn.note)?.measurement.trivyStandIn.note;
  if (kinds.size > 1) return `${c} or, where it could not be built, ${bash}`;
  return kinds.has('c') ? c : `${bash}${note ? `, because ${note}` : ''}`;
}

/** The sharded scenario: one process and N shards on the same cluster, side by side. */
function shardedSection(runs: Array<{ scenario: ScenarioName; measurement: Measurement }>): string[] {
  const first = runs[0]!.measurement;
  const single = runs.find((r) => !r.measurement.config.shards)?.measurement;
  return [
    '## Sharded runs',
    '',
    'Reproduce with `npm run bench -- --scenario sharded` (add `--quick` for 40 images; `--output FILE` to write it).',
    '',
    `The same cluster (${clusterLabel(first)}, U = ${fmt.int(first.cluster.images)} images, L = ${first.config.latencyMs} ms per scan) ` +
      `scanned by one scanner process with SCAN_CONCURRENCY = ${first.config.concurrency}, then by a sharded run (README "Scaling out"): ` +
      'N processes started together on this machine as the Pods of an Indexed Job would be, each with its own HOME, TMPDIR and cache, ' +
      'SCAN_CONCURRENCY the same in each, index 0 listening on a loopback port and the others given its URL. Every process discovers ' +
      "the cluster and downloads its DBs itself; index 0 alone posts. Scans are sleeps in the Trivy stand-in, so the machine's cores " +
      "are not the limit; the wall time is index 0's (from its start to its exit, after the other shards heard that the run is done).",
    '',
    table(
      [
        'Run',
        'Wall (ms)',
        'Share of one process',
        'Images scanned per process',
        'Plan → last scan (ms)',
        'Index 0 CPU user + sys (s)',
        'Findings delivered (entries / CRITICAL)',
      ],
      runs.map((r) => {
        const m = r.measurement;
        const scanPhase = scanPhaseMs(m);
        return [
          runName(r),
          fmt.ms(m.wallMs),
          single ? (m.wallMs / single.wallMs).toFixed(3) : '–',
          m.shards ? m.shards.scannedByShard.join(' + ') : fmt.int(m.images.scanned),
          fmt.ms(scanPhase),
          fmt.s(scannerCpuS(m), 2),
          `${fmt.int(m.ephor.vulnerabilities)} / ${fmt.int(m.ephor.critical)}`,
        ];
      }),
    ),
  ];
}

/** From the plan to the last scan's end: the scan phase of a run, when its log had both. */
function scanPhaseMs(m: Measurement): number | undefined {
  const { planned, lastScanned } = m.timeline;
  return planned !== undefined && lastScanned !== undefined ? lastScanned - planned : undefined;
}
