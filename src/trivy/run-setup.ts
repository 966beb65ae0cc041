// Trivy for one run, beyond the version and the DBs (database.ts): the layer cache's hygiene, then the scan mode.
// Server mode starts the run's own Trivy server (server.ts), or checks the external one (TRIVY_SERVER_URL) before
// any scan is handed to it: it must answer /healthz, must not be a known-malicious release, and must take the
// token. `releaseTrivyRun` stops what this started and reports the layer cache for the summary.
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { prepareTrivy, TrivyUnavailableError, type TrivySetup } from './database.js';
import { KNOWN_BAD_FIX, knownBadMessage, knownBadTrivy } from './known-bad.js';
import { prepareLayerCache, summariseLayerCache, type LayerCacheSummary } from './layer-cache.js';
import { checkServerToken, probeHealthz, probeVersion } from './server-api.js';
import { ExternalServer, startOwnServer } from './server.js';
import { messageOf } from '../errors.js';

export interface TrivyRunInputs {
  config: Config;
  env: Record<string, string | undefined>;
  log: Logger;
  /** Secrets made during the run (the own server's token) are registered here, so no log line can print them. */
  registerSecret: (secret: string) => void;
}

/** Every call to the external server while preparing gives up after this long. */
const EXTERNAL_TIMEOUT_MS = 10_000;

export async function prepareTrivyRun(inputs: TrivyRunInputs, signal: AbortSignal): Promise<TrivySetup> {
  const { config, env, log } = inputs;
  const { trivy } = config;
  const setup = await prepareTrivy(config, env, log, signal);
  if (trivy.externalServer) return withExternalServer(setup, config, log);
  if (trivy.cacheMode !== 'shared' && trivy.cacheMode !== 'server') return setup;
  let layerCache;
  try {
    layerCache = await prepareLayerCache(trivy.cacheDir, setup.version, trivy.scanCacheMaxBytes, log);
  } catch (error) {
    throw new TrivyUnavailableError(`the layer cache in ${trivy.cacheDir} cannot be prepared: ${messageOf(error)}`, {
      cause: error,
    });
  }
  if (trivy.cacheMode === 'shared' || signal.aborted) return { ...setup, layerCache };
  const server = await startOwnServer({
    binary: trivy.binary,
    cacheDir: trivy.cacheDir,
    env,
    startTimeoutMs: trivy.serverStartTimeoutMs,
    log,
    registerSecret: inputs.registerSecret,
    signal,
  });
  return server
    ? { ...setup, layerCache, server, cacheMode: 'server' }
    : { ...setup, layerCache, cacheMode: 'ephemeral' };
}

/** After the last scan: the own server is stopped, then the layer cache measured. Safe to call twice. */
export async function releaseTrivyRun(setup: TrivySetup, log: Logger): Promise<LayerCacheSummary | undefined> {
  await setup.server?.stop();
  return setup.layerCache && (await summariseLayerCache(setup.layerCache, log));
}

/** The external server must be up, not a known-bad release, and take the token; its DB is the run's DB. */
async function withExternalServer(setup: TrivySetup, config: Config, log: Logger): Promise<TrivySetup> {
  const { url, token, tokenHeader } = config.trivy.externalServer!;
  const health = await probeHealthz(url, EXTERNAL_TIMEOUT_MS);
  if (!health.ok)
    throw new TrivyUnavailableError(
      `the Trivy server at TRIVY_SERVER_URL does not answer: ${health.detail}; ` +
        'check the URL and that the scanner may reach it',
    );
  const info = await probeVersion(url, EXTERNAL_TIMEOUT_MS);
  const version = info.ok ? info.value.version : undefined;
  const bad = version === undefined ? undefined : knownBadTrivy(version);
  if (version !== undefined && bad)
    throw new TrivyUnavailableError(
      `the Trivy server at ${url} runs ${knownBadMessage(version, bad)}: ${KNOWN_BAD_FIX}`,
    );
  if (!info.ok) log.warn({ url, error: info.detail }, 'the Trivy server did not tell its version');
  else if (version !== setup.version)
    log.warn(
      { url, server_version: version, client_version: setup.version },
      'the Trivy server runs another Trivy version than the scanner: ' +
        'keep them equal (the server detects, the client analyses)',
    );
  const tokenCheck = await checkServerToken(url, token, tokenHeader, EXTERNAL_TIMEOUT_MS);
  if (tokenCheck === 'refused')
    throw new TrivyUnavailableError(
      `the Trivy server at ${url} refused the token (twirp error unauthenticated: invalid token): ` +
        `check TRIVY_SERVER_TOKEN and TRIVY_SERVER_TOKEN_HEADER=${tokenHeader}`,
    );
  if (tokenCheck !== 'accepted')
    log.warn({ url, error: tokenCheck.unknown }, 'the Trivy server token could not be checked; scanning anyway');
  const db = info.ok ? info.value.vulnerabilityDb : undefined;
  log.info(
    { url, server_version: version, db_updated_at: db?.updatedAt },
    'using the external Trivy server: the scanner starts none',
  );
  return {
    ...setup,
    db: { ready: true, updatedAt: db?.updatedAt, downloadedAt: db?.downloadedAt, nextUpdate: db?.nextUpdate },
    server: new ExternalServer(url, token, tokenHeader),
    cacheMode: 'external_server',
  };
}
