// Index 0 reading one handed-over result from its request: the envelope line, then exactly the announced bytes of
// findings and SBOM, each streamed into its own file in the run's directories, never held in memory. Everything is
// bounded: the envelope by MAX_ENVELOPE_BYTES, the whole body by MAX_RESULT_BYTES and its Content-Length.
import { open, rm, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { MAX_ENVELOPE_BYTES, parseEnvelope, type ResultEnvelope } from './protocol.js';

export class BadBody extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'BadBody';
  }
}

/** Pulls bytes from a request: a line, then a given number of bytes into a file (or into nowhere). */
export class BodyReader {
  private readonly chunks: AsyncIterator<Buffer>;
  private leftover: Buffer = Buffer.alloc(0);

  constructor(request: IncomingMessage) {
    this.chunks = (request as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  async line(maxBytes: number): Promise<string> {
    for (;;) {
      const end = this.leftover.indexOf(0x0a);
      if (end >= 0) {
        const text = this.leftover.subarray(0, end).toString('utf8');
        this.leftover = this.leftover.subarray(end + 1);
        return text;
      }
      if (this.leftover.length > maxBytes) throw new BadBody(`the envelope line is longer than ${maxBytes} bytes`);
      const next = await this.next();
      if (!next) throw new BadBody('the body ended before the envelope line');
      this.leftover = Buffer.concat([this.leftover, next]);
    }
  }

  /** Exactly `bytes` bytes into `file` (created 0600), or read and dropped when `file` is undefined. */
  async copy(bytes: number, file?: string): Promise<void> {
    const handle: FileHandle | undefined = file === undefined ? undefined : await open(file, 'wx', 0o600);
    try {
      let left = bytes;
      while (left > 0) {
        const chunk = this.leftover.length > 0 ? this.take() : await this.next();
        if (!chunk) throw new BadBody(`the body ended ${left} bytes early`);
        const part = chunk.subarray(0, left);
        if (chunk.length > left) this.leftover = chunk.subarray(left);
        left -= part.length;
        if (handle) await handle.write(part);
      }
    } finally {
      await handle?.close();
    }
  }

  /** Reads to the end; true when nothing was left over. */
  async atEnd(): Promise<boolean> {
    let extra = this.leftover.length;
    for (let chunk = await this.next(); chunk; chunk = await this.next()) extra += chunk.length;
    return extra === 0;
  }

  private take(): Buffer {
    const chunk = this.leftover;
    this.leftover = Buffer.alloc(0);
    return chunk;
  }

  private async next(): Promise<Buffer | undefined> {
    const step = await this.chunks.next();
    return step.done ? undefined : step.value;
  }
}

/** Where a result's files go; decided once its envelope is read (undefined: read and dropped). */
export interface ResultFiles {
  findings?: string;
  sbom?: string;
}

/** The envelope, then its files, checked against the Content-Length announced; files are removed on any failure. */
export async function receiveResult(
  reader: BodyReader,
  contentLength: number,
  filesFor: (envelope: ResultEnvelope) => ResultFiles,
): Promise<{ envelope: ResultEnvelope; files: ResultFiles }> {
  const line = await reader.line(MAX_ENVELOPE_BYTES);
  let envelope: ResultEnvelope;
  try {
    envelope = parseEnvelope(line);
  } catch (error) {
    throw new BadBody(`invalid result envelope: ${(error as Error).message}`);
  }
  const findingsBytes = envelope.result.ok ? envelope.result.image.bytes : 0;
  if (Buffer.byteLength(line) + 1 + findingsBytes + envelope.sbomBytes !== contentLength)
    throw new BadBody('the envelope does not match the Content-Length');
  const files = filesFor(envelope);
  try {
    await reader.copy(findingsBytes, files.findings);
    await reader.copy(envelope.sbomBytes, envelope.sbomBytes > 0 ? files.sbom : undefined);
    if (!(await reader.atEnd())) throw new BadBody('the body is longer than announced');
  } catch (error) {
    for (const file of [files.findings, files.sbom]) if (file) await rm(file, { force: true });
    throw error;
  }
  return { envelope, files };
}
