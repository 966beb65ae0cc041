// Messages between the scanner and its launcher process (Node IPC, JSON).
import type { SpawnRequest, SpawnResult } from '../child-process.js';

export type ToLauncher = ({ type: 'run'; id: number } & SpawnRequest) | { type: 'usage'; id: number };

export type FromLauncher =
  | { type: 'started'; id: number; pid: number }
  | ({ type: 'done'; id: number } & SpawnResult)
  | { type: 'usage'; id: number; userMs: number; systemMs: number; maxRssKiB: number };
