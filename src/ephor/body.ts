// A namespace body as pieces: small JSON strings, and each container's findings file, streamed in place. The size
// of every piece is known before anything is read, so a body can be split into parts of bounded size by whole
// workloads (a workload too big on its own, by whole containers; a container is never split: Ephor auto-resolves
// per container) and sent with an exact Content-Length without ever being built in memory.
import { open, readFile, rm } from 'node:fs/promises';
import type { ContainerPayload, PartLabel, ScanConfig, ScanIngestRequest, WorkloadPayload } from './contract.js';

export type { PartLabel } from './contract.js';

/** A container's fields but its findings, which are streamed from their file. */
export type ContainerFields = Omit<ContainerPayload, 'vulnerabilities'>;
/** A workload's fields but its containers. */
export type WorkloadFields = Omit<WorkloadPayload, 'containers'>;
/** The request's fields but its workloads and its scan_config (which depends on the part). */
export type EnvelopeFields = Omit<ScanIngestRequest, 'workloads' | 'scan_config'>;

export interface FindingsFile {
  file: string;
  bytes: number;
}

export interface ContainerEntry {
  /** `{"name":…,…,"vulnerabilities":` */
  head: string;
  findings: FindingsFile;
  bytes: number;
}

export interface WorkloadEntry {
  /** `{"namespace":…,"name":…,"kind":…,"labels":{…},"containers":[` */
  head: string;
  containers: ContainerEntry[];
  bytes: number;
}

/** Renders the envelope (everything but the workloads) for one part. */
export type Envelope = (part: PartLabel) => { head: string; tail: string };

export interface BodyPart {
  label: PartLabel;
  workloads: WorkloadEntry[];
  bytes: number;
  head: string;
  tail: string;
}

type Piece = string | FindingsFile;

export function containerEntry(fields: ContainerFields, findings: FindingsFile): ContainerEntry {
  const json = JSON.stringify(fields);
  const head = `${json.slice(0, -1)}${json.length > 2 ? ',' : ''}"vulnerabilities":`;
  return { head, findings, bytes: byteLength(head) + findings.bytes + 1 };
}

export function workloadEntry(fields: WorkloadFields, containers: ContainerEntry[]): WorkloadEntry {
  const json = JSON.stringify(fields);
  const head = `${json.slice(0, -1)}${json.length > 2 ? ',' : ''}"containers":[`;
  return { head, containers, bytes: byteLength(head) + sumWithCommas(containers.map((c) => c.bytes)) + 2 };
}

/** The envelope of every part of one namespace; a namespace sent in several parts names the part in scan_config. */
export function envelopeOf(fields: EnvelopeFields, scanConfig: ScanConfig): Envelope {
  return (part) => {
    const config: ScanConfig = part.count > 1 ? { ...scanConfig, part } : scanConfig;
    const json = JSON.stringify({ ...fields, scan_config: config });
    return { head: `${json.slice(0, -1)},"workloads":[`, tail: ']}' };
  };
}

/**
 * Packs workloads into parts of at most `maxBytes`. A workload that does not fit an empty part is cut into
 * workloads holding fewer whole containers; a single container larger than `maxBytes` still gets a part of its own.
 */
export function splitBody(workloads: WorkloadEntry[], envelope: Envelope, maxBytes: number): BodyPart[] {
  // The envelope's size with the widest part label it can carry, so that labelling never overflows a part.
  const reserve = envelopeBytes(envelope({ index: 99_999, count: 99_999 }));
  const room = Math.max(maxBytes - reserve, 1);
  const groups: WorkloadEntry[][] = [];
  let current: WorkloadEntry[] = [];
  let size = 0;
  for (const workload of workloads.flatMap((w) => (w.bytes <= room ? [w] : splitWorkload(w, room)))) {
    const added = (current.length > 0 ? 1 : 0) + workload.bytes;
    if (current.length > 0 && size + added > room) {
      groups.push(current);
      current = [];
      size = 0;
    }
    size += (current.length > 0 ? 1 : 0) + workload.bytes;
    current.push(workload);
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);
  return groups.map((group, i) => part(group, envelope, { index: i + 1, count: groups.length }));
}

function part(workloads: WorkloadEntry[], envelope: Envelope, label: PartLabel): BodyPart {
  const { head, tail } = envelope(label);
  return {
    label,
    workloads,
    head,
    tail,
    bytes: byteLength(head) + sumWithCommas(workloads.map((w) => w.bytes)) + byteLength(tail),
  };
}

function splitWorkload(workload: WorkloadEntry, room: number): WorkloadEntry[] {
  const head = workload.head;
  const overhead = byteLength(head) + 2;
  const pieces: WorkloadEntry[] = [];
  let containers: ContainerEntry[] = [];
  let size = overhead;
  for (const container of workload.containers) {
    if (containers.length > 0 && size + 1 + container.bytes > room) {
      pieces.push(withContainers(head, containers));
      containers = [];
      size = overhead;
    }
    size += (containers.length > 0 ? 1 : 0) + container.bytes;
    containers.push(container);
  }
  if (containers.length > 0) pieces.push(withContainers(head, containers));
  return pieces;
}

function withContainers(head: string, containers: ContainerEntry[]): WorkloadEntry {
  return { head, containers, bytes: byteLength(head) + sumWithCommas(containers.map((c) => c.bytes)) + 2 };
}

function pieces(part: BodyPart): Piece[] {
  const out: Piece[] = [part.head];
  part.workloads.forEach((workload, w) => {
    if (w > 0) out.push(',');
    out.push(workload.head);
    workload.containers.forEach((container, c) => {
      if (c > 0) out.push(',');
      out.push(container.head, container.findings, '}');
    });
    out.push(']}');
  });
  out.push(part.tail);
  return out;
}

/** Bytes handed to the socket (or file) at a time: few large writes, not one per small piece. */
const CHUNK_BYTES = 256 * 1024;

/**
 * The part's bytes in chunks of up to CHUNK_BYTES: small strings copied in, findings files read straight in. One
 * buffer is reused for every chunk, so a chunk is only valid until the next one is asked for: the consumer must
 * finish writing it first (see http.ts and writeBodyFile). Gigabytes of bodies then cost no allocations.
 */
export async function* bodyChunks(part: BodyPart): AsyncGenerator<Buffer> {
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  let used = 0;
  for (const piece of pieces(part)) {
    if (typeof piece === 'string') {
      const bytes = byteLength(piece);
      if (used + bytes > CHUNK_BYTES && used > 0) {
        yield buffer.subarray(0, used);
        used = 0;
      }
      if (bytes > CHUNK_BYTES) yield Buffer.from(piece);
      else used += buffer.write(piece, used);
      continue;
    }
    const handle = await open(piece.file, 'r');
    try {
      let read = 0;
      for (;;) {
        if (used === CHUNK_BYTES) {
          yield buffer;
          used = 0;
        }
        const { bytesRead } = await handle.read(buffer, used, CHUNK_BYTES - used, null);
        if (bytesRead === 0) break;
        used += bytesRead;
        read += bytesRead;
      }
      // The Content-Length was computed from the recorded size: a file that changed would corrupt the body.
      if (read !== piece.bytes)
        throw new Error(`findings file ${piece.file} holds ${read} bytes, expected ${piece.bytes}`);
    } finally {
      await handle.close();
    }
  }
  if (used > 0) yield buffer.subarray(0, used);
}

/** Writes the part to a file (spool, dry run); a failed write leaves no partial file behind. */
export async function writeBodyFile(part: BodyPart, file: string, mode = 0o644): Promise<void> {
  const handle = await open(file, 'w', mode);
  try {
    for await (const chunk of bodyChunks(part)) await handle.write(chunk);
  } catch (error) {
    await handle.close();
    await rm(file, { force: true });
    throw error;
  }
  await handle.close();
}

/** The whole part as one string: for tests and small bodies only. */
export async function bodyText(part: BodyPart): Promise<string> {
  const texts = await Promise.all(
    pieces(part).map(async (piece) => (typeof piece === 'string' ? piece : readFile(piece.file, 'utf8'))),
  );
  return texts.join('');
}

function envelopeBytes({ head, tail }: { head: string; tail: string }): number {
  return byteLength(head) + byteLength(tail);
}

function sumWithCommas(sizes: number[]): number {
  return sizes.reduce((a, b) => a + b, 0) + Math.max(sizes.length - 1, 0);
}

export function byteLength(text: string): number {
  return Buffer.byteLength(text);
}
