// The settings of a sharded run (README "Scaling out"): their parsers, and the rule that turns them into one
// ShardConfig. SHARD_COUNT=1 (the default) is today's single process and ignores the rest.
import { ValueError, parseApiUrl, parseDurationMs, parseInteger } from '../config/parse.js';
import type { ListenAddress } from './coordinator-server.js';

export const DEFAULT_SHARD_PORT = 8470;
export const MAX_SHARDS = 100;
export const MIN_TOKEN_LENGTH = 32;

export type ShardConfig =
  | { count: 1; index: 0 }
  | { count: number; index: 0; listen: ListenAddress; token: string; timeoutMs: number }
  | { count: number; index: number; coordinatorUrl: string; token: string; timeoutMs: number };

export function parseShardCount(text: string): number {
  return parseInteger(text.trim(), 1, MAX_SHARDS);
}

export function parseShardIndex(text: string): number {
  return parseInteger(text.trim(), 0, MAX_SHARDS - 1);
}

/** `host:port`, `[ipv6]:port`; the port from 1 to 65535. */
export function parseListen(text: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535)
    throw new ValueError('must be host:port (e.g. 0.0.0.0:8470, or [::]:8470), the port from 1 to 65535');
  return { host: match[1] ?? match[2]!, port };
}

export function parseCoordinatorUrl(text: string): string {
  try {
    return parseApiUrl(text);
  } catch (error) {
    if (!(error instanceof ValueError)) throw error;
    throw new ValueError(error.message.replace('e.g. http://ephor-api:8080', 'e.g. http://scan-0.ephor-shards:8470'));
  }
}

/** At least 32 characters, printable ASCII without spaces: it travels in an HTTP header. Never echoed. */
export function parseShardToken(text: string): string {
  const token = text.trim();
  if (!/^[\x21-\x7e]+$/.test(token)) throw new ValueError('must be printable ASCII without spaces (an HTTP header)');
  if (token.length < MIN_TOKEN_LENGTH) throw new ValueError(`must be at least ${MIN_TOKEN_LENGTH} characters long`);
  return token;
}

/** From 1 s (a shard answers every SHARD_TIMEOUT/6) to 1 h. */
export function parseShardTimeout(text: string): number {
  const ms = parseDurationMs(text.trim(), 3_600_000);
  if (ms < 1000) throw new ValueError('must be at least 1s');
  return ms;
}

export interface ShardValues {
  SHARD_COUNT?: number;
  JOB_COMPLETION_INDEX?: number;
  SHARD_LISTEN?: ListenAddress;
  SHARD_COORDINATOR_URL?: string;
  SHARD_TOKEN?: string;
  SHARD_TIMEOUT?: number;
}

/** The run's part in a sharded run, or the problems that keep it from having one (each naming its variable). */
export function shardConfig(values: ShardValues, problems: Array<{ variable: string; message: string }>): ShardConfig {
  const count = values.SHARD_COUNT ?? 1;
  if (count === 1) return { count: 1, index: 0 };
  const need = (variable: string, why: string) => {
    problems.push({ variable, message: `${variable} is required when SHARD_COUNT is ${count}: ${why}` });
  };
  const index = values.JOB_COMPLETION_INDEX;
  const token = values.SHARD_TOKEN;
  const timeoutMs = values.SHARD_TIMEOUT ?? 0;
  if (index === undefined) need('JOB_COMPLETION_INDEX', 'Kubernetes sets it in an Indexed Job (0 to SHARD_COUNT-1)');
  else if (index >= count)
    problems.push({
      variable: 'JOB_COMPLETION_INDEX',
      message: `JOB_COMPLETION_INDEX=${index} must be from 0 to ${count - 1} (SHARD_COUNT is ${count})`,
    });
  if (token === undefined)
    need('SHARD_TOKEN', `the shared secret of the shards, at least ${MIN_TOKEN_LENGTH} characters`);
  if (index === undefined || index >= count || token === undefined) return { count: 1, index: 0 };
  if (index === 0) {
    const listen = values.SHARD_LISTEN ?? { host: '0.0.0.0', port: DEFAULT_SHARD_PORT };
    return { count, index, listen, token, timeoutMs };
  }
  const coordinatorUrl = values.SHARD_COORDINATOR_URL;
  if (coordinatorUrl === undefined) {
    need('SHARD_COORDINATOR_URL', "the shards other than index 0 need index 0's URL, e.g. http://scan-0.shards:8470");
    return { count: 1, index: 0 };
  }
  return { count, index, coordinatorUrl, token, timeoutMs };
}
