import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** Repository root of ephor-scanner. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** `../shared` beside the clone (CI provides it); real fixtures are read from here at run time, never copied. */
export const SHARED_DIR = process.env.EPHOR_SHARED_DIR ?? path.resolve(REPO_ROOT, '..', 'shared');
export const FIXTURES_DIR = path.join(SHARED_DIR, 'fixtures');
export const TRIVY_REPORTS_DIR = path.join(FIXTURES_DIR, 'trivy', 'reports');
export const K8S_FIXTURES_DIR = path.join(FIXTURES_DIR, 'k8s');
/** JSON Schemas of the Ephor API bodies, copied into the project from ../shared/contract. */
export const CONTRACT_DIR = path.join(REPO_ROOT, 'contract');
/** The bundled CLI that `npm run build` writes (what the container image runs). */
export const CLI_BUNDLE = path.join(REPO_ROOT, 'dist', 'ephor-scanner.mjs');

export function fixture(...parts: string[]): string {
  return path.join(FIXTURES_DIR, ...parts);
}
