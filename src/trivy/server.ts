// Server mode: every scan is a client of a Trivy server (`trivy image --server URL`), which holds the layer cache
// and the vulnerability DB (aquasecurity/trivy v0.69.3 pkg/commands/artifact/scanner.go createRemoteService: the
// client pulls the image, asks the server's cache which layers it misses, analyses only those and sends them, then
// the server detects vulnerabilities). Either the scanner's own server, started after the DB preparation on a free
// loopback port as `trivy server --listen 127.0.0.1:PORT --cache-dir TRIVY_CACHE_DIR --skip-db-update` (a child of
// the launcher in its own process group, like every Trivy process: killed with the run, on shutdown, and by the
// launcher when the scanner dies), or an external one (TRIVY_SERVER_URL). The own server's token is fresh for each
// run and reaches server and clients only as TRIVY_TOKEN in their environment.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';
import { MAX_DURATION_MS } from '../config/parse.js';
import { runTrivy, type RunOutcome } from './process.js';
import { probeHealthz } from './server-api.js';

/** Trivy's default token header (pkg/flag/remote_flags.go DefaultTokenHeader). */
export const DEFAULT_TOKEN_HEADER = 'Trivy-Token';

/** Where a client scan sends its analysis, and what it needs to be let in. */
export interface ClientTarget {
  url: string;
  /** Set in the client's environment: TRIVY_TOKEN (never in its argv). */
  env: Record<string, string>;
  /** `--token-header`, when the server reads another header than Trivy's default. */
  tokenHeader?: string;
  /** Which server process this was: a scan that failed against an earlier one is scanned again. */
  generation: number;
}

export interface ScanServer {
  readonly external: boolean;
  /** Where the next scan goes; undefined: the server is gone for good and scans run locally (ephemeral mode). */
  target(): Promise<ClientTarget | undefined>;
  /** After a failed client scan: true when it should be scanned again (its server died and was replaced). */
  retryAfter(failed: ClientTarget, stderr: string): Promise<boolean>;
  stop(): Promise<void>;
}

/** What a client fails with when its server is the cause: a Twirp error, or the transport error Twirp wraps. */
const SERVER_FAILURE = /twirp error|failed to do request/;
/** A client that could not reach its server (Twirp wraps the transport error: "failed to do request: Post …"). */
const UNREACHABLE =
  /failed to do request|connection refused|connection reset by peer|EOF|broken pipe|twirp error unavailable/;

/** An external server (TRIVY_SERVER_URL): used as it is; its failures are the scans' failures. */
export class ExternalServer implements ScanServer {
  readonly external = true;
  private readonly client: ClientTarget;

  constructor(url: string, token: string | undefined, tokenHeader: string) {
    this.client = {
      url,
      env: token === undefined ? {} : { TRIVY_TOKEN: token },
      tokenHeader: tokenHeader === DEFAULT_TOKEN_HEADER ? undefined : tokenHeader,
      generation: 1,
    };
  }

  target(): Promise<ClientTarget> {
    return Promise.resolve(this.client);
  }

  retryAfter(): Promise<boolean> {
    return Promise.resolve(false);
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}

export interface OwnServerOptions {
  binary: string;
  /** TRIVY_CACHE_DIR: the prepared DBs are there, and the server keeps its layer cache in its fanal/ folder. */
  cacheDir: string;
  /** The scanner's environment (only part of it reaches Trivy: environment.ts). */
  env: Record<string, string | undefined>;
  startTimeoutMs: number;
  log: Logger;
  /** Told the run's token, so that no log line can print it. */
  registerSecret: (secret: string) => void;
  /** Shutdown: the server is stopped with the scans. */
  signal?: AbortSignal;
}

interface ServerProcess {
  url: string;
  generation: number;
  controller: AbortController;
  exited: Promise<RunOutcome>;
}

type Launched = ServerProcess | { failed: string; stderr: string };

/** How much of the server's stderr a log line carries. */
const STDERR_TAIL = 4000;
const PROBE_TIMEOUT_MS = 2000;
/** A server runs for the whole run; its process group is killed when the run stops it (or ends). */
const SERVER_LIFETIME_MS = MAX_DURATION_MS;

/**
 * Starts the run's own Trivy server and waits until it answers /healthz. Undefined (after one warning) when it does
 * not within TRIVY_SERVER_START_TIMEOUT: the run then scans in ephemeral mode instead of failing.
 */
export async function startOwnServer(options: OwnServerOptions): Promise<OwnServer | undefined> {
  const token = randomBytes(32).toString('base64url');
  options.registerSecret(token);
  const first = await launchServer(options, token, 1);
  if ('failed' in first) {
    options.log.warn(
      { error: first.failed, stderr: first.stderr },
      'the Trivy server could not be started: scanning in ephemeral mode (each scan downloads every layer)',
    );
    return undefined;
  }
  return new OwnServer(options, token, first);
}

export class OwnServer implements ScanServer {
  readonly external = false;
  private current: ServerProcess | undefined;
  private generation: number;
  private restarts = 0;
  private replacing: Promise<void> | undefined;
  private stopping = false;

  constructor(
    private readonly options: OwnServerOptions,
    private readonly token: string,
    first: ServerProcess,
  ) {
    this.current = first;
    this.generation = first.generation;
    this.watch(first);
    options.signal?.addEventListener('abort', () => void this.stop(), { once: true });
  }

  async target(): Promise<ClientTarget | undefined> {
    await this.replacing;
    const server = this.current;
    return server && { url: server.url, env: { TRIVY_TOKEN: this.token }, generation: server.generation };
  }

  async retryAfter(failed: ClientTarget, stderr: string): Promise<boolean> {
    // Registry failures and the like are the image's: the client pulls the image itself.
    if (!SERVER_FAILURE.test(stderr)) return false;
    await this.replacing;
    if (this.stopping) return false;
    if (this.generation !== failed.generation) return true;
    const server = this.current;
    if (!server || !UNREACHABLE.test(stderr)) return false;
    // The client could not reach it: is it still there? (Its exit may not have been noticed yet, or it hangs.)
    if ((await probeHealthz(server.url, PROBE_TIMEOUT_MS)).ok) return false;
    await this.replace(server, 'it stopped answering /healthz');
    return true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.replacing;
    const server = this.current;
    this.current = undefined;
    if (!server) return;
    server.controller.abort();
    await server.exited;
  }

  /** A server that exits while the run still needs it is replaced. */
  private watch(server: ServerProcess): void {
    void server.exited.then(() => {
      if (this.stopping || this.current !== server) return;
      void this.replace(server, 'it exited');
    });
  }

  /**
   * Once per run the dead (or hung) server is replaced by a new one on a fresh port, and the scans that failed
   * against it are scanned again; the second time, or when the new one does not start, the rest of the run scans in
   * ephemeral mode. Concurrent callers share one replacement.
   */
  private replace(server: ServerProcess, why: string): Promise<void> {
    if (this.current !== server) return this.replacing ?? Promise.resolve();
    this.current = undefined;
    this.replacing = (async () => {
      server.controller.abort();
      const outcome = await server.exited;
      this.generation++;
      const { log } = this.options;
      if (this.stopping) return;
      log.error(
        {
          reason: why,
          url: server.url,
          exit_code: outcome.exitCode,
          signal: outcome.signal,
          stderr: tail(outcome.stderr),
        },
        'the Trivy server failed during the run',
      );
      if (this.restarts >= 1) {
        log.warn({ reason: why }, 'the Trivy server failed a second time: scanning the rest in ephemeral mode');
        return;
      }
      this.restarts++;
      const next = await launchServer(this.options, this.token, this.generation);
      if ('failed' in next) {
        log.warn(
          { reason: why, error: next.failed, stderr: next.stderr },
          'the Trivy server could not be restarted: scanning the rest in ephemeral mode',
        );
        return;
      }
      this.current = next;
      this.watch(next);
      log.warn({ reason: why, url: next.url }, 'the Trivy server was restarted: its scans in flight are scanned again');
    })().finally(() => {
      this.replacing = undefined;
    });
    return this.replacing;
  }
}

/** `trivy server` on a free loopback port, then /healthz polled until "ok", the process exits, or the time is up. */
async function launchServer(options: OwnServerOptions, token: string, generation: number): Promise<Launched> {
  let port: number;
  try {
    port = await freePort();
  } catch (error) {
    return { failed: `no free loopback port: ${String(error)}`, stderr: '' };
  }
  const url = `http://127.0.0.1:${port}`;
  const controller = new AbortController();
  const started = Date.now();
  const exited = runTrivy({
    binary: options.binary,
    args: serverArgs(port, options.cacheDir),
    env: options.env,
    extraEnv: { TRIVY_TOKEN: token },
    timeoutMs: SERVER_LIFETIME_MS,
    signal: controller.signal,
  });
  const health = await waitHealthy(url, options.startTimeoutMs, exited);
  if (health.ok) {
    options.log.info({ url, generation, duration_ms: Date.now() - started }, 'Trivy server ready');
    return { url, generation, controller, exited };
  }
  controller.abort();
  const outcome = await exited;
  const failed = health.exited
    ? `trivy server exited before answering /healthz (${exitText(outcome)})`
    : `trivy server did not answer GET /healthz with "ok" within ${options.startTimeoutMs / 1000} s (${health.detail})`;
  return { failed, stderr: tail(outcome.stderr) };
}

/**
 * `trivy server` flags of v0.69.3 (pkg/commands/app.go NewServerCommand: global, cache, DB without the Java DB
 * flags, module, server and registry flag groups). The DB was prepared by the run: `--skip-db-update` also stops the
 * server's hourly DB update (pkg/rpc/server/listen.go dbWorker.update passes it to NeedsUpdate).
 */
export function serverArgs(port: number, cacheDir: string): string[] {
  return ['server', '--listen', `127.0.0.1:${port}`, '--cache-dir', cacheDir, '--skip-db-update', '--no-progress'];
}

type Health = { ok: true } | { ok: false; exited: boolean; detail: string };

async function waitHealthy(url: string, timeoutMs: number, exited: Promise<RunOutcome>): Promise<Health> {
  const process = { gone: false };
  void exited.then(() => {
    process.gone = true;
  });
  const deadline = Date.now() + timeoutMs;
  let detail = 'no answer yet';
  for (let pause = 50; ; pause = Math.min(pause * 2, 500)) {
    if (process.gone) return { ok: false, exited: true, detail };
    const left = deadline - Date.now();
    if (left <= 0) return { ok: false, exited: false, detail };
    const probe = await probeHealthz(url, Math.min(PROBE_TIMEOUT_MS, left));
    if (probe.ok) return { ok: true };
    detail = probe.detail;
    await Promise.race([sleep(Math.min(pause, Math.max(deadline - Date.now(), 0))), exited]);
  }
}

/** A port the kernel just gave out on 127.0.0.1 (closed again at once for the server to take). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port assigned'));
      });
    });
  });
}

function exitText(outcome: RunOutcome): string {
  if (outcome.spawnError) return `could not be started: ${outcome.spawnError}`;
  if (outcome.signal) return `killed by ${outcome.signal}`;
  return `exit code ${outcome.exitCode}`;
}

function tail(stderr: string): string {
  const text = stderr.trim();
  return text.length > STDERR_TAIL ? `…${text.slice(-STDERR_TAIL)}` : text;
}
