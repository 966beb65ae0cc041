import { readFileSync } from 'node:fs';

// esbuild replaces this identifier with package.json's version in the bundle; under tsx it is read from package.json.
declare const __EPHOR_SCANNER_VERSION__: string | undefined;

export const VERSION: string =
  typeof __EPHOR_SCANNER_VERSION__ === 'string'
    ? __EPHOR_SCANNER_VERSION__
    : (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const USER_AGENT = `ephor-scanner/${VERSION}`;
/** Sent as `scan_label`, as the Go scanner does (`ephor-scanner/<version>`). */
export const SCAN_LABEL = USER_AGENT;
