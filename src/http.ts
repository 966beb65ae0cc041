// One HTTP exchange with a timeout for the whole of it, an optional body streamed with an exact Content-Length
// (a namespace body is assembled from files, never built in memory), no redirect followed, and a bounded read of
// the answer. Used for the Ephor API (ephor/client.ts) and by the preflight check.
import http from 'node:http';
import https from 'node:https';
export interface RequestBody {
  bytes: number;
  /** The body afresh (each attempt needs its own): its bytes, or chunks written one at a time, each before the next
   * is asked for (a chunk may reuse the previous one's buffer, see ephor/body.ts). */
  open(): AsyncIterable<Buffer> | Buffer;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST';
  url: string | URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  timeoutMs: number;
  /** Aborting ends the exchange at once (shutdown grace period over). */
  cutoff?: AbortSignal;
  /** The answer is read up to this many bytes (default 1 MiB). */
  maxAnswerBytes?: number;
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  contentType: string | null;
  retryAfter: string | null;
  text: string;
}

export class HttpFailure extends Error {
  constructor(
    message: string,
    readonly kind: 'timeout' | 'network' | 'cutoff',
    /** ECONNREFUSED, ENOTFOUND, a TLS code such as UNABLE_TO_VERIFY_LEAF_SIGNATURE, or ETIMEDOUT for our timeout. */
    readonly code: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'HttpFailure';
  }
}

export function send(request: HttpRequest): Promise<HttpAnswer> {
  const target = typeof request.url === 'string' ? new URL(request.url) : request.url;
  const transport = target.protocol === 'https:' ? https : http;
  const timeout = AbortSignal.timeout(request.timeoutMs);
  const signal = request.cutoff ? AbortSignal.any([timeout, request.cutoff]) : timeout;
  const maxBytes = request.maxAnswerBytes ?? 1024 * 1024;
  const headers = { ...request.headers, ...(request.body ? { 'Content-Length': String(request.body.bytes) } : {}) };
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      if (request.cutoff?.aborted) reject(new HttpFailure('cut off', 'cutoff', 'ECUTOFF'));
      else if (timeout.aborted)
        reject(new HttpFailure(`no answer within ${request.timeoutMs / 1000} s`, 'timeout', 'ETIMEDOUT'));
      else {
        const code = (error as NodeJS.ErrnoException).code ?? 'ERROR';
        reject(
          new HttpFailure(
            error.message.includes(code) ? error.message : `${code} (${error.message})`,
            'network',
            code,
            { cause: error },
          ),
        );
      }
    };
    const outgoing = transport.request(
      target,
      { method: request.method, headers, signal, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const finish = () => {
          if (settled) return;
          settled = true;
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            contentType: header(response.headers['content-type']),
            retryAfter: header(response.headers['retry-after']),
            text: Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8'),
          });
        };
        response.on('data', (chunk: Buffer) => {
          if (size < maxBytes) chunks.push(chunk);
          size += chunk.length;
          if (size >= maxBytes) response.destroy(); // enough to tell what answered
        });
        response.on('end', finish);
        response.on('close', finish);
        response.on('error', fail);
      },
    );
    outgoing.on('error', fail);
    const source = request.body?.open();
    if (source === undefined) outgoing.end();
    else if (Buffer.isBuffer(source)) outgoing.end(source);
    else
      writeChunks(outgoing, source).catch((error: unknown) => {
        outgoing.destroy(error instanceof Error ? error : new Error(String(error)));
      });
  });
}

/** Each chunk is handed to the socket before the next is read: the source may reuse its buffer. */
async function writeChunks(outgoing: http.ClientRequest, chunks: AsyncIterable<Buffer>): Promise<void> {
  for await (const chunk of chunks) {
    if (outgoing.destroyed) return;
    await new Promise<void>((resolve, reject) => {
      const onClose = () => {
        reject(new Error('the connection closed while the body was being sent'));
      };
      outgoing.once('close', onClose);
      outgoing.write(chunk, (error) => {
        outgoing.off('close', onClose);
        if (error) reject(error);
        else resolve();
      });
    });
  }
  outgoing.end();
}

function header(value: string | string[] | undefined): string | null {
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}
