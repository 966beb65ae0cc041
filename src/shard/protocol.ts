// The wire between the shards of a sharded run (README "Scaling out"): plain HTTP from shards > 0 to index 0,
// every request carrying SHARD_TOKEN as a bearer token. Two requests:
//   POST /v1/heartbeat  JSON ShardHeartbeat → CoordinatorAnswer: "I am alive, this is where I am"; the answer says
//                       whether index 0 holds the run lock (scan), is still waiting (wait) or has ended the run (done).
//   POST /v1/results    one image's result: a JSON envelope line, then the findings file's bytes, then the SBOM's
//                       bytes, streamed with an exact Content-Length → CoordinatorAnswer with `accepted`.
// Every answer names index 0's instance (a random id per process): a shard that sees it change knows index 0
// restarted with an empty disk and hands over again everything it holds.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { ImageFindings } from '../report/findings.js';
import type { ScanResult } from '../types.js';

export const HEARTBEAT_PATH = '/v1/heartbeat';
export const RESULTS_PATH = '/v1/results';
/** The envelope line of a result, at most (its findings and SBOM follow it, counted separately). */
export const MAX_ENVELOPE_BYTES = 1024 * 1024;
/** One result's whole body, at most: the findings of one image and its SBOM (Trivy's largest are tens of MB). */
export const MAX_RESULT_BYTES = 1024 ** 3;
/** A heartbeat body, at most. */
export const MAX_HEARTBEAT_BYTES = 64 * 1024;

/** What index 0 says of the run. */
export type CoordinatorState = 'wait' | 'scan' | 'done';

export interface CoordinatorAnswer {
  /** Index 0's process: a new value means a restarted index 0 that holds none of the results handed over before. */
  instance: string;
  state: CoordinatorState;
  /** Index 0's scan_group_id (the payloads'), logged by the shards beside their own. */
  run?: string;
  /** For a result: kept (or already had). False: refused for good (not in index 0's plan): do not send it again. */
  accepted?: boolean;
  note?: string;
}

export interface ShardHeartbeat {
  shard: number;
  /** The instance of index 0 the shard's counts refer to (absent before its first answer). */
  instance?: string;
  /** Images in the shard's part (absent until it planned). */
  planned?: number;
  /** Results index 0 (this instance) acknowledged. */
  handedOver: number;
  /** Every image of its part scanned and every result acknowledged by this instance. */
  finished: boolean;
  /** Long poll: the state the shard knows; index 0 holds the answer up to `holdMs` while its state is the same. */
  known?: CoordinatorState;
  holdMs?: number;
}

/** The first line of a result: everything but the two files, whose sizes say how many bytes follow. */
export interface ResultEnvelope {
  shard: number;
  key: string;
  result: WireResult;
  /** Bytes of the SBOM after the findings (0: none). */
  sbomBytes: number;
}

export type WireResult =
  | { ok: true; ref: string; durationMs: number; image: Omit<ImageFindings, 'file'> }
  | Extract<ScanResult, { ok: false }>;

/** The wire form of a result: its files' paths are the sender's own business. */
export function wireResult(result: ScanResult): WireResult {
  if (!result.ok) return result;
  const { file: _file, ...image } = result.image;
  return { ok: true, ref: result.ref, durationMs: result.durationMs, image };
}

/** Constant-time comparison (of digests, so that the lengths leak nothing either). */
export function tokenMatches(presented: string | undefined, token: string): boolean {
  if (presented === undefined) return false;
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(presented), digest(token));
}

/** The token from an `Authorization: Bearer …` header. */
export function bearerOf(header: string | undefined): string | undefined {
  const match = /^Bearer (.+)$/.exec(header ?? '');
  return match?.[1];
}

export function authorization(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

/** Parses an untrusted envelope line; throws with what is wrong. */
export function parseEnvelope(line: string): ResultEnvelope {
  const value = JSON.parse(line) as Partial<ResultEnvelope> | null;
  if (!value || typeof value !== 'object') throw new Error('the envelope is not a JSON object');
  const { shard, key, result, sbomBytes } = value;
  if (!Number.isInteger(shard) || typeof key !== 'string' || key === '')
    throw new Error('the envelope needs a shard index and a scan key');
  if (!Number.isInteger(sbomBytes) || (sbomBytes as number) < 0) throw new Error('sbomBytes must be an integer ≥ 0');
  if (!result || typeof result !== 'object' || typeof result.ref !== 'string')
    throw new Error('the envelope needs a result with a ref');
  if (result.ok) {
    const image = result.image as Partial<ImageFindings> | undefined;
    if (!image || !Number.isInteger(image.bytes) || (image.bytes as number) < 2)
      throw new Error('a successful result needs image.bytes');
  } else if (typeof result.reason !== 'string' || typeof result.detail !== 'string') {
    throw new Error('a failed result needs a reason and a detail');
  }
  return value as ResultEnvelope;
}

export function parseHeartbeat(text: string): ShardHeartbeat {
  const value = JSON.parse(text) as Partial<ShardHeartbeat> | null;
  if (!value || typeof value !== 'object' || !Number.isInteger(value.shard))
    throw new Error('a heartbeat needs the shard index');
  return {
    shard: value.shard!,
    instance: typeof value.instance === 'string' ? value.instance : undefined,
    planned: Number.isInteger(value.planned) ? value.planned : undefined,
    handedOver: Number.isInteger(value.handedOver) ? value.handedOver! : 0,
    finished: value.finished === true,
    known: value.known === 'wait' || value.known === 'scan' || value.known === 'done' ? value.known : undefined,
    holdMs: Number.isInteger(value.holdMs) && value.holdMs! > 0 ? value.holdMs : undefined,
  };
}

export function parseAnswer(text: string): CoordinatorAnswer {
  const value = JSON.parse(text) as Partial<CoordinatorAnswer> | null;
  const states: readonly string[] = ['wait', 'scan', 'done'];
  if (!value || typeof value.instance !== 'string' || !states.includes(value.state ?? ''))
    throw new Error('not an answer of index 0');
  const run: unknown = (value as { run?: unknown }).run;
  return { ...(value as CoordinatorAnswer), run: typeof run === 'string' ? run : undefined };
}
