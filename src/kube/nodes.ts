// The platform (`os/arch`) each node runs, from a cluster-wide LIST of nodes (read only). A Pod's containers run on
// its node's platform, and a multi-platform image must be scanned for that platform: without `--platform`, Trivy
// takes the linux/amd64 variant of an image index (go-containerregistry's default), whatever node runs the image.
// The kubelet sets the well-known labels `kubernetes.io/os` and `kubernetes.io/arch` (Go's GOOS and GOARCH) on its
// node; `status.nodeInfo.operatingSystem` / `architecture` (the same values, reported by the kubelet) stand in
// where a label is missing.
import type { Platform, PlatformFacts } from '../types.js';
import type { KubeClient } from './client.js';
import { listAll, type ListOptions } from './list.js';

export const OS_LABEL = 'kubernetes.io/os';
export const ARCH_LABEL = 'kubernetes.io/arch';

/** Node name → its platform (undefined when neither its labels nor its nodeInfo say). */
export type NodePlatforms = ReadonlyMap<string, Platform | undefined>;

interface RawNode {
  metadata?: { name?: unknown; labels?: Record<string, unknown> };
  status?: { nodeInfo?: { operatingSystem?: unknown; architecture?: unknown } };
}

export async function listNodePlatforms(client: KubeClient, options?: ListOptions): Promise<NodePlatforms> {
  const entries = await listAll(client, '/api/v1/nodes', (item) => nodeEntry(item as RawNode), options);
  return new Map(entries);
}

export function nodeEntry(node: RawNode | null | undefined): [string, Platform | undefined] | undefined {
  const name = node?.metadata?.name;
  if (typeof name !== 'string') return undefined;
  const labels = node?.metadata?.labels ?? {};
  const info = node?.status?.nodeInfo ?? {};
  const os = word(labels[OS_LABEL]) ?? word(info.operatingSystem);
  const arch = word(labels[ARCH_LABEL]) ?? word(info.architecture);
  return [name, os && arch ? `${os}/${arch}` : undefined];
}

function word(value: unknown): string | undefined {
  return typeof value === 'string' && /^[a-z0-9_]+$/.test(value) ? value : undefined;
}

/** Trivy scans Linux images only: a Windows image has no OS packages it knows (and its layers are not a Linux tree). */
export function isScannablePlatform(platform: Platform): boolean {
  return !platform.startsWith('windows/');
}

/** What the run records about platforms, from the listed nodes. */
export function platformFacts(nodes: NodePlatforms): PlatformFacts {
  const linux = [...new Set([...nodes.values()].filter((p): p is Platform => p?.startsWith('linux/') === true))].sort();
  return { listed: true, linuxPlatforms: linux, ...(linux.length === 1 && { clusterPlatform: linux[0] }) };
}
