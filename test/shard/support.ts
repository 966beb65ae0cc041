// Helpers of the shard tests: a coordinator (index 0) on a loopback port, results with real files, raw requests.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { systemClock } from '../../src/run/adapters.js';
import { ShardCoordinator } from '../../src/shard/coordinator.js';
import { serveCoordinator, type CoordinatorServer } from '../../src/shard/coordinator-server.js';
import type { ScanResult, ScanTarget } from '../../src/types.js';
import { captureLog, type CapturedLog } from '../support/run-fakes.js';

export const TOKEN = 'unit-shard-token-9f8e7d6c5b4a39281706';

export function target(key: string, namespaces = ['ns']): ScanTarget {
  return { key, ref: key, registry: 'registry.local', repository: key, namespaces, pullSecrets: [] };
}

export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ephor-shard-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A successful result whose findings file holds `findings` (a JSON array text). */
export async function okResult(dir: string, ref: string, findings = '[{"id":1}]'): Promise<ScanResult> {
  const file = path.join(dir, `${ref.replace(/\W/g, '_')}-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, findings);
  return {
    ok: true,
    ref,
    durationMs: 5,
    image: {
      repoDigests: [],
      ecosystems: ['alpine'],
      file,
      bytes: Buffer.byteLength(findings),
      count: 1,
      bySeverity: { CRITICAL: 1, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
      skippedEntries: 0,
    },
  };
}

export interface Index0 {
  coordinator: ShardCoordinator;
  server: CoordinatorServer;
  url: string;
  logs: CapturedLog;
  /** Results the run's ledger got, by key. */
  settled: Map<string, ScanResult>;
  findingsDir: string;
}

/** Index 0 listening on `port` (0: any), collecting into `dir` for `targets`. */
export async function startIndex0(
  t: TestContext,
  options: { dir: string; targets: ScanTarget[]; count?: number; port?: number; timeoutMs?: number },
): Promise<Index0> {
  const logs = captureLog();
  const coordinator = new ShardCoordinator({
    count: options.count ?? 2,
    timeoutMs: options.timeoutMs ?? 5000,
    clock: systemClock,
    log: logs.log,
  });
  const server = await serveCoordinator(coordinator, { host: '127.0.0.1', port: options.port ?? 0 }, TOKEN, logs.log);
  t.after(() => server.close());
  const findingsDir = path.join(options.dir, `index0-${coordinator.instance}`);
  await mkdir(findingsDir);
  const settled = new Map<string, ScanResult>();
  coordinator.startScanning();
  coordinator.collect({
    targets: options.targets,
    findingsDir,
    settle: (target, result) => settled.set(target.key, result),
  });
  return { coordinator, server, url: `http://127.0.0.1:${server.port}`, logs, settled, findingsDir };
}

export interface RawAnswer {
  status: number;
  text: string;
}

/** One request as any client could send it. */
export function rawRequest(
  url: string,
  pathname: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      new URL(pathname, url),
      { method: 'POST', headers: { 'Content-Length': String(Buffer.byteLength(body)), ...headers } },
      (response) => {
        let text = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, text });
        });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

export async function until(condition: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${limitMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
