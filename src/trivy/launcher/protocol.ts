// Messages between the scanner and its launcher process (Node IPC, JSON).
import type { SpawnRequest, SpawnResult } from '../child-process.js';

/** `gate`: start only while fewer than that many gated processes run (SCAN_CONCURRENCY); queued in order until then. */
export type ToLauncher =
  | ({ type: 'run'; id: number; gate?: number } & SpawnRequest)
  | { type: 'cancel'; id: number }
  | { type: 'usage'; id: number };

export type FromLauncher =
  | { type: 'started'; id: number; pid: number }
  | ({ type: 'done'; id: number } & SpawnResult)
  | { type: 'usage'; id: number; userMs: number; systemMs: number; maxRssKiB: number };
