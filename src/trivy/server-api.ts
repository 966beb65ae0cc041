// What the scanner asks a Trivy server directly, over HTTP (aquasecurity/trivy v0.69.3 pkg/rpc/server/listen.go
// NewServeMux): `GET /healthz` answers "ok" without a token; `GET /version` (since v0.45.0, PR #4869) answers the
// server's version and its DB metadata as JSON (pkg/version NewVersionInfo), also without a token; every Twirp call
// under /twirp/ checks the token header first (withToken: a wrong one is HTTP 401 with the Twirp JSON error
// {"code":"unauthenticated","msg":"invalid token"}). The token is checked with MissingBlobs for an empty artifact,
// a read of the server's cache that changes nothing. Used by the run (server.ts) and by `check`.
import { HttpFailure, send } from '../http.js';

export interface ServerVersion {
  version?: string;
  vulnerabilityDb?: { updatedAt?: string; downloadedAt?: string; nextUpdate?: string };
}

export type Probe<T> = { ok: true; value: T } | { ok: false; detail: string };

const MAX_ANSWER = 64 * 1024;

/** `GET /healthz` → "ok". */
export async function probeHealthz(baseUrl: string, timeoutMs: number, signal?: AbortSignal): Promise<Probe<true>> {
  try {
    const answer = await send({
      method: 'GET',
      url: `${baseUrl}/healthz`,
      timeoutMs,
      cutoff: signal,
      maxAnswerBytes: MAX_ANSWER,
    });
    if (answer.status === 200 && answer.text.trim() === 'ok') return { ok: true, value: true };
    return { ok: false, detail: `GET ${baseUrl}/healthz answered ${answer.status} ${snippet(answer.text)}` };
  } catch (error) {
    return { ok: false, detail: `GET ${baseUrl}/healthz failed: ${describe(error)}` };
  }
}

/** `GET /version`: the server's Trivy version and vulnerability DB; a 404 means a server older than 0.45. */
export async function probeVersion(baseUrl: string, timeoutMs: number): Promise<Probe<ServerVersion>> {
  try {
    const answer = await send({ method: 'GET', url: `${baseUrl}/version`, timeoutMs, maxAnswerBytes: MAX_ANSWER });
    if (answer.status === 404)
      return { ok: false, detail: `GET ${baseUrl}/version answered 404: the server is older than Trivy 0.45` };
    if (answer.status !== 200)
      return { ok: false, detail: `GET ${baseUrl}/version answered ${answer.status} ${snippet(answer.text)}` };
    return { ok: true, value: parseServerVersion(answer.text) };
  } catch (error) {
    return { ok: false, detail: `GET ${baseUrl}/version failed: ${describe(error)}` };
  }
}

/** The JSON of `/version` (VersionInfo: Version, VulnerabilityDB {UpdatedAt, DownloadedAt, NextUpdate, …}). */
export function parseServerVersion(text: string): ServerVersion {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return {};
  }
  if (!data || typeof data !== 'object') return {};
  const record = data as Record<string, unknown>;
  const db = record.VulnerabilityDB && typeof record.VulnerabilityDB === 'object' ? record.VulnerabilityDB : undefined;
  const field = (source: unknown, key: string) => {
    const value = (source as Record<string, unknown> | undefined)?.[key];
    return typeof value === 'string' ? value : undefined;
  };
  return {
    version: field(record, 'Version'),
    vulnerabilityDb: db && {
      updatedAt: field(db, 'UpdatedAt'),
      downloadedAt: field(db, 'DownloadedAt'),
      nextUpdate: field(db, 'NextUpdate'),
    },
  };
}

export type TokenCheck = 'accepted' | 'refused' | { unknown: string };

/** Whether the server takes the token: MissingBlobs for an empty artifact, in Twirp's JSON encoding. */
export async function checkServerToken(
  baseUrl: string,
  token: string | undefined,
  tokenHeader: string,
  timeoutMs: number,
): Promise<TokenCheck> {
  const body = Buffer.from('{"artifact_id":"","blob_ids":[]}');
  try {
    const answer = await send({
      method: 'POST',
      url: `${baseUrl}/twirp/trivy.cache.v1.Cache/MissingBlobs`,
      headers: { 'Content-Type': 'application/json', ...(token === undefined ? {} : { [tokenHeader]: token }) },
      body: { bytes: body.length, open: () => body },
      timeoutMs,
      maxAnswerBytes: MAX_ANSWER,
    });
    if (answer.status === 200) return 'accepted';
    if (answer.status === 401) return 'refused';
    return { unknown: `answered ${answer.status} ${snippet(answer.text)}` };
  } catch (error) {
    return { unknown: describe(error) };
  }
}

function describe(error: unknown): string {
  if (error instanceof HttpFailure) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

function snippet(text: string): string {
  const line = text.trim().replace(/\s+/g, ' ');
  return line.length > 160 ? `(${line.slice(0, 159)}…)` : line ? `(${line})` : '';
}
