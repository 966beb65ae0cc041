// Trivy's exit status and stderr → why a scan failed. Trivy exits 1 for every fatal error, so the reason comes from
// the error chain it prints (texts in ../shared/fixtures/trivy/errors.md); the order of the checks matters because
// one chain can mention several things ("unable to find the specified image … UNAUTHORIZED").
import type { ScanFailureReason } from '../types.js';
import { errnoOf, messageOf } from '../errors.js';

export interface ProcessOutcome {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The scanner killed the process because its timeout passed. */
  timedOut: boolean;
  stderr: string;
}

export interface Classified {
  reason: ScanFailureReason;
  detail: string;
}

// eslint-disable-next-line no-control-regex -- the escape character starts the colour codes removed here
const ANSI = /\x1b\[[0-9;]*m/g;
const MAX_DETAIL = 500;

const RULES: Array<[ScanFailureReason, RegExp]> = [
  ['no_space', /no space left on device/i],
  ['rate_limited', /TOOMANYREQUESTS|too many requests|rate limit|\b429\b/i],
  [
    'unauthorized',
    /UNAUTHORIZED|DENIED|authentication required|unauthorized to access|\b401 Unauthorized|\b403 Forbidden/,
  ],
  // A multi-platform index without a child for the --platform asked for (or for Trivy's linux/amd64 default when
  // nodes could not be listed): go-containerregistry's remote.Index.imageByPlatform, "no child with platform %+v in
  // index %s" (pkg/v1/remote/index.go; test/support/fake-trivy.mjs prints it as Trivy 0.69.3 does).
  ['platform_not_found', /no child with platform/],
  ['not_found', /MANIFEST_UNKNOWN|NAME_UNKNOWN|manifest unknown|repository name not known|not found: manifest/i],
  ['timeout', /context deadline exceeded|Provide a higher timeout value|Increase --timeout/],
  [
    'db_error',
    /DB error|cannot be specified on the first run|database error|Failed to acquire cache or database lock|java DB/i,
  ],
];

/**
 * A client scan's failures of its Trivy server (server mode). The client pulls and analyses the image itself, so
 * registry failures carry the same texts as a local scan's and go through RULES; what the server answers comes back
 * as a Twirp error (github.com/twitchtv/twirp: "twirp error <code>: <msg>"), wrapped by the client's chain (v0.69.3
 * pkg/cache/remote.go "unable to fetch missing layers" / "unable to store cache on the server", pkg/rpc/client
 * "failed to detect vulnerabilities via RPC"). Texts from Trivy's own tests: integration/client_server_test.go
 * ("twirp error unauthenticated: invalid token"), pkg/cache/remote_test.go and pkg/rpc/client/client_test.go
 * ("failed to do request", the generated client's wrapper of a transport error, rpc/cache/service.twirp.go),
 * docs/guide/references/troubleshooting.md ("twirp error internal: failed scan, …: layer cache missing"). Codes an
 * intermediary's HTTP status maps to: twirpErrorFromIntermediary (401 unauthenticated, 429 resource_exhausted,
 * 502-504 unavailable).
 */
const SERVER_RULES: Array<[ScanFailureReason, RegExp, string]> = [
  [
    'other',
    /twirp error (unauthenticated|permission_denied)/,
    'the Trivy server refused the token (TRIVY_SERVER_TOKEN, TRIVY_SERVER_TOKEN_HEADER)',
  ],
  ['rate_limited', /twirp error resource_exhausted/, 'the Trivy server (or a proxy before it) throttled the scan'],
  ['timeout', /twirp error (deadline_exceeded|canceled)/, 'the Trivy server did not answer in time'],
  ['other', /twirp error unavailable|failed to do request/, 'the Trivy server could not be reached'],
  ['other', /layer cache missing/, 'the Trivy server lost layers the scan had sent it (was it restarted?)'],
];

export function classifyFailure(outcome: ProcessOutcome): Classified {
  const stderr = outcome.stderr.replace(ANSI, '');
  const detail = bestDetail(stderr);
  if (outcome.timedOut) return { reason: 'timeout', detail: detail || 'killed by the scanner at TRIVY_TIMEOUT' };
  if (outcome.signal)
    return {
      reason: 'killed',
      detail: `terminated by ${outcome.signal} (out of memory?)${detail ? `: ${detail}` : ''}`,
    };
  if (outcome.exitCode === 137)
    return { reason: 'killed', detail: `exit code 137 (SIGKILL, out of memory?)${detail ? `: ${detail}` : ''}` };
  if (/twirp error/.test(stderr)) {
    const server = SERVER_RULES.find(([, pattern]) => pattern.test(stderr));
    if (server) return { reason: server[0], detail: `${server[2]}: ${detail}` };
  }
  for (const [reason, pattern] of RULES) {
    if (pattern.test(stderr)) return { reason, detail };
  }
  return { reason: 'other', detail: detail || `exit code ${outcome.exitCode}` };
}

/**
 * The most useful line: the per-source `* remote error: …` line when present (it carries the registry's answer),
 * else the message of the FATAL line, else the last non-empty line.
 */
export function bestDetail(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const remote = lines.find((line) => line.startsWith('* remote error:'));
  const fatal = lines.find((line) => /\tFATAL\t|\sFATAL\s/.test(line));
  let detail = remote?.slice(2) ?? (fatal ? fatalMessage(fatal) : (lines.at(-1) ?? ''));
  if (detail.length > MAX_DETAIL) detail = `${detail.slice(0, MAX_DETAIL - 1)}…`;
  return detail;
}

/**
 * `<time>\tFATAL\tFatal error\t<chain>` → the innermost part of the chain (after the last ": " that ends a prefix).
 */
function fatalMessage(line: string): string {
  const fields = line.split('\t');
  const chain = fields.length >= 4 ? fields.slice(3).join(' ') : line.replace(/^.*?FATAL\s+/, '');
  let message = chain.trim();
  for (let previous = ''; previous !== message;) {
    previous = message;
    message = message.replace(/^(run error|init error|image scan error|scan error): /, '');
  }
  return message;
}

/** An error of the scanner's own file work (findings, reports, credentials) with what to do about it. */
export function describeWriteError(error: unknown, workDir: string): string {
  const code = errnoOf(error);
  const message = messageOf(error);
  if (code === 'ENOSPC')
    return `no space left on device in ${workDir} (TMPDIR): give the pod a larger /tmp (chart value tmp.sizeLimit)`;
  if (code === 'EACCES' || code === 'EROFS') return `cannot write in ${workDir} (TMPDIR): ${message}`;
  return message;
}

/** A failure of the scanner's own file work around a scan (its directories, the findings file), as a scan failure. */
export function writeFailure(
  error: unknown,
  workDir: string,
): { ok: false; reason: 'no_space' | 'other'; detail: string } {
  const reason = errnoOf(error) === 'ENOSPC' ? 'no_space' : 'other';
  return { ok: false, reason, detail: describeWriteError(error, workDir) };
}
