// Namespace names and glob patterns (SCAN_EXCLUDE_NAMESPACES, e.g. `kube-*`): `*` any run of characters, `?` one.

export function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export function matchesAny(namespace: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => globToRegExp(pattern).test(namespace));
}
