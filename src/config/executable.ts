import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

/** Resolves a command the way a shell would: a path is checked as is, a bare name is searched on PATH. */
export function findExecutable(name: string, env: Record<string, string | undefined>): string | undefined {
  const candidates = name.includes('/')
    ? [path.resolve(name)]
    : (env.PATH ?? '')
        .split(path.delimiter)
        .filter(Boolean)
        .map((dir) => path.join(dir, name));
  return candidates.find(isExecutableFile);
}

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
