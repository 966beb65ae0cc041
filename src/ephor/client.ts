// POSTs to the Ephor API with the contract's retry rules: retry network errors, 408, 429, 502, 503 and 504 with
// exponential backoff, jitter and Retry-After; never retry 400 or 500 (they are deterministic: the same body fails
// again). Success is a 2xx whose body is the expected JSON (a numeric scan_id for scans); a proxy's HTML page is a
// failure.
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { Logger } from '../log.js';
import { USER_AGENT } from '../version.js';
import { bodyChunks, type BodyPart } from './body.js';
import { HttpFailure, send, type RequestBody } from '../http.js';
import {
  SBOM_INGEST_STATUSES,
  type Problem,
  type ScanIngestResponse,
  type SbomIngestRequest,
  type SbomIngestResponse,
} from './contract.js';

export type { Problem } from './contract.js';

export const INGEST_PATH = '/api/v1/scans/ingest';
export const SBOM_PATH = '/api/v1/sbom/ingest';

export interface DeliveryOptions {
  apiUrl: string;
  auth?: { header: string; value: string };
  timeoutMs: number;
  maxRetries: number;
  log: Logger;
  /** Aborted when delivery must stop (shutdown grace period over): the running attempt ends, no retry follows. */
  cutoff?: AbortSignal;
  /**
   * Awaited before EVERY attempt, retries included (the run lock's fence: a retry after a long backoff must not be
   * sent once another run may be posting). A rejection ends the delivery with that error: no attempt is sent, no
   * retry follows, and the caller gets the rejection instead of a DeliveryResult.
   */
  beforeAttempt?: () => Promise<void>;
  /** Base of the backoff; tests shorten it. */
  backoffBaseMs?: number;
  random?: () => number;
}

export type DeliveryResult<R = ScanIngestResponse> =
  | { ok: true; response: R; attempts: number; bytes: number }
  | { ok: false; error: string; status?: number; problem?: Problem; attempts: number; bytes: number };

/** One attempt's outcome, as the retry policy sees it. */
export type AttemptOutcome<R = ScanIngestResponse> =
  | { kind: 'accepted'; response: R }
  | { kind: 'http'; status: number; retryAfter?: string; problem?: Problem; text: string }
  | { kind: 'invalid'; status: number; text: string }
  | { kind: 'network'; error: string }
  | { kind: 'timeout' };

const RETRY_STATUSES = new Set([408, 429, 502, 503, 504]);
const MAX_BACKOFF_MS = 60_000;
const MAX_RETRY_AFTER_MS = 300_000;

export function isRetryable(outcome: AttemptOutcome<unknown>): boolean {
  if (outcome.kind === 'network' || outcome.kind === 'timeout') return true;
  return outcome.kind === 'http' && RETRY_STATUSES.has(outcome.status);
}

/** Delay before retry number `retry` (1-based): Retry-After when the server gave one, else exponential with jitter. */
export function retryDelayMs(
  retry: number,
  outcome: AttemptOutcome<unknown>,
  options: { baseMs: number; timeoutMs: number; random: () => number; now?: number },
): number {
  if (outcome.kind === 'http' && outcome.retryAfter) {
    const seconds = Number(outcome.retryAfter);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(outcome.retryAfter) - (options.now ?? Date.now());
    if (Number.isFinite(ms)) return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
  }
  const exponential = Math.min(options.baseMs * 2 ** (retry - 1), MAX_BACKOFF_MS);
  const jittered = exponential * (0.5 + options.random() / 2);
  // Ephor keeps processing a request whose client gave up; give a slow server time to finish before sending the
  // same namespace again, since two ingests at once can collide on its unique keys.
  return outcome.kind === 'timeout' ? Math.max(jittered, Math.min(options.timeoutMs, 30_000)) : jittered;
}

/** One part of a namespace body, streamed from its findings files. */
export function deliverScan(namespace: string, part: BodyPart, options: DeliveryOptions): Promise<DeliveryResult> {
  const body: RequestBody = { bytes: part.bytes, open: () => bodyChunks(part) };
  const fields: Record<string, string | number> = { namespace };
  if (part.label.count > 1) fields.part = `${part.label.index}/${part.label.count}`;
  return postWithRetries(
    INGEST_PATH,
    body,
    {},
    { parse: parseIngestResponse, expected: 'a scan_id in a JSON body' },
    options,
    fields,
  );
}

/** A payload part written to disk earlier (the spool), sent as it is. */
export function deliverFile(
  namespace: string,
  file: string,
  bytes: number,
  options: DeliveryOptions,
): Promise<DeliveryResult> {
  const body: RequestBody = { bytes, open: () => createReadStream(file) };
  return postWithRetries(
    INGEST_PATH,
    body,
    {},
    { parse: parseIngestResponse, expected: 'a scan_id in a JSON body' },
    options,
    { namespace, spooled: file },
  );
}

/** SBOM ingest takes a gzip body (contract §4; the scan ingest does not). */
export function deliverSbom(
  request: SbomIngestRequest,
  options: DeliveryOptions,
): Promise<DeliveryResult<SbomIngestResponse>> {
  const answer = { parse: parseSbomResponse, expected: 'an SBOM id and status in a JSON body' };
  const gzipped = gzipSync(JSON.stringify(request));
  return postWithRetries(
    SBOM_PATH,
    { bytes: gzipped.length, open: () => gzipped },
    { 'Content-Encoding': 'gzip' },
    answer,
    options,
    { sbom_for: request.image_reference },
  );
}

type ParseResponse<R> = (text: string, contentType: string | null) => R | undefined;
/** How to read a success, and what it must contain (for the error message when it does not). */
interface ExpectedAnswer<R> {
  parse: ParseResponse<R>;
  expected: string;
}

type FailedOutcome = Exclude<AttemptOutcome<unknown>, { kind: 'accepted' }>;

async function postWithRetries<R>(
  apiPath: string,
  body: RequestBody,
  headers: Record<string, string>,
  answer: ExpectedAnswer<R>,
  options: DeliveryOptions,
  logFields: Record<string, string | number>,
): Promise<DeliveryResult<R>> {
  const { bytes } = body;
  const url = options.apiUrl + apiPath;
  const log = options.log.child(logFields);

  for (let attempt = 1; ; attempt++) {
    const requestId = randomUUID();
    const outcome: AttemptOutcome<R> = await attemptUnlessStopped(options, () =>
      postOnce(url, body, headers, answer.parse, requestId, options),
    );
    if (outcome.kind === 'accepted') return { ok: true, response: outcome.response, attempts: attempt, bytes };

    const failure = failureText(outcome, options, answer.expected);
    const problem = outcome.kind === 'http' ? outcome.problem : undefined;
    const status = 'status' in outcome ? outcome.status : undefined;
    const delay = retryDelay(attempt, outcome, options);
    if (delay === undefined) return { ok: false, error: failure, status, problem, attempts: attempt, bytes };
    log.warn(
      {
        attempt,
        request_id: requestId,
        status,
        error: failure,
        problem_type: problem?.type,
        trace_id: problem?.trace_id,
        field_errors: problem?.errors?.slice(0, 20),
        bytes,
        retry_in_ms: Math.round(delay),
      },
      'delivery attempt failed, retrying',
    );
    await sleep(delay, options.cutoff);
  }
}

/** One attempt, after the `beforeAttempt` hook (whose rejection propagates), unless the cutoff stopped delivering. */
async function attemptUnlessStopped<R>(
  options: DeliveryOptions,
  post: () => Promise<AttemptOutcome<R>>,
): Promise<AttemptOutcome<R>> {
  const notSent: AttemptOutcome<R> = { kind: 'network', error: 'not sent' };
  if (options.cutoff?.aborted) return notSent;
  await options.beforeAttempt?.();
  // the hook may take a while (a Lease renewal): the cutoff may have come meanwhile
  return options.cutoff?.aborted ? notSent : post();
}

/** What went wrong; an attempt that the shutdown cutoff ended says so rather than "timeout" or "network error". */
function failureText(outcome: FailedOutcome, options: DeliveryOptions, expected: string): string {
  const cutShort = options.cutoff?.aborted === true && (outcome.kind === 'timeout' || outcome.kind === 'network');
  return cutShort
    ? 'not delivered: the shutdown grace period ended before Ephor answered'
    : describe(outcome, options.timeoutMs, expected);
}

/** The wait before the next attempt, or undefined when none follows (not retryable, retries used up, cut off). */
function retryDelay(attempt: number, outcome: FailedOutcome, options: DeliveryOptions): number | undefined {
  if (attempt > options.maxRetries || !isRetryable(outcome) || options.cutoff?.aborted === true) return undefined;
  return retryDelayMs(attempt, outcome, {
    baseMs: options.backoffBaseMs ?? 1000,
    timeoutMs: options.timeoutMs,
    random: options.random ?? Math.random,
  });
}

async function postOnce<R>(
  url: string,
  body: RequestBody,
  extraHeaders: Record<string, string>,
  parse: ParseResponse<R>,
  requestId: string,
  options: DeliveryOptions,
): Promise<AttemptOutcome<R>> {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'User-Agent': USER_AGENT,
    'X-Request-Id': requestId,
    Accept: 'application/json',
    ...extraHeaders,
  };
  if (options.auth) headers[options.auth.header] = options.auth.value;
  let answer;
  try {
    answer = await send({ method: 'POST', url, headers, body, timeoutMs: options.timeoutMs, cutoff: options.cutoff });
  } catch (error) {
    if (!(error instanceof HttpFailure)) throw error;
    return error.kind === 'network' ? { kind: 'network', error: error.message } : { kind: 'timeout' };
  }
  if (answer.status >= 200 && answer.status < 300) {
    const accepted = parse(answer.text, answer.contentType);
    return accepted
      ? { kind: 'accepted', response: accepted }
      : { kind: 'invalid', status: answer.status, text: answer.text };
  }
  return {
    kind: 'http',
    status: answer.status,
    retryAfter: answer.retryAfter ?? undefined,
    problem: parseProblem(answer.text),
    text: answer.text,
  };
}

/** A 2xx counts only with a JSON body carrying a numeric scan_id: a proxy or login page can also answer 200. */
export function parseIngestResponse(text: string, contentType: string | null): ScanIngestResponse | undefined {
  if (contentType && !/json/i.test(contentType)) return undefined;
  try {
    const data = JSON.parse(text) as Record<string, unknown> | null;
    if (typeof data?.scan_id !== 'number' || !Number.isFinite(data.scan_id)) return undefined;
    const count = (key: string) => (typeof data[key] === 'number' ? data[key] : 0);
    return {
      scan_id: data.scan_id,
      vulnerabilities: count('vulnerabilities'),
      workloads: count('workloads'),
      critical_vulns: count('critical_vulns'),
      auto_resolved: count('auto_resolved'),
      reopened: count('reopened'),
    };
  } catch {
    return undefined;
  }
}

/** 201 `created` or 200 `updated` (the same SBOM was already stored), with the document's id. */
export function parseSbomResponse(text: string, contentType: string | null): SbomIngestResponse | undefined {
  if (contentType && !/json/i.test(contentType)) return undefined;
  try {
    const data = JSON.parse(text) as Record<string, unknown> | null;
    const status = SBOM_INGEST_STATUSES.find((known) => known === data?.status);
    if (typeof data?.id !== 'string' || status === undefined) return undefined;
    return {
      id: data.id,
      status,
      image_reference: typeof data.image_reference === 'string' ? data.image_reference : undefined,
      content_hash: typeof data.content_hash === 'string' ? data.content_hash : undefined,
    };
  } catch {
    return undefined;
  }
}

function parseProblem(text: string): Problem | undefined {
  try {
    const data = JSON.parse(text) as unknown;
    return typeof data === 'object' && data !== null ? data : undefined;
  } catch {
    return undefined;
  }
}

function describe(outcome: FailedOutcome, timeoutMs: number, expected: string): string {
  switch (outcome.kind) {
    case 'timeout':
      return `no answer within ${timeoutMs} ms (EPHOR_TIMEOUT)`;
    case 'network':
      return `network error: ${outcome.error}`;
    case 'invalid':
      return `HTTP ${outcome.status} without ${expected} (a proxy or login page answered?): ${snippet(outcome.text)}`;
    case 'http': {
      const hint = HINTS[outcome.status];
      const problem = outcome.problem?.title
        ? `${outcome.problem.title}${outcome.problem.detail ? `: ${outcome.problem.detail}` : ''}`
        : snippet(outcome.text);
      return `HTTP ${outcome.status}${problem ? ` ${problem}` : ''}${hint ? ` (${hint})` : ''}`;
    }
  }
}

const HINTS: Record<number, string> = {
  301: 'redirected: check EPHOR_API_URL',
  302:
    'redirected, probably to a login page: ' +
    'check EPHOR_AUTH_HEADER/EPHOR_AUTH_VALUE or call the API service directly',
  307: 'redirected: check EPHOR_API_URL',
  308: 'redirected: check EPHOR_API_URL',
  401: 'rejected by a proxy in front of Ephor: check EPHOR_AUTH_HEADER and EPHOR_AUTH_VALUE',
  403: 'rejected by a proxy in front of Ephor: check EPHOR_AUTH_HEADER and EPHOR_AUTH_VALUE',
  404: 'check EPHOR_API_URL: it must be the API base URL, without /api/v1',
  413: 'a proxy in front of Ephor refused the body size; call the API service directly or raise the proxy limit',
  415: 'the API refused the content type',
  500:
    'Ephor failed and rolled the namespace back; ' +
    'not retried because the same body fails again; its trace_id is in the logs',
};

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

/** Waits, but wakes up early when the cutoff fires (the next attempt then sees it and stops). */
function sleep(ms: number, cutoff?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    cutoff?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      cutoff?.removeEventListener('abort', done);
      resolve();
    }
  });
}
