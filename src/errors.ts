// What a caught value says, for a log line or a user message. Anything can be thrown; only an Error has a message.

/** The message of an Error, or the value itself as text. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The errno code of a failed system call (`ENOSPC`, `EACCES`, …), if it is one. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
