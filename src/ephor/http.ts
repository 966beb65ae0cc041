// One HTTP POST whose body is streamed (a namespace body is assembled from files, never built in memory) with an
// exact Content-Length, a timeout for the whole exchange, and a bounded read of the answer.
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';

export interface RequestBody {
  bytes: number;
  /** A fresh stream of the body (each attempt needs its own), or the bytes themselves. */
  open(): Readable | Buffer;
}

export interface HttpAnswer {
  status: number;
  contentType: string | null;
  retryAfter: string | null;
  text: string;
}

export class HttpFailure extends Error {
  constructor(
    message: string,
    readonly kind: 'timeout' | 'network' | 'cutoff',
  ) {
    super(message);
  }
}

const MAX_ANSWER_BYTES = 1024 * 1024;

export function post(url: string, headers: Record<string, string>, body: RequestBody, timeoutMs: number, cutoff?: AbortSignal): Promise<HttpAnswer> {
  const target = new URL(url);
  const transport = target.protocol === 'https:' ? https : http;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = cutoff ? AbortSignal.any([timeout, cutoff]) : timeout;
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      if (cutoff?.aborted) reject(new HttpFailure('cut off', 'cutoff'));
      else if (timeout.aborted) reject(new HttpFailure('timeout', 'timeout'));
      else {
        const code = (error as NodeJS.ErrnoException).code;
        reject(new HttpFailure(code ? `${code}${error.message && !error.message.includes(code) ? ` (${error.message})` : ''}` : error.message, 'network'));
      }
    };
    const request = transport.request(target, { method: 'POST', headers: { ...headers, 'Content-Length': String(body.bytes) }, signal }, (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        if (size < MAX_ANSWER_BYTES) chunks.push(chunk);
        size += chunk.length;
      });
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          contentType: header(response.headers['content-type']),
          retryAfter: header(response.headers['retry-after']),
          text: Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8'),
        }),
      );
      response.on('error', fail);
    });
    request.on('error', fail);
    const source = body.open();
    if (Buffer.isBuffer(source)) {
      request.end(source);
    } else {
      source.on('error', (error) => request.destroy(error));
      source.pipe(request);
    }
  });
}

function header(value: string | string[] | undefined): string | null {
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}
