// Bounded HTTP requests for the preflight checks (src/http.ts), and how to recognise a proxy's HTML page.
import { send, type HttpAnswer } from '../http.js';

export { HttpFailure, type HttpAnswer } from '../http.js';

const MAX_BODY = 64 * 1024;

/** A GET or HEAD for the preflight: bounded, no redirect followed, at most 64 KiB read. */
export function httpRequest(
  url: URL,
  options: { method?: 'GET' | 'HEAD'; headers?: Record<string, string>; timeoutMs: number },
): Promise<HttpAnswer> {
  return send({
    method: options.method ?? 'GET',
    url,
    headers: options.headers,
    timeoutMs: options.timeoutMs,
    maxAnswerBytes: MAX_BODY,
  });
}

/** The text of `<title>` of an HTML page, if any. */
export function htmlTitle(body: string): string | undefined {
  const title = /<title[^>]*>([^<]*)<\/title>/i.exec(body)?.[1]?.trim().replace(/\s+/g, ' ');
  return title ? title.slice(0, 80) : undefined;
}

export function looksLikeHtml(answer: HttpAnswer): boolean {
  const type = (answer.contentType ?? '').toLowerCase();
  return type.includes('text/html') || /^\s*<(!doctype|html|head|body)/i.test(answer.text);
}
