// Reads a Trivy JSON report (SchemaVersion 2) from its file without ever building the whole document: a byte-level
// scanner walks the JSON and hands over only what the scanner needs, each piece parsed on its own: the top-level
// `SchemaVersion` and `Metadata`, each Result's `Target`/`Class`/`Type`, and every element of each Result's
// `Vulnerabilities`. Everything else (`Packages` with --list-all-pkgs, secrets, …) is skipped, so a 200 MB report,
// read in chunks, costs a few megabytes of memory (small reports are read in one go into a reused buffer).
// Anything that is not such a report is an InvalidReportError. A captured object or array, and one that is skipped,
// is run through in one tight loop that only follows strings and bracket depth (no frame per nested value, no key
// decoded): captured values are then checked by JSON.parse; skipped ones only for balanced brackets and strings.
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { messageOf } from '../errors.js';
import { InvalidReportError, type TrivyReport, type TrivyResult, type TrivyVulnerability } from './report.js';

export interface ReportVisitor {
  metadata(metadata: NonNullable<TrivyReport['Metadata']>): void;
  vulnerability(result: TrivyResult, vulnerability: TrivyVulnerability): void;
  /** Called when a Result object is complete (also for Results without vulnerabilities). */
  result(result: TrivyResult): void;
  /** Awaited after each chunk of the file, e.g. to write out what the callbacks collected. */
  flush?(): Promise<void>;
}

/** Reports beyond this are refused outright (they would take minutes to read and say something is wrong). */
export const MAX_REPORT_BYTES = 2 * 1024 ** 3;
/** Reports up to this size are read in one go (one read instead of many, and no value spans two chunks), into a
 * reused buffer: a fresh one per report churns the allocator, and the process's RSS grows with every image. */
const WHOLE_READ_BYTES = 2 * 1024 * 1024;
const KEPT_READ_BUFFERS = 2;
const readBuffers: Buffer[] = [];
/** One captured value (a vulnerability, the metadata) beyond this is not a plausible Trivy report. */
const MAX_CAPTURE_BYTES = 64 * 1024 * 1024;

// The bytes of a Buffer are numbers; Byte names the few the reader looks for (compared as numbers throughout).
/* eslint @typescript-eslint/no-unsafe-enum-comparison: "off" */
const enum Byte {
  Quote = 0x22,
  Backslash = 0x5c,
  OpenBrace = 0x7b,
  CloseBrace = 0x7d,
  OpenBracket = 0x5b,
  CloseBracket = 0x5d,
  Colon = 0x3a,
  Comma = 0x2c,
}

interface Frame {
  kind: 'object' | 'array';
  /** Object: the key of the value being read; array: the index. */
  key: string | number | undefined;
  /** Object: next string is a key. */
  expectKey: boolean;
  result?: TrivyResult;
}

export async function streamReport(file: string, visitor: ReportVisitor, maxBytes = MAX_REPORT_BYTES): Promise<void> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    throw new InvalidReportError('Trivy exited 0 but wrote no report file');
  }
  if (size === 0) throw new InvalidReportError('Trivy exited 0 but the report file is empty');
  if (size > maxBytes) throw new InvalidReportError(`report is ${size} bytes, over the ${maxBytes}-byte limit`);

  const parser = new ReportParser(visitor);
  if (size <= WHOLE_READ_BYTES) {
    const buffer = readBuffers.pop() ?? Buffer.allocUnsafe(WHOLE_READ_BYTES);
    try {
      parser.write(buffer.subarray(0, await readInto(file, buffer)));
      parser.end(); // the parser hands over copies (strings): nothing refers to the buffer afterwards
    } finally {
      if (readBuffers.length < KEPT_READ_BUFFERS) readBuffers.push(buffer);
    }
    await visitor.flush?.();
    return;
  }
  for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 })) {
    parser.write(chunk as Buffer);
    await visitor.flush?.();
  }
  parser.end();
  await visitor.flush?.();
}

/** An object or array being run through without frames: captured (see `capture`) or skipped. */
interface Scan {
  depth: number;
  inString: boolean;
  escaped: boolean;
}

/** The scanning state machine; exported for tests that feed it chunks directly. */
export class ReportParser {
  private readonly stack: Frame[] = [];
  private scan: Scan | undefined;
  private inString = false;
  private escaped = false;
  private stringStart = -1;
  private stringParts: Buffer[] = [];
  /** A scalar outside strings being read (number, true, false, null). */
  private scalar: string | undefined;
  private capture:
    { depth: number; parts: Buffer[]; start: number; bytes: number; onDone: (text: string) => void } | undefined;
  private started = false;
  private finished = false;
  private schemaVersion: unknown;
  /** A scalar at a place that must hold an array or object: only `null` is acceptable there. */
  private scalarMustBeNull: string | undefined;

  constructor(private readonly visitor: ReportVisitor) {}

  write(chunk: Buffer): void {
    // Strings are most of a report: they are skipped with indexOf (native), not byte by byte.
    let nextBackslash = -2;
    for (let i = 0; i < chunk.length; i++) {
      if (this.scan) {
        i = this.scanValue(chunk, i);
        continue;
      }
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          continue;
        }
        const quote = chunk.indexOf(Byte.Quote, i);
        if (nextBackslash !== -1 && nextBackslash < i) nextBackslash = chunk.indexOf(Byte.Backslash, i);
        if (nextBackslash !== -1 && (quote === -1 || nextBackslash < quote)) {
          i = nextBackslash;
          this.escaped = true;
          continue;
        }
        if (quote === -1) break;
        i = quote;
        this.endString(chunk, i);
        continue;
      }
      const byte = chunk[i]!;
      if (this.scalar !== undefined) {
        if (isScalarByte(byte)) {
          this.scalar += String.fromCharCode(byte);
          continue;
        }
        this.endScalar();
      }
      if (isWhitespace(byte)) continue;
      if (this.finished) throw new InvalidReportError('report has data after its end');
      switch (byte) {
        case Byte.Quote:
          this.startValueOrKey(chunk, i, true);
          this.inString = true;
          this.stringStart = i + 1;
          this.stringParts = [];
          break;
        case Byte.OpenBrace:
        case Byte.OpenBracket:
          this.startValueOrKey(chunk, i, false);
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- startValueOrKey may set it
          if (this.scan) break; // captured or skipped as a whole: no frame
          this.stack.push({
            kind: byte === Byte.OpenBrace ? 'object' : 'array',
            key: byte === Byte.OpenBrace ? undefined : 0,
            expectKey: byte === Byte.OpenBrace,
          });
          this.enterContainer();
          break;
        case Byte.CloseBrace:
        case Byte.CloseBracket:
          this.closeContainer(chunk, i, byte === Byte.CloseBrace ? 'object' : 'array');
          break;
        case Byte.Colon:
          break;
        case Byte.Comma: {
          const top = this.stack.at(-1);
          if (!top) throw new InvalidReportError('report is not valid JSON (stray comma)');
          if (top.kind === 'array') top.key = (top.key as number) + 1;
          else top.expectKey = true;
          break;
        }
        default:
          if (!isScalarByte(byte))
            throw new InvalidReportError(
              `report is not valid JSON (unexpected character ${JSON.stringify(String.fromCharCode(byte))})`,
            );
          this.startValueOrKey(chunk, i, false);
          this.scalar = String.fromCharCode(byte);
      }
    }
    this.carryOver(chunk);
  }

  end(): void {
    if (this.scalar !== undefined) this.endScalar();
    if (!this.started) throw new InvalidReportError('report is empty');
    if (!this.finished || this.inString)
      throw new InvalidReportError('report is not valid JSON (it ends in the middle: truncated?)');
    if (this.schemaVersion !== 2)
      throw new InvalidReportError(
        `unsupported report SchemaVersion ${JSON.stringify(this.schemaVersion)} (expected 2)`,
      );
  }

  /** A value (or an object key) starts at chunk[index]. */
  private startValueOrKey(chunk: Buffer, index: number, isString: boolean): void {
    const top = this.stack.at(-1);
    if (!this.started) {
      if (isString || chunk[index] !== Byte.OpenBrace) throw new InvalidReportError('report is not a JSON object');
      this.started = true;
      return;
    }
    if (!top) throw new InvalidReportError('report has data after its end');
    if (top.kind === 'object' && top.expectKey) {
      if (!isString) throw new InvalidReportError('report is not valid JSON (object key is not a string)');
      return; // the key is read by endString
    }
    if (this.capture) return;
    const path = this.path();
    const kind = isString
      ? 'string'
      : chunk[index] === Byte.OpenBrace
        ? 'object'
        : chunk[index] === Byte.OpenBracket
          ? 'array'
          : 'scalar';
    this.checkShape(path, kind);
    const captured = wantsCapture(path);
    if (captured) this.startCapture(chunk, index, path);
    if ((kind === 'object' || kind === 'array') && (captured || !walked(path)))
      this.scan = { depth: 1, inString: false, escaped: false };
  }

  /**
   * Runs through the scanned value from chunk[from] on; returns the index of its closing bracket (the scan is then
   * over, and a capture handed over) or of the chunk's last byte. Strings are skipped with indexOf; a quote is
   * escaped when an odd run of backslashes precedes it.
   */
  private scanValue(chunk: Buffer, from: number): number {
    const scan = this.scan!;
    const end = chunk.length;
    let i = from;
    while (i < end) {
      if (scan.inString) {
        if (scan.escaped) {
          scan.escaped = false;
          i++;
          continue;
        }
        const quote = chunk.indexOf(Byte.Quote, i);
        if (quote === -1) {
          scan.escaped = backslashesBefore(chunk, end, i) % 2 === 1;
          return end - 1;
        }
        if (backslashesBefore(chunk, quote, i) % 2 === 0) scan.inString = false;
        i = quote + 1;
        continue;
      }
      const byte = chunk[i]!;
      if (byte === Byte.Quote) {
        scan.inString = true;
      } else if (byte === Byte.OpenBrace || byte === Byte.OpenBracket) {
        scan.depth++;
      } else if (byte === Byte.CloseBrace || byte === Byte.CloseBracket) {
        if (--scan.depth === 0) {
          this.scan = undefined;
          if (this.capture) this.finishCapture(chunk, i + 1);
          const top = this.stack.at(-1);
          if (top?.kind === 'object') top.expectKey = false;
          return i;
        }
      } else if (!isWhitespace(byte) && byte !== Byte.Comma && byte !== Byte.Colon && !isScalarByte(byte)) {
        throw new InvalidReportError(
          `report is not valid JSON (unexpected character ${JSON.stringify(String.fromCharCode(byte))})`,
        );
      }
      i++;
    }
    return end - 1;
  }

  /** Results, a Result and its Vulnerabilities must have their JSON types: anything else is not a Trivy report
   * (and must never be read as "no vulnerabilities"). */
  private checkShape(path: Array<string | number | undefined>, kind: 'string' | 'object' | 'array' | 'scalar'): void {
    const where =
      path.length === 1 && path[0] === 'Results'
        ? '"Results"'
        : path.length === 2 && path[0] === 'Results'
          ? 'a Result'
          : path.length === 3 && path[0] === 'Results' && path[2] === 'Vulnerabilities'
            ? 'a Result\'s "Vulnerabilities"'
            : undefined;
    if (!where) return;
    const wanted = where === 'a Result' ? 'object' : 'array';
    if (kind === wanted) return;
    if (kind === 'scalar' && wanted === 'array') {
      this.scalarMustBeNull = where;
      return;
    }
    throw new InvalidReportError(`report has ${where} that is not ${wanted === 'object' ? 'an object' : 'an array'}`);
  }

  private path(): Array<string | number | undefined> {
    return this.stack.map((frame) => frame.key);
  }

  private startCapture(chunk: Buffer, index: number, path: Array<string | number | undefined>): void {
    const depth = this.stack.length;
    const resultFrame = this.stack[2];
    let onDone: (text: string) => void;
    if (path.length === 1 && path[0] === 'SchemaVersion')
      onDone = (text) => (this.schemaVersion = parse(text, 'SchemaVersion'));
    else if (path.length === 1 && path[0] === 'Metadata')
      onDone = (text) => {
        this.visitor.metadata(parseObject(text, 'Metadata'));
      };
    else if (path.length === 3)
      onDone = (text) =>
        Object.assign(resultFrame!.result!, { [path[2] as string]: parse(text, `Results[].${String(path[2])}`) });
    else
      onDone = (text) => {
        this.visitor.vulnerability(resultFrame!.result!, parseObject(text, 'a vulnerability'));
      };
    this.capture = { depth, parts: [], start: index, bytes: 0, onDone };
  }

  /** A Results[i] object gets a record for its Target/Class/Type, so its vulnerabilities can be attributed to it. */
  private enterContainer(): void {
    const [root, results, result] = this.stack;
    if (this.stack.length === 3 && root!.key === 'Results' && results!.kind === 'array' && result!.kind === 'object')
      result!.result = {};
  }

  private closeContainer(chunk: Buffer, index: number, kind: Frame['kind']): void {
    const frame = this.stack.pop();
    if (!frame || frame.kind !== kind) throw new InvalidReportError('report is not valid JSON (mismatched brackets)');
    if (this.stack.length === 0) this.finished = true;
    if (frame.result && this.stack.length === 2 && this.stack[0]!.key === 'Results') this.visitor.result(frame.result);
    if (this.capture && this.stack.length === this.capture.depth) this.finishCapture(chunk, index + 1);
    const top = this.stack.at(-1);
    if (top?.kind === 'object') top.expectKey = false;
  }

  private endString(chunk: Buffer, index: number): void {
    this.inString = false;
    const top = this.stack.at(-1);
    if (top?.kind === 'object' && top.expectKey) {
      this.stringParts.push(chunk.subarray(Math.max(this.stringStart, 0), index));
      const raw =
        this.stringParts.length === 1
          ? this.stringParts[0]!.toString('utf8')
          : Buffer.concat(this.stringParts).toString('utf8');
      // eslint-disable-next-line no-control-regex -- control characters must be unescaped by JSON.parse
      top.key = /[\\\u0000-\u001f]/.test(raw) ? (parse(`"${raw}"`, 'a key') as string) : raw;
      top.expectKey = false;
    } else if (this.capture && this.stack.length === this.capture.depth) {
      this.finishCapture(chunk, index + 1);
    }
    this.stringParts = [];
    this.stringStart = -1;
  }

  private endScalar(): void {
    const text = this.scalar!;
    this.scalar = undefined;
    if (!/^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)$/.test(text))
      throw new InvalidReportError(`report is not valid JSON (bad literal ${JSON.stringify(text.slice(0, 20))})`);
    if (this.scalarMustBeNull && text !== 'null')
      throw new InvalidReportError(`report has ${this.scalarMustBeNull} that is not an array`);
    this.scalarMustBeNull = undefined;
    if (this.capture && this.stack.length === this.capture.depth) {
      const capture = this.capture;
      this.capture = undefined;
      capture.onDone(text);
    }
    const top = this.stack.at(-1);
    if (top?.kind === 'object') top.expectKey = false;
  }

  private finishCapture(chunk: Buffer, endExclusive: number): void {
    const capture = this.capture!;
    this.capture = undefined;
    const start = Math.max(capture.start, 0);
    if (capture.parts.length === 0) {
      capture.onDone(chunk.toString('utf8', start, endExclusive));
      return;
    }
    capture.parts.push(chunk.subarray(start, endExclusive));
    capture.onDone(Buffer.concat(capture.parts).toString('utf8'));
  }

  /** Bytes of an unfinished string or captured value that continue into the next chunk. */
  private carryOver(chunk: Buffer): void {
    if (this.inString && this.stack.at(-1)?.expectKey && this.stringStart >= 0) {
      this.stringParts.push(chunk.subarray(this.stringStart));
      this.stringStart = 0;
    } else if (this.inString && this.stringStart >= 0) {
      this.stringStart = 0;
    }
    if (this.capture) {
      const part = chunk.subarray(Math.max(this.capture.start, 0));
      this.capture.parts.push(part);
      this.capture.bytes += part.length;
      this.capture.start = 0;
      if (this.capture.bytes > MAX_CAPTURE_BYTES)
        throw new InvalidReportError('report holds a single value larger than 64 MiB');
    }
  }
}

/** The containers walked with frames: Results, each Result, each Result's Vulnerabilities; any other object or array
 * is captured or skipped whole. */
function walked(path: Array<string | number | undefined>): boolean {
  if (path[0] !== 'Results') return false;
  return (
    path.length === 1 ||
    (path.length === 2 && typeof path[1] === 'number') ||
    (path.length === 3 && path[2] === 'Vulnerabilities')
  );
}

/** How many backslashes directly precede chunk[index], not looking before `floor`. */
function backslashesBefore(chunk: Buffer, index: number, floor: number): number {
  let count = 0;
  for (let j = index - 1; j >= floor && chunk[j] === Byte.Backslash; j--) count++;
  return count;
}

/**
 * Top-level SchemaVersion and Metadata, each Result's Target/Class/Type, each element of each Result's Vulnerabilities.
 */
function wantsCapture(path: Array<string | number | undefined>): boolean {
  if (path.length === 1) return path[0] === 'SchemaVersion' || path[0] === 'Metadata';
  if (path[0] !== 'Results' || typeof path[1] !== 'number') return false;
  if (path.length === 3) return path[2] === 'Target' || path[2] === 'Class' || path[2] === 'Type';
  return path.length === 4 && path[2] === 'Vulnerabilities' && typeof path[3] === 'number';
}

function parse(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidReportError(`report is not valid JSON in ${what} (${messageOf(error)})`, { cause: error });
  }
}

/** A JSON object of the report; its fields are checked where they are read (map-image.ts). */
function parseObject(text: string, what: string): Record<string, unknown> {
  const value = parse(text, what);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidReportError(`report has ${what} that is not an object`);
  return value as Record<string, unknown>;
}

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

function isScalarByte(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) ||
    byte === 0x2d ||
    byte === 0x2b ||
    byte === 0x2e ||
    (byte >= 0x61 && byte <= 0x7a) ||
    (byte >= 0x41 && byte <= 0x5a)
  );
}

/** Reads the file into `buffer` (up to its size); returns the number of bytes read. */
async function readInto(file: string, buffer: Buffer): Promise<number> {
  const handle = await open(file, 'r');
  try {
    let length = 0;
    for (let read = -1; read !== 0 && length < buffer.length; length += read) {
      read = (await handle.read(buffer, length, buffer.length - length, null)).bytesRead;
    }
    return length;
  } finally {
    await handle.close();
  }
}
