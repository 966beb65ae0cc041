// Index 0's HTTP side (SHARD_LISTEN): every request must carry SHARD_TOKEN (compared in constant time); one without
// it, or with another, gets 401 and a log line that names the peer, never what it sent. Bodies are bounded before
// they are read (Content-Length required) and results are streamed to disk (receive.ts).
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import type { ShardCoordinator } from './coordinator.js';
import {
  bearerOf,
  HEARTBEAT_PATH,
  MAX_HEARTBEAT_BYTES,
  MAX_RESULT_BYTES,
  parseHeartbeat,
  RESULTS_PATH,
  tokenMatches,
  type ResultEnvelope,
} from './protocol.js';
import { BadBody, BodyReader, receiveResult } from './receive.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** SHARD_LISTEN cannot be listened on (the port is taken, the address is not the Pod's). */
export class ShardListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShardListenError';
  }
}

export interface CoordinatorServer {
  /** The port it listens on (the one asked for, or the one the system chose for port 0). */
  port: number;
  close(): Promise<void>;
}

/** Listens on `address`; rejects with a message naming SHARD_LISTEN when it cannot. */
export async function serveCoordinator(
  coordinator: ShardCoordinator,
  address: ListenAddress,
  token: string,
  log: Logger,
): Promise<CoordinatorServer> {
  const server = http.createServer((request, response) => {
    handle(request, response, { coordinator, token, log }).catch((error: unknown) => {
      log.warn({ error: messageOf(error) }, 'a request from a shard failed');
      reply(response, 500, { error: 'internal error' });
    });
  });
  // A shard's result may take long to stream, but a silent connection is dropped.
  server.requestTimeout = 10 * 60_000;
  server.headersTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => {
      reject(
        new ShardListenError(`SHARD_LISTEN ${address.host}:${address.port} cannot be listened on: ${messageOf(error)}`),
      );
    });
    server.listen(address.port, address.host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ listen: `${address.host}:${port}` }, 'index 0 listening for the other shards');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

interface Handling {
  coordinator: ShardCoordinator;
  token: string;
  log: Logger;
}

async function handle(request: IncomingMessage, response: ServerResponse, handling: Handling): Promise<void> {
  const { coordinator, token, log } = handling;
  if (!tokenMatches(bearerOf(request.headers.authorization), token)) {
    log.warn(
      {
        peer: request.socket.remoteAddress,
        path: request.url,
        token: request.headers.authorization ? 'wrong' : 'none',
      },
      'a request to the shard port was refused: no or wrong SHARD_TOKEN',
    );
    request.resume();
    reply(response, 401, { error: 'SHARD_TOKEN missing or wrong' });
    return;
  }
  const length = Number(request.headers['content-length']);
  if (request.method !== 'POST') {
    refuse(request, response, 405, 'only POST');
    return;
  }
  if (!Number.isInteger(length) || length < 0) {
    refuse(request, response, 411, 'Content-Length required');
    return;
  }
  if (request.url === HEARTBEAT_PATH) return heartbeat(request, response, coordinator, length);
  if (request.url === RESULTS_PATH) return result(request, response, handling, length);
  refuse(request, response, 404, 'unknown path');
}

async function heartbeat(
  request: IncomingMessage,
  response: ServerResponse,
  coordinator: ShardCoordinator,
  length: number,
): Promise<void> {
  if (length > MAX_HEARTBEAT_BYTES) {
    refuse(request, response, 413, 'heartbeat too large');
    return;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of request as AsyncIterable<Buffer>) chunks.push(chunk);
  let beat;
  try {
    beat = parseHeartbeat(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    reply(response, 400, { error: messageOf(error) });
    return;
  }
  if (!coordinator.heartbeat(beat)) {
    reply(response, 400, { error: 'no such shard index' });
    return;
  }
  reply(response, 200, await coordinator.answerWhenChanged(beat.shard, beat.known, beat.holdMs ?? 0));
}

async function result(
  request: IncomingMessage,
  response: ServerResponse,
  { coordinator, log }: Handling,
  length: number,
): Promise<void> {
  if (length > MAX_RESULT_BYTES) {
    refuse(request, response, 413, `a result is at most ${MAX_RESULT_BYTES} bytes`);
    return;
  }
  let decision: ReturnType<ShardCoordinator['filesFor']> | undefined;
  let taken: ResultEnvelope | undefined;
  try {
    const { envelope, files } = await receiveResult(new BodyReader(request), length, (envelope) => {
      decision = coordinator.filesFor(envelope);
      if (decision.take) taken = envelope;
      return decision.files;
    });
    if (!decision) return;
    if (decision.take) coordinator.settleReceived(envelope, files);
    // Not planned yet: the shard sends it again a little later.
    reply(response, decision.answer.accepted === undefined ? 503 : 200, decision.answer);
  } catch (error) {
    if (taken) coordinator.release(taken);
    const status = error instanceof BadBody ? error.status : 500;
    log.warn({ error: messageOf(error) }, "a shard's result could not be read: it will be sent again");
    reply(response, status, { ...coordinator.answer(), error: messageOf(error) });
  }
}

function refuse(request: IncomingMessage, response: ServerResponse, status: number, error: string): void {
  request.resume();
  reply(response, status, { error });
}

function reply(response: ServerResponse, status: number, body: object): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  response.end(text);
}
