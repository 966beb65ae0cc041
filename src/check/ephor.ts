// Check 2: the Ephor API answers and is ready: GET {EPHOR_API_URL}/api/v1/actuator/health/readiness with the auth
// header (its value is sent, never shown). What else can answer there is told apart: a proxy's sign-in page or 401,
// a web page, a wrong base path, a certificate the scanner does not trust, a name that does not resolve.
import type { Config } from '../config/index.js';
import { USER_AGENT } from '../version.js';
import { chartValue, inChart } from './hints.js';
import { HttpFailure, htmlTitle, httpRequest, looksLikeHtml, type HttpAnswer } from './http.js';
import { CALL_TIMEOUT_MS, fail, pass, warn, type CheckResult } from './types.js';

export const READINESS_PATH = '/api/v1/actuator/health/readiness';

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export async function checkEphor(config: Config): Promise<CheckResult[]> {
  const { apiUrl, auth, dryRun, outputDir } = config.ephor;
  if (dryRun) {
    return [pass('ephor', `dry run (EPHOR_DRY_RUN=true): nothing is posted, payloads are written to ${outputDir}`)];
  }
  const url = new URL(apiUrl + READINESS_PATH);
  const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': USER_AGENT };
  if (auth) headers[auth.header] = auth.value;
  const sent = auth ? `; header ${auth.header} sent` : '';
  const timeoutMs = Math.min(CALL_TIMEOUT_MS, config.ephor.timeoutMs);
  let answer: HttpAnswer;
  try {
    answer = await httpRequest(url, { headers, timeoutMs });
  } catch (error) {
    return [networkFailure(error as HttpFailure, url, apiUrl)];
  }
  return [judge(answer, url, config, sent)];
}

function networkFailure(error: HttpFailure, url: URL, apiUrl: string): CheckResult {
  const where = `${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
  if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') {
    return fail(
      'ephor',
      `the host "${url.hostname}" of EPHOR_API_URL=${apiUrl} does not resolve (${error.code})`,
      `set ${inChart('EPHOR_API_URL')} to a name this pod can resolve, in a cluster the API's Service, ` +
        'e.g. http://ephor-api.ephor.svc:8080',
    );
  }
  if (error.code === 'ETIMEDOUT') {
    return fail(
      'ephor',
      `no answer from ${where} within ${CALL_TIMEOUT_MS / 1000} s (EPHOR_API_URL=${apiUrl})`,
      `let the scanner reach ${where}: a NetworkPolicy or firewall may drop the traffic; ` +
        'a proxy goes in HTTPS_PROXY/NO_PROXY (chart: extraEnv)',
    );
  }
  if (TLS_CODES.has(error.code)) {
    return fail(
      'ephor',
      `the TLS certificate of ${url.host} is not trusted (${error.code}: ${error.message})`,
      'give the scanner the CA that signed it: ' +
        'a PEM file in NODE_EXTRA_CA_CERTS (chart: extraEnv with extraVolumes and extraVolumeMounts)',
    );
  }
  return fail(
    'ephor',
    `nothing answers at ${apiUrl} (${error.message})`,
    `check EPHOR_API_URL=${apiUrl} (chart: ${chartValue('EPHOR_API_URL')}): is the Ephor API running, ` +
      'and is this its address and port?',
  );
}

function judge(answer: HttpAnswer, url: URL, config: Config, sent: string): CheckResult {
  const { apiUrl } = config.ephor;
  const { status } = answer;
  const html = looksLikeHtml(answer);
  const title = html ? htmlTitle(answer.text) : undefined;
  const what = html ? `an HTML page${title ? ` ("${title}")` : ''}` : contentType(answer);
  const request = `GET ${url.pathname}`;

  if (status >= 300 && status < 400) {
    const location = answer.headers.location ?? '';
    if (/login|signin|sign_in|oauth|auth/i.test(location))
      return proxyAuthFailure(`${request} redirected to a sign-in page (${status} to ${location})`, config);
    if (url.protocol === 'http:' && location.startsWith('https://')) {
      return fail(
        'ephor',
        `${request} redirected to https (${status} to ${location})`,
        `use https:// in ${inChart('EPHOR_API_URL')}: ${apiUrl.replace(/^http:/, 'https:')}`,
      );
    }
    return fail(
      'ephor',
      `${request} redirected (${status} to ${location || 'nowhere'}); the scanner does not follow redirects`,
      `set ${inChart('EPHOR_API_URL')} to the address the API really answers on`,
    );
  }
  if (status === 401 || status === 403) {
    const origin = html ? `${what}: a proxy in front of the API asks for authentication` : what;
    return proxyAuthFailure(`${request} answered ${status} with ${origin}`, config);
  }
  if (html && status >= 200 && status < 300) {
    return fail(
      'ephor',
      `${request} answered ${status} with ${what}, not the Ephor API's JSON`,
      `set ${inChart('EPHOR_API_URL')} to the Ephor API's own base URL (the one that serves /api/v1/scans/ingest), ` +
        "not the web UI or a proxy's login page",
    );
  }
  // A base URL that already ends in /api/v1 doubles the prefix: Ephor answers 404 or, for an unknown path, 500.
  const basePath = url.pathname.slice(0, -READINESS_PATH.length);
  const doubled = /\/api(\/v1)?\/?$/.exec(basePath)?.[0]?.replace(/\/$/, '');
  if (doubled && (status < 200 || status >= 300)) {
    return fail(
      'ephor',
      `${request} answered ${status} with ${what}: EPHOR_API_URL=${apiUrl} already ends in ${doubled}`,
      `remove "${doubled}" from ${inChart('EPHOR_API_URL')}: it is the base URL, the scanner adds /api/v1/… itself`,
    );
  }
  if (status === 404) {
    return fail(
      'ephor',
      `${request} answered 404 with ${what}: no Ephor API at ${apiUrl}`,
      `set ${inChart('EPHOR_API_URL')} to the Ephor API's base URL, without a path ` +
        '(the scanner adds /api/v1/…), e.g. http://ephor-api:8080',
    );
  }
  const health = readHealth(answer);
  if (status === 503 && health) {
    return fail(
      'ephor',
      `the Ephor API at ${apiUrl} answers but is not ready (readiness ${health}, HTTP 503)`,
      "wait until the API has started; if it stays so, check the Ephor API's own logs (its database connection)",
    );
  }
  if (status >= 500 || (status >= 400 && html)) {
    const proxy = html ? " (a proxy's error page: the API behind it does not answer)" : '';
    return fail(
      'ephor',
      `${request} answered ${status} with ${what}${proxy}`,
      html ? 'check that the Ephor API pods behind the proxy are running and ready' : "check the Ephor API's own logs",
    );
  }
  if (status >= 200 && status < 300) {
    if (health === 'UP') return pass('ephor', `the Ephor API at ${apiUrl} is ready (readiness UP${sent})`);
    const readiness = health ? ` (readiness ${health})` : ', not the actuator\'s {"status":"UP"}';
    return warn(
      'ephor',
      `${request} answered ${status} with ${what}${readiness}`,
      `check that ${inChart('EPHOR_API_URL')} is the Ephor API and that it is healthy`,
    );
  }
  return fail(
    'ephor',
    `${request} answered ${status} with ${what}`,
    `check ${inChart('EPHOR_API_URL')} and the Ephor API's logs`,
  );
}

function proxyAuthFailure(message: string, config: Config): CheckResult {
  const { auth } = config.ephor;
  const fix = auth
    ? `the ${auth.header} header was sent and refused: ` +
      `check ${inChart('EPHOR_AUTH_VALUE')} and that the proxy expects the header ${auth.header}`
    : 'set EPHOR_AUTH_HEADER and EPHOR_AUTH_VALUE to the header the proxy expects ' +
      `(chart: ${chartValue('EPHOR_AUTH_HEADER')} and ${chartValue('EPHOR_AUTH_VALUE')})`;
  return fail('ephor', message, fix);
}

function contentType(answer: HttpAnswer): string {
  const type = (answer.headers['content-type'] ?? '').split(';')[0]?.trim();
  if (answer.text.trim() === '') return 'an empty body';
  return type ? `a ${type} body` : 'a body without a content type';
}

/** The actuator's `{"status": "UP"}` (or DOWN, OUT_OF_SERVICE), when the body is that JSON. */
function readHealth(answer: HttpAnswer): string | undefined {
  try {
    const status = (JSON.parse(answer.text) as { status?: unknown }).status;
    return typeof status === 'string' ? status : undefined;
  } catch {
    return undefined;
  }
}
