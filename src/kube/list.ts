// Paged LIST (`limit` + `continue`), as kubectl does, with the item reduced as soon as a page arrives so only the
// fields the scanner needs are kept. An expired continue token (410) restarts the list once; transient errors
// (429, 5xx, network, timeout) are retried a few times with backoff.
import { KubeApiError, type KubeClient } from './client.js';

export const PAGE_SIZE = 500;

interface ListPage {
  metadata?: { continue?: string; resourceVersion?: string };
  items?: unknown[];
}

export interface ListOptions {
  pageSize?: number;
  /** Retries of one page request after a transient error. */
  retries?: number;
  /** Base delay of the exponential backoff (tests shorten it). */
  backoffMs?: number;
  /** Accept header, e.g. to ask for metadata only. */
  accept?: string;
  /** Further query parameters sent with every page, e.g. a labelSelector. */
  query?: Record<string, string>;
}

export async function listAll<R>(
  client: KubeClient,
  apiPath: string,
  reduce: (item: unknown) => R | undefined,
  options: ListOptions = {},
): Promise<R[]> {
  const pageSize = options.pageSize ?? PAGE_SIZE;
  for (let restarted = false; ; restarted = true) {
    const items: R[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await getWithRetries<ListPage>(
          client,
          apiPath,
          { ...options.query, limit: String(pageSize), continue: token },
          options,
        );
        for (const item of page.items ?? []) {
          const reduced = reduce(item);
          if (reduced !== undefined) items.push(reduced);
        }
        token = page.metadata?.continue || undefined;
      } while (token);
      return items;
    } catch (error) {
      // The token outlived etcd's compaction window: a consistent list needs a fresh start (once).
      const expired = error instanceof KubeApiError && error.status === 410 && token !== undefined;
      if (!expired || restarted) throw error;
    }
  }
}

const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);

export function isTransient(error: unknown): boolean {
  if (!(error instanceof KubeApiError)) return false;
  return error.kind !== 'http' || RETRY_STATUS.has(error.status ?? 0);
}

async function getWithRetries<T>(
  client: KubeClient,
  apiPath: string,
  query: Record<string, string | undefined>,
  options: ListOptions,
): Promise<T> {
  const retries = options.retries ?? 2;
  const backoffMs = options.backoffMs ?? 500;
  for (let attempt = 0; ; attempt++) {
    try {
      return await client.getJson<T>(apiPath, query, options.accept);
    } catch (error) {
      if (attempt >= retries || !isTransient(error)) throw error;
      const retryAfter = error instanceof KubeApiError ? error.retryAfterMs : undefined;
      await sleep(Math.min(retryAfter ?? backoffMs * 2 ** attempt, 10_000));
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
