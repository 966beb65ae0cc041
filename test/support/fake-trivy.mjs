#!/usr/bin/env node
// Stand-in for the Trivy CLI (0.58–0.69) for ephor-scanner tests. Driven by the JSON scenario named in
// $FAKE_TRIVY_SCENARIO (format: FakeTrivyScenario in fake-trivy.ts). Replays the real fixtures under
// ../shared/fixtures/trivy, read at run time. Only node built-ins, so it starts fast.
// Commands: `trivy image` (alias `i`), `trivy convert` (alias `conv`), `trivy version`, `trivy --version`.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHARED_DIR = process.env.EPHOR_SHARED_DIR ?? path.resolve(REPO_ROOT, '..', 'shared');
const TRIVY_FIXTURES = path.join(SHARED_DIR, 'fixtures', 'trivy');
const REPORTS_DIR = path.join(TRIVY_FIXTURES, 'reports');
const SEVERITIES = ['UNKNOWN', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
const DEFAULT_VERSION = '0.69.3';
const HOUR_MS = 3_600_000;

// ---------- invocation log and exit ----------

/** Variables whose values are written to the log as they are: the stand-ins' own and the tests' (TEST_*), and
 * TRIVY_* settings other than credentials. Every other value may be a secret (a registry password, a Redis URL, the
 * Ephor auth value if it ever leaked), so only its fingerprint is written (fake-trivy.ts envFingerprint). */
const PLAIN_ENV = new Set([
  'PATH',
  'HOME',
  'TMPDIR',
  'XDG_CACHE_HOME',
  'DOCKER_CONFIG',
  'FAKE_TRIVY_SCENARIO',
  'EPHOR_SHARED_DIR',
]);
const SECRET_TRIVY_ENV = new Set([
  'TRIVY_CACHE_BACKEND',
  'TRIVY_USERNAME',
  'TRIVY_PASSWORD',
  'TRIVY_PASSWORD_STDIN',
  'TRIVY_REGISTRY_TOKEN',
  'TRIVY_TOKEN',
  'TRIVY_CUSTOM_HEADERS',
]);

function recordedEnv(env) {
  const plain = (name) =>
    PLAIN_ENV.has(name) || name.startsWith('TEST_') || (name.startsWith('TRIVY_') && !SECRET_TRIVY_ENV.has(name));
  return Object.fromEntries(
    Object.entries(env).map(([name, value]) => [
      name,
      plain(name) ? value : `sha256:${createHash('sha256').update(value).digest('hex').slice(0, 16)}`,
    ]),
  );
}

/** What the working directory holds when Trivy starts (Trivy reads trivy.yaml and .trivyignore from it). */
function cwdEntries() {
  try {
    return fs.readdirSync(process.cwd()).sort();
  } catch (err) {
    return `unreadable: ${err.code ?? err.message}`;
  }
}

const invocation = {
  argv: process.argv.slice(2),
  env: recordedEnv(process.env),
  cwd: process.cwd(),
  cwdEntries: cwdEntries(),
  pid: process.pid,
  startedAt: new Date().toISOString(),
  behaviour: 'unknown',
};
let logPath;
let logWritten = false;

function writeInvocationLog(extra = {}) {
  if (!logPath || logWritten) return;
  logWritten = true;
  fs.appendFileSync(logPath, JSON.stringify({ ...invocation, ...extra }) + '\n');
}

/** Thrown by exit() so that no code runs after it; main() flushes stdout/stderr before exiting. */
// eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a marker thrown and caught by main()
class ExitRequest {
  constructor(code) {
    this.code = code;
  }
}

function exit(code) {
  writeInvocationLog({ endedAt: new Date().toISOString(), exitCode: code });
  throw new ExitRequest(code);
}

/** process.exit() right after a large write to a pipe would drop the unflushed rest. */
function flushThenExit(code) {
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

// ---------- small utilities ----------

const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** Trivy's log time format (Go RFC3339, seconds). */
const timestamp = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

function versionAtLeast(version, minimum) {
  if (!/^v?\d/.test(version)) return true; // 'dev' builds are newest
  const parse = (v) => v.replace(/^v/, '').split(/[.-]/).slice(0, 3).map(Number);
  const [a, b] = [parse(version), parse(minimum)];
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

/** Go's string comparison (bytes, not locale). */
const byteOrder = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** Go's encoding/json escapes these even inside MarshalIndent output; doing the same keeps replays byte-identical. */
function goJson(value) {
  return (
    JSON.stringify(value, null, 2).replace(
      /[<>&\u2028\u2029]/g,
      (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'),
    ) + '\n'
  );
}

function writeFileAtomic(file, data) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

let errorEntries;
function errorEntry(id) {
  errorEntries ??= readJson(path.join(TRIVY_FIXTURES, 'errors.json')).entries;
  const entry = errorEntries.find((e) => e.id === id);
  if (!entry) internalError(`no entry "${id}" in errors.json`);
  return entry;
}

function internalError(message) {
  process.stderr.write(`fake-trivy: ${message}\n`);
  invocation.behaviour = 'internal-error';
  exit(99);
}

// ---------- flags (cobra/pflag semantics) ----------

const REPORT_FORMATS = [
  'table',
  'json',
  'template',
  'sarif',
  'cyclonedx',
  'spdx',
  'spdx-json',
  'github',
  'cosign-vuln',
];
const HELP_FLAG = { name: 'help', short: 'h', kind: 'bool', noEnv: true, usage: 'help' };
const GLOBAL_FLAGS = [
  HELP_FLAG,
  { name: 'cache-dir', kind: 'string', usage: 'cache directory' },
  { name: 'quiet', short: 'q', kind: 'bool', usage: 'suppress progress bar and log output' },
  { name: 'timeout', kind: 'duration', default: '5m0s', usage: 'timeout' },
  // pkg/flag/global_flags.go ConfigFileFlag: read by the root command before any subcommand (loadConfigFile)
  { name: 'config', short: 'c', kind: 'string', default: 'trivy.yaml', usage: 'config path' },
];
// `config`: the flag's key in trivy.yaml (its ConfigName in pkg/flag/*.go); only these keys of a config file are read.
const IMAGE_FLAGS = [
  { name: 'format', short: 'f', kind: 'string', default: 'table', usage: `format (${REPORT_FORMATS.join(', ')})` },
  { name: 'output', short: 'o', kind: 'string', usage: 'output file name' },
  {
    name: 'scanners',
    kind: 'list',
    default: ['vuln', 'secret'],
    config: 'scan.scanners',
    usage: 'comma-separated list of what security issues to detect',
  },
  {
    name: 'severity',
    short: 's',
    kind: 'list',
    default: SEVERITIES,
    config: 'severity',
    usage: 'severities of security issues to be displayed',
  },
  // pkg/flag/vulnerability_flags.go and report_flags.go; applied as pkg/result/filter.go does (filterVulnerabilities)
  {
    name: 'ignore-unfixed',
    kind: 'bool',
    config: 'vulnerability.ignore-unfixed',
    usage: 'display only fixed vulnerabilities',
  },
  {
    name: 'ignore-status',
    kind: 'list',
    config: 'vulnerability.ignore-status',
    usage: 'comma-separated list of vulnerability status to ignore',
  },
  {
    name: 'ignorefile',
    kind: 'string',
    default: '.trivyignore',
    config: 'ignorefile',
    usage: 'specify .trivyignore file',
  },
  { name: 'list-all-pkgs', kind: 'bool', usage: 'output all packages in the JSON report regardless of vulnerability' },
  { name: 'cache-backend', kind: 'string', default: 'fs', usage: '[EXPERIMENTAL] cache backend' },
  { name: 'skip-db-update', kind: 'bool', usage: 'skip updating vulnerability database' },
  { name: 'skip-java-db-update', kind: 'bool', usage: 'skip updating Java index database' },
  { name: 'download-db-only', kind: 'bool', usage: "download/update vulnerability database but don't run a scan" },
  { name: 'download-java-db-only', kind: 'bool', usage: "download/update Java index database but don't run a scan" },
  {
    name: 'db-repository',
    kind: 'list',
    default: ['mirror.gcr.io/aquasec/trivy-db:2', 'ghcr.io/aquasecurity/trivy-db:2'],
    usage: 'OCI repository(ies) to retrieve trivy-db in order of priority',
  },
  {
    name: 'java-db-repository',
    kind: 'list',
    default: ['mirror.gcr.io/aquasec/trivy-java-db:1', 'ghcr.io/aquasecurity/trivy-java-db:1'],
    usage: 'OCI repository(ies) to retrieve trivy-java-db in order of priority',
  },
  {
    name: 'image-src',
    kind: 'list',
    default: ['docker', 'containerd', 'podman', 'remote'],
    usage: 'image source(s) to use, in priority order',
  },
  { name: 'no-progress', kind: 'bool', usage: 'suppress progress bar' },
  { name: 'platform', kind: 'string', usage: 'set platform in the form os/arch if image is multi-platform capable' },
  { name: 'offline-scan', kind: 'bool', usage: 'do not issue API requests to identify dependencies' },
  { name: 'parallel', kind: 'int', default: 5, usage: 'number of goroutines enabled for parallel scanning' },
  // pkg/flag/remote_flags.go NewClientFlags (the image command's client flags)
  { name: 'server', kind: 'string', usage: 'server address in client mode' },
  { name: 'token', kind: 'string', usage: 'for authentication in client/server mode' },
  {
    name: 'token-header',
    kind: 'string',
    default: 'Trivy-Token',
    usage: 'specify a header name for token in client/server mode',
  },
  {
    name: 'skip-version-check',
    kind: 'bool',
    since: '0.63.0',
    usage: 'suppress notices about version updates and Trivy announcements',
  },
  { name: 'disable-telemetry', kind: 'bool', since: '0.63.0', usage: 'disable sending anonymous usage data to Aqua' },
];
// `trivy version --format` and `trivy --format` are plain cobra flags, not bound to TRIVY_* env vars.
const VERSION_FORMAT_FLAG = { name: 'format', short: 'f', kind: 'string', noEnv: true, usage: 'version format (json)' };
const ROOT_FLAGS = [
  { name: 'version', short: 'v', kind: 'bool', noEnv: true, usage: 'show version' },
  VERSION_FORMAT_FLAG,
];

class FlagError extends Error {}

const GO_DURATION = /^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)$/;
const DURATION_UNIT_MS = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: HOUR_MS };

function durationMs(text) {
  let total = 0;
  for (const [, num, unit] of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g))
    total += Number(num) * DURATION_UNIT_MS[unit];
  return total;
}

function parseFlagValue(spec, raw) {
  const shown = spec.short ? `-${spec.short}, --${spec.name}` : `--${spec.name}`;
  const invalid = (why) => new FlagError(`invalid argument "${raw}" for "${shown}" flag: ${why}`);
  switch (spec.kind) {
    case 'bool':
      if (/^(1|t|T|TRUE|true|True)$/.test(raw)) return true;
      if (/^(0|f|F|FALSE|false|False)$/.test(raw)) return false;
      throw invalid(`strconv.ParseBool: parsing "${raw}": invalid syntax`);
    case 'duration':
      if (!GO_DURATION.test(raw)) throw invalid(`time: invalid duration "${raw}"`);
      return raw;
    case 'int':
      if (!/^[-+]?\d+$/.test(raw)) throw invalid(`strconv.ParseInt: parsing "${raw}": invalid syntax`);
      return Number(raw);
    case 'list':
      return raw === '' ? [] : raw.split(',');
    default:
      return raw;
  }
}

/** Parses tokens against `specs`; returns { values, changed, positional } or throws FlagError. */
function parseFlags(tokens, specs) {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short, s]));
  const values = {};
  const changed = new Set();
  const positional = [];
  const set = (spec, raw) => {
    const value = parseFlagValue(spec, raw);
    // pflag string slices: the first occurrence replaces the default, later ones append
    values[spec.name] = spec.kind === 'list' && changed.has(spec.name) ? [...values[spec.name], ...value] : value;
    changed.add(spec.name);
  };
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token === '--') {
      positional.push(...tokens.slice(i + 1));
      break;
    }
    if (token.startsWith('--')) {
      const eq = token.indexOf('=');
      const name = eq < 0 ? token.slice(2) : token.slice(2, eq);
      const spec = byName.get(name);
      if (!spec) throw new FlagError(`unknown flag: --${name}`);
      if (eq >= 0) set(spec, token.slice(eq + 1));
      else if (spec.kind === 'bool') set(spec, 'true');
      else if (i + 1 < tokens.length) set(spec, tokens[++i]);
      else throw new FlagError(`flag needs an argument: --${name}`);
    } else if (token.startsWith('-') && token.length > 1) {
      // shorthand cluster: -q, -qf json, -fjson, -f=json
      for (let j = 1; j < token.length; j++) {
        const spec = byShort.get(token[j]);
        if (!spec) throw new FlagError(`unknown shorthand flag: '${token[j]}' in ${token}`);
        if (spec.kind === 'bool' && token[j + 1] !== '=') {
          set(spec, 'true');
          continue;
        }
        const rest = token.slice(j + 1).replace(/^=/, '');
        if (rest !== '' || token[j + 1] === '=') set(spec, rest);
        else if (i + 1 < tokens.length) set(spec, tokens[++i]);
        else throw new FlagError(`flag needs an argument: '${token[j]}' in -${token[j]}`);
        break;
      }
    } else {
      positional.push(token);
    }
  }
  return { values, changed, positional };
}

/** Every Trivy flag is also TRIVY_<NAME> (viper); invalid env values are ignored like viper's casts. */
function applyEnvFallback(parsed, specs) {
  for (const spec of specs) {
    const envValue = process.env[`TRIVY_${spec.name.toUpperCase().replaceAll('-', '_')}`];
    if (spec.noEnv || parsed.changed.has(spec.name) || envValue === undefined) continue;
    try {
      parsed.values[spec.name] = parseFlagValue(spec, envValue);
    } catch {
      /* viper would cast silently */
    }
  }
}

// ---------- trivy.yaml (pkg/commands/app.go initConfig, pkg/flag/options.go parse/cast) ----------

/**
 * Reads the config file as Trivy does before every command: `--config`, else $TRIVY_CONFIG, else `trivy.yaml` in the
 * working directory. A missing file is an error only when the flag named it (cobra's Changed). Its values apply where
 * neither a flag nor an environment variable set the option (viper's order).
 */
function applyConfigFile(parsed, specs) {
  const file = flagValue(parsed, specs, 'config');
  if (!file) return;
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT' && !parsed.changed.has('config')) return;
    invocation.behaviour = 'config-error';
    fatal(`config file "${file}" loading error: open ${file}: ${ERRNO_TEXT[err.code] ?? err.message}`);
  }
  const config = parseSimpleYaml(text, file);
  logInfo('Loaded', `file_path="${file}"`);
  for (const spec of specs) {
    if (!spec.config || spec.name in parsed.values) continue;
    const value = spec.config
      .split('.')
      .reduce((node, key) => (node && typeof node === 'object' ? node[key] : undefined), config);
    if (value !== undefined && value !== null) parsed.values[spec.name] = castConfigValue(spec, value);
  }
}

/** spf13/cast as Flag.cast uses it: a string list is split at commas if it has any, else at spaces. */
function castConfigValue(spec, value) {
  if (spec.kind === 'bool')
    return value === true || (typeof value === 'string' && /^(1|t|T|TRUE|true|True)$/.test(value));
  if (spec.kind !== 'list') return String(value);
  if (Array.isArray(value)) return value.map(String);
  const text = String(value);
  return text.includes(',') ? text.split(',') : text.split(/\s+/).filter(Boolean);
}

/**
 * The YAML a trivy.yaml in these tests uses: maps nested by indentation, `- item` lists, `[a, b]` lists, plain or
 * quoted scalars, comments. Anything else stops the stand-in (exit 99) rather than being misread.
 */
function parseSimpleYaml(text, file) {
  const lines = text
    .split('\n')
    .map((raw, i) => ({ n: i + 1, raw: raw.replace(/(^|\s)#.*$/, '') }))
    .filter((l) => l.raw.trim() !== '')
    .map((l) => ({ n: l.n, indent: l.raw.length - l.raw.trimStart().length, text: l.raw.trim() }));
  let pos = 0;
  const unsupported = (l) => internalError(`${file}:${l.n}: YAML the stand-in does not read: ${l.text}`);
  const scalar = (t, l) => {
    if (/^(['"]).*\1$/.test(t)) return t.slice(1, -1);
    if (/^[{&*|>!%@`]/.test(t)) unsupported(l);
    return t === 'true' ? true : t === 'false' ? false : t;
  };
  const inline = (t, l) =>
    /^\[.*\]$/.test(t)
      ? t
          .slice(1, -1)
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)
          .map((x) => scalar(x, l))
      : scalar(t, l);
  const isItem = (l) => l.text === '-' || l.text.startsWith('- ');
  function block(indent) {
    if (isItem(lines[pos])) {
      const list = [];
      while (pos < lines.length && lines[pos].indent === indent && isItem(lines[pos])) {
        list.push(scalar(lines[pos].text.slice(1).trim(), lines[pos]));
        pos++;
      }
      return list;
    }
    const map = {};
    while (pos < lines.length && lines[pos].indent === indent) {
      const l = lines[pos++];
      const m = /^([A-Za-z0-9_.-]+):(?:\s+(.*))?$/.exec(l.text);
      if (!m) unsupported(l);
      const next = lines[pos];
      if (m[2]) map[m[1]] = inline(m[2], l);
      else if (next && (next.indent > indent || (next.indent === indent && isItem(next))))
        map[m[1]] = block(next.indent);
      else map[m[1]] = null;
    }
    return map;
  }
  if (lines.length === 0) return {};
  const config = block(lines[0].indent);
  if (pos < lines.length) unsupported(lines[pos]);
  return config;
}

function flagValue(parsed, specs, name) {
  if (name in parsed.values) return parsed.values[name];
  return specs.find((s) => s.name === name)?.default;
}

/** cobra finds the subcommand as the first non-flag token, skipping values of flags written as separate tokens. */
function splitSubcommand(tokens) {
  const valueFlags = new Set(['--cache-dir', '--timeout', '--format', '-f', '--config', '-c']);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token === '--') break;
    if (token.startsWith('-')) {
      if (valueFlags.has(token)) i++;
      continue;
    }
    return { command: token, rest: [...tokens.slice(0, i), ...tokens.slice(i + 1)] };
  }
  return { command: undefined, rest: tokens };
}

// ---------- stderr logging in Trivy's slog format ----------

let quiet = false;
function logInfo(message, fields = '', level = 'INFO') {
  if (!quiet) process.stderr.write(`${timestamp()}\t${level}\t${message}${fields ? '\t' + fields : ''}\n`);
}
function fatal(chain) {
  process.stderr.write(`${timestamp()}\tFATAL\tFatal error\t${chain}\n`);
  exit(1);
}
/** With --quiet Trivy still prints FATAL (and its continuation lines) but no INFO/WARN/ERROR lines. */
function writeStderrReplay(text) {
  process.stderr.write(quiet ? text.replace(/^[^\t\n]+\t(DEBUG|INFO|WARN|ERROR)\t.*\n/gm, '') : text);
}

function helpText(usageLine, short, specs) {
  const flagLines = specs.map((s) => `  ${s.short ? `-${s.short}, ` : '    '}--${s.name.padEnd(24)}${s.usage ?? ''}`);
  return `${short}\n\nUsage:\n  ${usageLine}\n\nFlags:\n${flagLines.join('\n')}\n`;
}

/** Subcommands use Trivy's flagErrorFunc: help on stdout, an empty line on stderr, then the FATAL line. */
function subcommandFlagFailure(err, help) {
  process.stdout.write(help);
  process.stderr.write('\n');
  fatal(err.message);
}

/** The root command is not silenced, so cobra itself prints "Error: …" and the usage to stderr first. */
function rootCommandFailure(message) {
  process.stderr.write(`Error: ${message}\n${ROOT_USAGE}\n`);
  fatal(message);
}

const ROOT_USAGE =
  'Usage:\n  trivy [global flags] command [flags] target\n  trivy [command]\n\nUse "trivy [command] --help" for more information about a command.\n';

// ---------- image references (go-containerregistry semantics) ----------

function parseImageRef(ref) {
  let rest = ref;
  let digest = '';
  let tag = '';
  const at = rest.indexOf('@');
  if (at >= 0) [rest, digest] = [rest.slice(0, at), rest.slice(at + 1)];
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) [rest, tag] = [rest.slice(0, colon), rest.slice(colon + 1)];
  const first = rest.split('/')[0];
  const hasRegistry = rest.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  let registry = hasRegistry ? first : 'index.docker.io';
  let repoPath = hasRegistry ? rest.slice(first.length + 1) : rest;
  if (registry === 'docker.io') registry = 'index.docker.io';
  if (registry === 'index.docker.io' && !repoPath.includes('/')) repoPath = `library/${repoPath}`;
  return { repo: rest, registry, repoPath, identifier: digest || tag || 'latest' };
}

function manifestUrl({ registry, repoPath, identifier }) {
  const host = registry.replace(/:\d+$/, '');
  const plainHttp =
    /^(localhost|127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|\[?::1\]?$)/.test(host) ||
    /\.(local|localhost)$/.test(host);
  return `${plainHttp ? 'http' : 'https'}://${registry}/v2/${repoPath}/manifests/${identifier}`;
}

/** Rewrites an errors.json entry (captured for the image named in its `args`) for `ref`. */
function substituteImage(entry, ref) {
  const original = entry.args.split(' ').at(-1);
  if (!original || original.startsWith('<')) return entry.stderr;
  const from = parseImageRef(original);
  const to = parseImageRef(ref);
  return entry.stderr
    .replaceAll(manifestUrl(from), manifestUrl(to))
    .replaceAll(`"${original}"`, `"${ref}"`)
    .replaceAll(`(${original})`, `(${ref})`)
    .replaceAll(`Name:${from.repoPath} `, `Name:${to.repoPath} `)
    .replaceAll(`unknown tag=${from.identifier}`, `unknown tag=${to.identifier}`);
}

const CHAIN_V062 =
  'run error: image scan error: scan error: unable to initialize a scan service: unable to initialize artifact: unable to initialize container image: ';
const CHAIN_V058 =
  'image scan error: scan error: unable to initialize a scanner: unable to initialize an image scanner: ';

/** errors.json mostly holds 0.62+ texts; before 0.62 Trivy had no "run error:" wrapper and another image chain. */
function adaptChainToVersion(text, version) {
  if (versionAtLeast(version, '0.62.0')) return text;
  return text.replaceAll(CHAIN_V062, CHAIN_V058).replaceAll('\tFatal error\trun error: ', '\tFatal error\t');
}

/** Builds the "unable to find the specified image" failure for the requested --image-src list (the remote source's
 * line from the entry, or `remoteLine` when given). */
function imageFailureText(ctx, ref, remoteEntryId, remoteLine) {
  const sourceLine = /^\t\* (\w+) error: /;
  const lines = [
    ...substituteImage(errorEntry('image-not-found-default-sources'), ref)
      .split('\n')
      .filter((l) => sourceLine.test(l) && !l.startsWith('\t* remote')),
    remoteLine ??
      substituteImage(errorEntry(remoteEntryId), ref)
        .split('\n')
        .find((l) => l.startsWith('\t* remote error: ')),
  ];
  const lineBySource = new Map(lines.map((l) => [sourceLine.exec(l)[1], l]));
  const sources = ctx.opt('image-src');
  const chosen = sources.map((s) => lineBySource.get(s)).filter(Boolean);
  const count = chosen.length === 1 ? '1 error occurred' : `${chosen.length} errors occurred`;
  const stamp = errorEntry(remoteEntryId).stderr.split('\t')[0];
  const text = `${stamp}\tFATAL\tFatal error\t${CHAIN_V062}unable to find the specified image "${ref}" in [${sources.map((s) => `"${s}"`).join(' ')}]: ${count}:\n${chosen.join('\n')}\n\n\n`;
  return adaptChainToVersion(text, ctx.version);
}

function timeoutText(version) {
  const minor = Number(version.split('.')[1]);
  let text = errorEntry('timeout-v069').stderr;
  const url = /see (\S+)/.exec(text)[1];
  if (minor === 58) text = text.replace(url, 'https://aquasecurity.github.io/trivy/v0.58/docs/configuration/');
  else if (minor < 67) text = text.replace(url, `https://trivy.dev/v0.${minor}/docs/configuration`);
  else if (minor === 67) text = text.replace(url, 'https://trivy.dev/v0.67/docs/references/troubleshooting/#timeout');
  else if (minor === 68) text = text.replace(url, url.replace('v0.69', 'v0.68'));
  return adaptChainToVersion(text, version);
}

/** Prints a (possibly adapted) failure and exits with the entry's code. */
function failWith(text, exitCode, behaviour) {
  invocation.behaviour = behaviour;
  writeStderrReplay(text);
  exit(exitCode);
}

function replayEntry(id, ref) {
  const entry = errorEntry(id);
  if (entry.stdout && !entry.stdout.startsWith('<')) process.stdout.write(entry.stdout);
  failWith(ref ? substituteImage(entry, ref) : entry.stderr, entry.exitCode, `fail:${id}`);
}

// ---------- multi-platform images (an image index) ----------

/** go-containerregistry remote.defaultPlatform: what an index resolves to when no platform is asked for. */
const DEFAULT_PLATFORM = 'linux/amd64';

/** v1.ParsePlatform: `os/arch[/variant]` (`os` may be `*` for Trivy: any OS). */
function parsePlatform(text) {
  const [os = '', architecture = '', variant = ''] = text.split('/');
  return { os, architecture, variant };
}

/**
 * `{ platforms: { 'linux/amd64': behaviour, 'linux/arm64': behaviour } }` is a multi-platform image (an index). The
 * child scanned is the one for `--platform`, else linux/amd64: Trivy 0.69 (pkg/remote/remote.go tryGet) passes a
 * platform with an OS to remote.WithPlatform as it is (resolvePlatform replaces only a `*` OS with the index's first
 * child's), and go-containerregistry v0.20 (pkg/v1/remote/index.go childByPlatform) takes the first child whose OS
 * and architecture match (and variant, when one is asked for). With none, desc.Image() fails with
 * `no child with platform %+v in index %s` (v1.Platform's String(), the reference as given), which Trivy's
 * NewContainerImage prints as the remote source's error. A single-platform image (any other behaviour) ignores
 * `--platform`, as Trivy does.
 */
function childForPlatform(ctx, ref, index) {
  const asked = parsePlatform(ctx.opt('platform') || DEFAULT_PLATFORM);
  const children = Object.keys(index.platforms);
  if (asked.os === '*') asked.os = parsePlatform(children[0] ?? '').os;
  const match = children.find((key) => {
    const child = parsePlatform(key);
    if (child.os !== asked.os || child.architecture !== asked.architecture) return false;
    return asked.variant === '' || child.variant === asked.variant;
  });
  const wanted = [asked.os, asked.architecture, asked.variant].filter(Boolean).join('/');
  if (match === undefined) {
    const remoteEntry = versionAtLeast(ctx.version, '0.62.0') ? 'image-not-found-remote-only' : 'image-not-found-v058';
    const line = `\t* remote error: no child with platform ${wanted} in index ${ref}`;
    failWith(imageFailureText(ctx, ref, remoteEntry, line), 1, `no-child-platform:${wanted}`);
  }
  invocation.platform = match;
  return index.platforms[match];
}

// ---------- hang / signal ----------

function hang(behaviour) {
  invocation.behaviour = behaviour;
  process.on('SIGTERM', () => {});
  // The grandchild shares our stdout/stderr and process group: only a group kill ends both.
  const grandchild = spawn(process.execPath, ['-e', "process.on('SIGTERM',()=>{});setInterval(()=>{},1<<30)"], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  writeInvocationLog({ pids: [process.pid, grandchild.pid] });
  setInterval(() => {}, 1 << 30);
  return new Promise(() => {});
}

function dieBySignal(signal) {
  invocation.behaviour = `signal:${signal}`;
  writeInvocationLog({ endedAt: new Date().toISOString() });
  process.kill(process.pid, signal);
  setInterval(() => {}, 1 << 30);
  return new Promise(() => {});
}

// ---------- vulnerability / Java DB in the cache dir ----------

const DB_KINDS = {
  vuln: {
    dir: 'db',
    file: 'trivy.db',
    schema: 2,
    nextUpdateMs: 24 * HOUR_MS,
    prefix: 'vulndb',
    repoFlag: 'db-repository',
    scenarioKey: 'db',
    skipFlag: 'skip-db-update',
    title: 'vulnerability DB',
  },
  java: {
    dir: 'java-db',
    file: 'trivy-java.db',
    schema: 1,
    nextUpdateMs: 72 * HOUR_MS,
    prefix: 'javadb',
    repoFlag: 'java-db-repository',
    scenarioKey: 'javaDb',
    skipFlag: 'skip-java-db-update',
    title: 'Java DB',
  },
};

function readDbMetadata(cacheDir, kind) {
  try {
    return readJson(path.join(cacheDir, DB_KINDS[kind].dir, 'metadata.json'));
  } catch {
    return undefined;
  }
}

function dbNeedsUpdate(meta, kind) {
  if (!meta || meta.Version !== DB_KINDS[kind].schema) return true;
  const now = Date.now();
  // Trivy also skips the download when the last one was less than an hour ago
  return Date.parse(meta.NextUpdate) <= now && Date.parse(meta.DownloadedAt) + HOUR_MS <= now;
}

/** Appends the schema tag to a repository without one (pkg/flag db_flags.go), logging it as Trivy does. */
function withSchemaTag(repo, k) {
  if (/:[^/]+$/.test(repo)) return repo;
  const tagged = `${repo}:${k.schema}`;
  logInfo(
    `[${k.prefix}] Adding schema version to the DB repository for backward compatibility`,
    `repository="${tagged}"`,
  );
  return tagged;
}

/** hashicorp/go-multierror ListFormatFunc. */
function multierror(messages) {
  if (messages.length === 1) return `1 error occurred:\n\t* ${messages[0]}\n\n`;
  return `${messages.length} errors occurred:\n\t${messages.map((m) => `* ${m}`).join('\n\t')}\n\n`;
}

/** "host/path:tag" → parts, for rewriting registry URLs in a captured failure. */
function splitRepository(repo) {
  const colon = repo.lastIndexOf(':');
  const name = colon > repo.lastIndexOf('/') ? repo.slice(0, colon) : repo;
  const tag = colon > repo.lastIndexOf('/') ? repo.slice(colon + 1) : 'latest';
  const slash = name.indexOf('/');
  return { host: name.slice(0, slash), path: name.slice(slash + 1), tag };
}

/**
 * What one repository's failure looks like, from an errors.json DB entry captured for another repository: the error
 * text (with host, path and tag rewritten) and whether Trivy tries the next repository (pkg/oci/artifact.go
 * shouldTryOtherRepo: temporary errors — HTTP 429/5xx — and BLOB_UNKNOWN).
 */
function dbAttemptFailure(entryId, repo) {
  const entry = errorEntry(entryId);
  const stderr = entry.stderr;
  let original;
  let message;
  const errorLine = /\tERROR\t\[\w+\] Failed to download artifact\trepo="([^"]+)" err=("(?:[^"\\]|\\.)*")/.exec(stderr);
  const fatalFrom = /failed to download artifact from ([^:\s]+:[^:\s]+): /.exec(stderr);
  if (errorLine) {
    original = errorLine[1];
    message = JSON.parse(errorLine[2]);
  } else if (fatalFrom) {
    original = fatalFrom[1];
    message = stderr.slice(fatalFrom.index + fatalFrom[0].length).replace(/\n$/, '');
  } else {
    internalError(`errors.json entry "${entryId}" is not a DB download failure`);
  }
  const from = splitRepository(original);
  const to = splitRepository(repo);
  message = message
    .replaceAll(
      `https://${from.host}/v2/${from.path}/manifests/${from.tag}`,
      `https://${to.host}/v2/${to.path}/manifests/${to.tag}`,
    )
    .replaceAll(`https://${from.host}/v2/${from.path}/`, `https://${to.host}/v2/${to.path}/`)
    .replaceAll(`https://${from.host}/v2/`, `https://${to.host}/v2/`)
    .replaceAll(original, repo);
  return { message, temporary: /TOOMANYREQUESTS|BLOB_UNKNOWN|: 5\d\d /.test(message), exitCode: entry.exitCode };
}

/** The FATAL chain of a DB download failure (errors.md §4; "run error: " since 0.62). The Java DB wording is approximate. */
function dbFailureChain(ctx, k, cause) {
  const what = k.scenarioKey === 'db' ? 'vulnerability DB' : 'Java DB';
  const prefix = versionAtLeast(ctx.version, '0.62.0') ? 'run error: ' : '';
  return `${prefix}init error: DB error: failed to download ${what}: OCI artifact error: failed to download ${what}: ${cause}`;
}

async function downloadDb(ctx, kind) {
  const k = DB_KINDS[kind];
  const setting = ctx.scenario[k.scenarioKey]?.download ?? 'ok';
  let served;
  if (typeof setting === 'string') {
    // one outcome for the whole download, replayed as captured
    if (setting === 'hang') return hang(`${kind}-db-download-hang`);
    if (setting !== 'ok') replayEntry(setting);
    served = withSchemaTag(ctx.opt(k.repoFlag)[0] ?? '', k);
    if (kind === 'vuln') logInfo('[vulndb] Need to update DB');
    logInfo(`[${k.prefix}] Downloading ${k.title}...`);
    logInfo(`[${k.prefix}] Downloading artifact...`, `repo="${served}"`);
  } else {
    // an outcome per repository, tried in --db-repository order
    const repos = ctx.opt(k.repoFlag).map((repo) => withSchemaTag(repo, k));
    if (kind === 'vuln') logInfo('[vulndb] Need to update DB');
    logInfo(`[${k.prefix}] Downloading ${k.title}...`);
    const messages = [];
    for (const [index, repo] of repos.entries()) {
      const outcome = setting[repo] ?? setting.default ?? 'ok';
      logInfo(`[${k.prefix}] Downloading artifact...`, `repo="${repo}"`);
      if (outcome === 'hang') return hang(`${kind}-db-download-hang`);
      if (outcome === 'ok') {
        served = repo;
        break;
      }
      const failure = dbAttemptFailure(outcome, repo);
      if (!failure.temporary) {
        invocation.behaviour = `fail:${outcome}`;
        process.stderr.write(
          `${timestamp()}\tFATAL\tFatal error\t${dbFailureChain(ctx, k, `failed to download artifact from ${repo}: ${failure.message}`)}\n`,
        );
        exit(failure.exitCode);
      }
      logInfo(
        `[${k.prefix}] Failed to download artifact`,
        `repo="${repo}" err=${JSON.stringify(failure.message)}`,
        'ERROR',
      );
      if (index < repos.length - 1) logInfo(`[${k.prefix}] Trying to download artifact from other repository...`);
      messages.push(failure.message);
    }
    if (served === undefined) {
      invocation.behaviour = `${kind}-db-download-failed`;
      const cause =
        messages.length > 0
          ? `failed to download artifact from any source: ${multierror(messages)}`
          : 'no repository to download from';
      process.stderr.write(`${timestamp()}\tFATAL\tFatal error\t${dbFailureChain(ctx, k, cause)}\n`);
      exit(1);
    }
  }
  if (!quiet && !ctx.opt('no-progress'))
    process.stderr.write('14 B / 14 B [------------------------------------------------] 100.00% ? p/s 0s\n');
  logInfo(`[${k.prefix}] Artifact successfully downloaded`, `repo="${served}"`);
  invocation.downloadedFrom = { ...invocation.downloadedFrom, [kind]: served };
  const dir = path.join(ctx.cacheDir, k.dir);
  fs.mkdirSync(dir, { recursive: true });
  const updatedAt = new Date(ctx.scenario[k.scenarioKey]?.updatedAt ?? Date.now() - HOUR_MS);
  fs.writeFileSync(path.join(dir, k.file), 'fake-trivy db\n');
  writeFileAtomic(
    path.join(dir, 'metadata.json'),
    JSON.stringify({
      Version: k.schema,
      NextUpdate: new Date(updatedAt.getTime() + k.nextUpdateMs).toISOString(),
      UpdatedAt: updatedAt.toISOString(),
      DownloadedAt: new Date().toISOString(),
    }),
  );
  if (kind === 'java')
    logInfo(
      '[javadb] Java DB is cached for 3 days. If you want to update the database more frequently, "trivy clean --java-db" command clears the DB cache.',
    );
}

/** What a scan does before analysing: fail on a first run with --skip-*-update, else download when needed. */
async function prepareDb(ctx, kind) {
  const meta = readDbMetadata(ctx.cacheDir, kind);
  if (ctx.opt(DB_KINDS[kind].skipFlag)) {
    if (meta) return;
    if (kind === 'vuln')
      failWith(
        adaptChainToVersion(errorEntry('db-skip-update-first-run').stderr, ctx.version),
        1,
        'db-skip-update-first-run',
      );
    // Java DB first run: messages from trivy source pkg/javadb; the wrapping chain is approximate
    logInfo('[javadb] The first run cannot skip downloading Java DB', '', 'ERROR');
    invocation.behaviour = 'java-db-skip-update-first-run';
    fatal(
      adaptChainToVersion(
        `run error: image scan error: scan error: scan failed: failed analysis: '--skip-java-db-update' cannot be specified on the first run`,
        ctx.version,
      ),
    );
  }
  if (dbNeedsUpdate(meta, kind)) await downloadDb(ctx, kind);
}

// ---------- `trivy version` ----------

function goTimeString(iso) {
  const d = new Date(iso);
  const nanos = /\.(\d+)Z$/.exec(iso)?.[1].replace(/0+$/, '') ?? '';
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)}${nanos ? '.' + nanos : ''} +0000 UTC`;
}

function dbInfo(meta) {
  return (
    meta && {
      Version: meta.Version,
      NextUpdate: meta.NextUpdate,
      UpdatedAt: meta.UpdatedAt,
      DownloadedAt: meta.DownloadedAt,
    }
  );
}

function showVersion(ctx, format) {
  invocation.behaviour = 'version';
  if (ctx.scenario.versionFails) {
    invocation.behaviour = 'version-fail';
    fatal(`json encode error: write /dev/stdout: broken pipe`);
  }
  const info = { Version: ctx.version };
  const vulnDb = dbInfo(readDbMetadata(ctx.cacheDir, 'vuln'));
  const javaDb = dbInfo(readDbMetadata(ctx.cacheDir, 'java'));
  if (vulnDb) info.VulnerabilityDB = vulnDb;
  if (javaDb) info.JavaDB = javaDb;
  if (format === 'json') {
    process.stdout.write(JSON.stringify(info) + '\n');
  } else {
    const section = (title, db) =>
      db
        ? `${title}:\n  Version: ${db.Version}\n  UpdatedAt: ${goTimeString(db.UpdatedAt)}\n  NextUpdate: ${goTimeString(db.NextUpdate)}\n  DownloadedAt: ${goTimeString(db.DownloadedAt)}\n`
        : '';
    process.stdout.write(
      `Version: ${ctx.version}\n${section('Vulnerability DB', vulnDb)}${section('Java DB', javaDb)}`,
    );
  }
  exit(0);
}

// ---------- report shaping ----------

const METADATA_KEY_ORDER = [
  'Size',
  'OS',
  'ImageID',
  'DiffIDs',
  'RepoTags',
  'RepoDigests',
  'Reference',
  'ImageConfig',
  'Layers',
];
const CLASS_SCANNER = {
  'os-pkgs': 'vuln',
  'lang-pkgs': 'vuln',
  secret: 'secret',
  config: 'misconfig',
  license: 'license',
  'license-file': 'license',
};

function withRepoDigest(metadata, repoDigest) {
  const rank = (key) => {
    const i = METADATA_KEY_ORDER.indexOf(key);
    return i < 0 ? METADATA_KEY_ORDER.length : i;
  };
  return Object.fromEntries(
    Object.entries({ ...metadata, RepoDigests: [repoDigest] }).sort(([a], [b]) => rank(a) - rank(b)),
  );
}

function filterBySeverity(result, key, severities) {
  if (!result[key]) return;
  result[key] = result[key].filter((finding) => severities.includes(finding.Severity));
  // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- Trivy omits empty finding lists
  if (result[key].length === 0) delete result[key];
}

function filterVulnerabilities(result, keep) {
  if (!result.Vulnerabilities) return;
  result.Vulnerabilities = result.Vulnerabilities.filter(keep);
  if (result.Vulnerabilities.length === 0) delete result.Vulnerabilities;
}

/** trivy-db pkg/types Statuses; a vulnerability without Status is "unknown" (the zero value, omitted in JSON). */
const STATUSES = [
  'unknown',
  'not_affected',
  'affected',
  'fixed',
  'under_investigation',
  'will_not_fix',
  'fix_deferred',
  'end_of_life',
];

/** pkg/flag/vulnerability_flags.go ToOptions: --ignore-unfixed is --ignore-status with every status but "fixed". */
function statusesToIgnore(ctx) {
  const statuses = ctx.opt('ignore-status') ?? [];
  if (!ctx.opt('ignore-unfixed')) return statuses;
  if (statuses.length > 0) {
    logInfo("'--ignore-unfixed' is ignored because '--ignore-status' is specified", '', 'WARN');
    return statuses;
  }
  return STATUSES.filter((status) => status !== 'fixed');
}

/**
 * pkg/result/ignore.go ParseIgnoreFile/parseIgnore: the ignore file (default .trivyignore, relative to the working
 * directory) may be absent; one ID per line, `#` comments, an optional `exp:YYYY-MM-DD` after which the line no longer
 * applies (Prune), a bad date is warned about and the line skipped. The YAML form is not modelled.
 */
function idsToIgnore(ctx) {
  const file = ctx.opt('ignorefile');
  if (!file || !fs.existsSync(file)) return new Set();
  if (/\.ya?ml$/.test(file)) internalError(`${file}: the YAML ignore file format is not modelled`);
  const ids = new Set();
  for (const line of fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const exp = fields.slice(1).find((f) => f.startsWith('exp:'));
    if (exp) {
      const date = exp.slice(4);
      const expiresAt = /^\d{4}-\d{2}-\d{2}$/.test(date) ? Date.parse(`${date}T00:00:00Z`) : NaN;
      if (Number.isNaN(expiresAt)) {
        logInfo('Error while parsing expiration date in .trivyignore file', `err="parsing time \\"${date}\\""`, 'WARN');
        continue;
      }
      if (expiresAt < Date.now()) continue;
    }
    ids.add(fields[0]);
  }
  return ids;
}

// ---------- Packages for --list-all-pkgs (SBOM-ready reports) ----------

const DPKG_TYPES = new Set(['debian', 'ubuntu']);
const RPM_TYPES = new Set([
  'redhat',
  'centos',
  'rocky',
  'alma',
  'amazon',
  'oracle',
  'fedora',
  'photon',
  'cbl-mariner',
  'azurelinux',
  'opensuse',
  'opensuse-leap',
  'opensuse-tumbleweed',
  'sles',
  'slem',
  'suse linux enterprise server',
  'suse linux enterprise micro',
]);

/** "1:2.33.1-0.1" → Epoch 1, Version "2.33.1", Release "0.1": how the dpkg and rpm analyzers fill a Package. */
function splitOsVersion(installed) {
  const epochMatch = /^(\d+):(.*)$/.exec(installed);
  const rest = epochMatch ? epochMatch[2] : installed;
  const dash = rest.lastIndexOf('-');
  return {
    Version: dash > 0 ? rest.slice(0, dash) : rest,
    ...(dash > 0 && { Release: rest.slice(dash + 1) }),
    ...(epochMatch && { Epoch: Number(epochMatch[1]) }),
  };
}

function purlQualifier(purl, name) {
  const query = purl?.split('?')[1];
  return query ? (new URLSearchParams(query).get(name) ?? undefined) : undefined;
}

/** A Package (pkg/fanal/types Package, field order) from what a vulnerability says about its package. */
function packageFromVulnerability(result, vuln) {
  const versionFields =
    result.Class === 'os-pkgs' && (DPKG_TYPES.has(result.Type) || RPM_TYPES.has(result.Type))
      ? splitOsVersion(vuln.InstalledVersion ?? '')
      : { Version: vuln.InstalledVersion };
  const identifier =
    vuln.PkgIdentifier && Object.fromEntries(Object.entries(vuln.PkgIdentifier).filter(([key]) => key !== 'BOMRef'));
  const arch = result.Class === 'os-pkgs' ? purlQualifier(vuln.PkgIdentifier?.PURL, 'arch') : undefined;
  return {
    ID: vuln.PkgID ?? `${vuln.PkgName}@${vuln.InstalledVersion}`,
    Name: vuln.PkgName,
    ...(identifier && { Identifier: identifier }),
    ...versionFields,
    ...(arch && { Arch: arch }),
    ...(vuln.Layer && { Layer: vuln.Layer }),
    ...(vuln.PkgPath && { FilePath: vuln.PkgPath }),
  };
}

/** Unique by package ID and path, sorted by name, version and path as Trivy sorts them. */
function packagesFromVulnerabilities(result) {
  const packages = new Map();
  for (const vuln of result.Vulnerabilities ?? []) {
    const key = `${vuln.PkgID ?? `${vuln.PkgName}@${vuln.InstalledVersion}`}\u0000${vuln.PkgPath ?? ''}`;
    if (!packages.has(key)) packages.set(key, packageFromVulnerability(result, vuln));
  }
  return [...packages.values()].sort(
    (a, b) =>
      byteOrder(a.Name ?? '', b.Name ?? '') ||
      byteOrder(a.Version ?? '', b.Version ?? '') ||
      byteOrder(a.FilePath ?? '', b.FilePath ?? ''),
  );
}

/** Result field order: Target, Class, Type, Packages, Vulnerabilities, … */
function withPackagesListed(result) {
  if (result.Packages || !['os-pkgs', 'lang-pkgs'].includes(result.Class) || !result.Vulnerabilities?.length)
    return result;
  const entries = Object.entries(result);
  const at =
    Math.max(
      entries.findIndex(([key]) => key === 'Type'),
      entries.findIndex(([key]) => key === 'Class'),
    ) + 1;
  return Object.fromEntries([
    ...entries.slice(0, at),
    ['Packages', packagesFromVulnerabilities(result)],
    ...entries.slice(at),
  ]);
}

function shapeReport(ctx, report, ref, digest) {
  report.ArtifactName = ref;
  if (report.Trivy) report.Trivy = { ...report.Trivy, Version: ctx.version };
  if (digest) report.Metadata = withRepoDigest(report.Metadata ?? {}, `${parseImageRef(ref).repo}@${digest}`);
  if (!report.Results) return report;
  // os-pkgs Targets are "<ArtifactName> (<family> <version>)": a replay names the scanned ref, not the fixture's tarball
  const os = report.Metadata?.OS;
  const osSuffix = os && ` (${os.Family} ${os.Name})`;
  for (const result of report.Results) {
    if (osSuffix && result.Class === 'os-pkgs' && result.Target?.endsWith(osSuffix))
      result.Target = `${ref}${osSuffix}`;
  }
  const scanners = ctx.opt('scanners');
  report.Results = report.Results.filter((r) => !CLASS_SCANNER[r.Class] || scanners.includes(CLASS_SCANNER[r.Class]));
  // most fixtures were captured with --list-all-pkgs=false: list the packages their vulnerabilities name
  if (ctx.listAllPkgs) report.Results = report.Results.map(withPackagesListed);
  const ignoredStatuses = statusesToIgnore(ctx);
  const ignoredIds = idsToIgnore(ctx);
  for (const result of report.Results) {
    if (!ctx.listAllPkgs) delete result.Packages;
    filterBySeverity(result, 'Vulnerabilities', ctx.severities);
    filterBySeverity(result, 'Secrets', ctx.severities);
    filterVulnerabilities(result, (v) => !ignoredStatuses.includes(v.Status ?? 'unknown'));
    filterVulnerabilities(result, (v) => !ignoredIds.has(v.VulnerabilityID));
  }
  if (report.Results.length === 0) delete report.Results;
  return report;
}

function tableText(report) {
  const blocks = (report.Results ?? []).map((r) => {
    const vulns = r.Vulnerabilities ?? [];
    const counts = SEVERITIES.map((s) => `${s}: ${vulns.filter((v) => v.Severity === s).length}`).join(', ');
    const title = `${r.Target}${r.Type ? ` (${r.Type})` : ''}`;
    return `\n${title}\n${'='.repeat(title.length)}\nTotal: ${vulns.length} (${counts})\n`;
  });
  return blocks.join('');
}

function sbomText(ctx, ref) {
  const format = ctx.opt('format');
  if (format === 'cyclonedx') {
    const withVulns = ctx.scannersExplicit && ctx.opt('scanners').includes('vuln');
    const name = withVulns
      ? 'trivy-v0.69.3_fluentd-sbom-input_cyclonedx-with-vulns.cdx.json'
      : 'trivy-v0.69.3_fluentd-image_cyclonedx-sbom-only.cdx.json';
    return fs.readFileSync(path.join(TRIVY_FIXTURES, 'sbom', name), 'utf8');
  }
  return goJson({
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: ref,
    documentNamespace: `http://aquasecurity.github.io/trivy/container_image/${ref}-fake`,
    creationInfo: { creators: ['Organization: aquasecurity', `Tool: trivy-${ctx.version}`], created: timestamp() },
    packages: [],
  });
}

const ERRNO_TEXT = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
};

/** `trivy image` errors pass through artifact.Run's "run error:" (0.62+); `trivy convert` returns them unwrapped. */
function writeOutput(ctx, text, chainPrefix = 'run error: ') {
  const output = ctx.opt('output');
  if (!output) {
    process.stdout.write(text);
    return;
  }
  try {
    fs.writeFileSync(output, text);
  } catch (err) {
    const reason = ERRNO_TEXT[err.code] ?? err.message;
    invocation.behaviour = 'output-error';
    fatal(
      adaptChainToVersion(
        `${chainPrefix}unable to write results: failed to create an output file: open ${output}: ${reason}`,
        ctx.version,
      ),
    );
  }
}

function resolveReportPath(report) {
  return path.isAbsolute(report) ? report : path.join(REPORTS_DIR, report);
}

function logScanStart(ctx) {
  if (ctx.opt('scanners').includes('vuln')) logInfo('[vuln] Vulnerability scanning is enabled');
  if (ctx.opt('scanners').includes('secret')) logInfo('[secret] Secret scanning is enabled');
}

async function emitReport(ctx, ref, behaviour) {
  invocation.behaviour = 'report';
  logScanStart(ctx);
  const report = readJson(resolveReportPath(behaviour.report));
  const needsJavaDb = (report.Results ?? []).some((r) => ['jar', 'pom', 'gradle', 'sbt'].includes(r.Type));
  if (needsJavaDb) await prepareDb(ctx, 'java');
  const format = ctx.opt('format');
  if (format === 'cyclonedx' || format === 'spdx-json' || format === 'spdx') {
    writeOutput(ctx, sbomText(ctx, ref));
  } else {
    const shaped = shapeReport(ctx, report, ref, behaviour.digest);
    writeOutput(ctx, format === 'json' ? goJson(shaped) : tableText(shaped));
  }
  exit(0);
}

/** Streams a valid report of about `sizeMB` MiB: real skeleton, many generated vulnerabilities in real shape. */
async function emitHugeReport(ctx, ref, sizeMB) {
  invocation.behaviour = 'huge';
  logScanStart(ctx);
  const skeleton = readJson(path.join(REPORTS_DIR, 'trivy-v0.69.3_alpine-3.10_os-pkgs.json'));
  const {
    Vulnerabilities: [template],
    ...osResult
  } = skeleton.Results[0];
  skeleton.Results = [];
  const shaped = shapeReport(ctx, skeleton, ref);
  shaped.Results = [{ ...osResult, Vulnerabilities: 'VULNS-PLACEHOLDER' }];
  const [head, tail] = goJson(shaped).split('"VULNS-PLACEHOLDER"');
  const target = sizeMB * 1024 * 1024;
  const output = ctx.opt('output');
  const stream = output ? fs.createWriteStream(output) : process.stdout;
  const write = (chunk) => (stream.write(chunk) ? undefined : new Promise((resolve) => stream.once('drain', resolve)));
  let written = head.length + tail.length;
  await write(head + '[\n');
  for (let i = 0; written < target; i++) {
    const vuln = generatedVulnerability(template, i, ctx.severities[i % ctx.severities.length]);
    const chunk = (i === 0 ? '' : ',\n') + '        ' + JSON.stringify(vuln, null, 2).replaceAll('\n', '\n        ');
    written += chunk.length;
    await write(chunk);
  }
  await write('\n      ]' + tail);
  if (output) await new Promise((resolve) => stream.end(resolve));
  exit(0);
}

function generatedVulnerability(template, i, severity) {
  const name = `fake-pkg-${i % 997}`;
  const version = `1.${i % 50}.${i % 7}-r${i % 3}`;
  const id = `CVE-2099-${String(10000 + i)}`;
  return {
    ...template,
    VulnerabilityID: id,
    PkgID: `${name}@${version}`,
    PkgName: name,
    PkgIdentifier: {
      PURL: `pkg:apk/alpine/${name}@${version}?arch=x86_64&distro=3.10.2`,
      UID: i.toString(16).padStart(16, '0'),
    },
    InstalledVersion: version,
    FixedVersion: `1.${(i % 50) + 1}.0-r0`,
    PrimaryURL: `https://avd.aquasec.com/nvd/${id.toLowerCase()}`,
    ...(template.Fingerprint ? { Fingerprint: `sha256:${i.toString(16).padStart(64, '0')}` } : {}),
    Severity: severity,
  };
}

// ---------- `trivy image` ----------

function resolveBehaviour(ctx, ref) {
  const behaviour = ctx.scenario.images?.[ref] ?? ctx.scenario.defaultImage;
  return behaviour && 'sequence' in behaviour ? nthOfSequence(ctx, ref, behaviour.sequence) : behaviour;
}

/** `{ sequence: [a, b] }`: the first scan of the ref behaves as a, the second and later ones as b (e.g. an OOM kill, then success). */
function nthOfSequence(ctx, ref, sequence) {
  const counter = `${ctx.scenario.log ?? path.join(os.tmpdir(), 'fake-trivy')}.${Buffer.from(ref).toString('hex').slice(0, 64)}.count`;
  let count = 0;
  try {
    count = Number(fs.readFileSync(counter, 'utf8')) || 0;
  } catch {
    // first scan of this ref
  }
  fs.writeFileSync(counter, String(count + 1));
  return sequence[Math.min(count, sequence.length - 1)];
}

const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** docker/cli credentials.ConvertToHostname: drop a scheme, keep the host (and port) before the first '/'. */
function convertToHostname(key) {
  const stripped = key.includes('://') ? key.slice(key.indexOf('://') + 3) : key;
  return stripped.split('/')[0];
}

/** docker/cli fileStore.Get: the exact key, else any key whose hostname form equals the one asked for. */
function authConfigFor(auths, key) {
  if (Object.hasOwn(auths, key)) return auths[key];
  return Object.entries(auths).find(([candidate]) => convertToHostname(candidate) === key)?.[1];
}

/** configfile decodeAuth: base64 of "user:password", split at the first ':'. */
function credentialsOf(entry) {
  if (typeof entry?.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? undefined : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return entry?.username || entry?.password
    ? { username: entry.username ?? '', password: entry.password ?? '' }
    : undefined;
}

/**
 * go-containerregistry authn.DefaultKeychain as Trivy uses it: $DOCKER_CONFIG/config.json (else ~/.docker), looked up
 * with "<registry>/<repository>" and then "<registry>"; Docker Hub's registry key is only "https://index.docker.io/v1/"
 * (name.DefaultRegistry → authn.DefaultAuthKey), so "docker.io" / "index.docker.io" keys are never found for it.
 * The first non-empty entry is used.
 */
function dockerConfigHasCredentials(requirement, ref) {
  const { registry, repoPath } = parseImageRef(ref);
  const normalize = (host) =>
    ['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(host) ? 'index.docker.io' : host;
  if (normalize(requirement.registry) !== registry) {
    internalError(
      `requireDockerConfigFor["${ref}"].registry is "${requirement.registry}", but the image's registry is "${registry}"`,
    );
  }
  const dir = process.env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker');
  let auths;
  try {
    auths = readJson(path.join(dir, 'config.json')).auths ?? {};
  } catch {
    return false;
  }
  for (const key of [`${registry}/${repoPath}`, registry === 'index.docker.io' ? DOCKER_HUB_AUTH_KEY : registry]) {
    const credentials = credentialsOf(authConfigFor(auths, key));
    if (credentials)
      return credentials.username === requirement.username && credentials.password === requirement.password;
  }
  return false;
}

/** Waits `delayMs`, or fails with Trivy's timeout texts when --timeout is shorter. */
async function delayWithinTimeout(ctx, delayMs = 0) {
  const timeoutMs = durationMs(ctx.opt('timeout'));
  if (timeoutMs > 0 && delayMs > timeoutMs) {
    await sleep(timeoutMs);
    failWith(timeoutText(ctx.version), 1, 'timeout');
  }
  await sleep(delayMs);
}

async function runImage(ctx, parsed) {
  const downloadOnly = ctx.opt('download-db-only') || ctx.opt('download-java-db-only');
  const targets = parsed.positional;
  if (!downloadOnly && targets.length !== 1) {
    process.stdout.write(COMMANDS.image.help(ctx.specs));
    invocation.behaviour = 'usage-error';
    fatal(
      targets.length === 0 ? 'Require at least 1 argument or --input option' : 'multiple targets cannot be specified',
    );
  }
  const conflict = [
    [
      'download-db-only',
      'download-java-db-only',
      '--download-db-only and --download-java-db-only options can not be specified both',
    ],
    ['download-db-only', 'skip-db-update', '--skip-db-update and --download-db-only options can not be specified both'],
    [
      'download-java-db-only',
      'skip-java-db-update',
      '--skip-java-db-update and --download-java-db-only options can not be specified both',
    ],
  ].find(([a, b]) => ctx.opt(a) && ctx.opt(b));
  if (conflict) {
    invocation.behaviour = 'usage-error';
    fatal(`flag error: unable to convert flags to options: ${conflict[2]}`);
  }
  const format = ctx.opt('format');
  if (!REPORT_FORMATS.includes(format)) {
    invocation.behaviour = 'usage-error';
    fatal(
      `flag error: unable to parse flags: unable to parse flag: invalid argument "${format}" for "--format" flag: must be one of ${goQuotedList(REPORT_FORMATS)}`,
    );
  }
  if (downloadOnly) {
    const kind = ctx.opt('download-db-only') ? 'vuln' : 'java';
    invocation.behaviour = `download-${kind}-db`;
    if (dbNeedsUpdate(readDbMetadata(ctx.cacheDir, kind), kind)) await downloadDb(ctx, kind);
    exit(0);
  }
  const ref = targets[0];
  if (['cyclonedx', 'spdx', 'spdx-json'].includes(format) && !ctx.scannersExplicit) {
    logInfo(
      `"--format ${format}" disables security scanning. Specify "--scanners vuln" explicitly if you want to include vulnerabilities in the "${format}" report.`,
    );
  }
  const serverAddr = ctx.opt('server');
  // A client never opens a vulnerability DB (pkg/commands/artifact/run.go initDB returns before DownloadDB).
  if (serverAddr) checkServerSchema(serverAddr);
  else await prepareDb(ctx, 'vuln');
  const requirement = ctx.scenario.requireDockerConfigFor?.[ref];
  if (requirement && !dockerConfigHasCredentials(requirement, ref)) {
    failWith(imageFailureText(ctx, ref, 'unauthorized-remote'), 1, 'unauthorized');
  }
  const resolved = resolveBehaviour(ctx, ref);
  const behaviour = resolved && 'platforms' in resolved ? childForPlatform(ctx, ref, resolved) : resolved;
  await delayWithinTimeout(ctx, behaviour?.delayMs);
  if (!behaviour) {
    const remoteOnlyEntry = versionAtLeast(ctx.version, '0.62.0')
      ? 'image-not-found-remote-only'
      : 'image-not-found-v058';
    failWith(imageFailureText(ctx, ref, remoteOnlyEntry), 1, 'image-not-found');
  }
  if ('report' in behaviour)
    return serverAddr ? emitClientReport(ctx, ref, behaviour) : emitReport(ctx, ref, behaviour);
  if ('fail' in behaviour) return replayEntry(behaviour.fail, ref);
  if ('fatal' in behaviour)
    return failWith(
      `${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}\tFATAL\tFatal error\t${behaviour.fatal}\n`,
      1,
      'fatal',
    );
  if ('hang' in behaviour) return hang('hang');
  if ('signal' in behaviour) return dieBySignal(behaviour.signal);
  if ('hugeMB' in behaviour) return emitHugeReport(ctx, ref, behaviour.hugeMB);
  return emitBrokenOutput(ctx, behaviour);
}

function emitBrokenOutput(ctx, behaviour) {
  logScanStart(ctx);
  if (behaviour.garbage) {
    invocation.behaviour = 'garbage';
    writeOutput(ctx, 'panic: runtime error: invalid memory address or nil pointer dereference\n<not json>\n');
  } else if (behaviour.truncated) {
    invocation.behaviour = 'truncated';
    const text = fs.readFileSync(
      path.join(REPORTS_DIR, 'real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json'),
      'utf8',
    );
    writeOutput(ctx, text.slice(0, Math.floor(text.length / 2)));
  } else if (behaviour.empty) {
    invocation.behaviour = 'empty';
    writeOutput(ctx, '');
  } else {
    internalError(`unknown image behaviour ${JSON.stringify(behaviour)}`);
  }
  exit(0);
}

function goQuotedList(values) {
  return `[${values.map((v) => JSON.stringify(v)).join(' ')}]`;
}

// ---------- `trivy convert` (pkg/commands/convert/run.go) ----------

const SBOM_FORMATS = ['cyclonedx', 'spdx', 'spdx-json'];
const CONVERT_FLAGS = [
  { name: 'format', short: 'f', kind: 'string', default: 'table', usage: `format (${REPORT_FORMATS.join(', ')})` },
  { name: 'output', short: 'o', kind: 'string', usage: 'output file name' },
  {
    name: 'scanners',
    kind: 'list',
    default: ['vuln', 'secret'],
    usage: 'List of scanners included when generating the json report. Used only for rendering the summary table.',
  },
  {
    name: 'severity',
    short: 's',
    kind: 'list',
    default: SEVERITIES,
    usage: 'severities of security issues to be displayed',
  },
  { name: 'list-all-pkgs', kind: 'bool', usage: 'output all packages in the JSON report regardless of vulnerability' },
];

/** What Go's json.Decoder says about input JSON.parse rejects (the common cases; others get Node's wording). */
function goJsonDecodeError(text, error) {
  const trimmed = text.trimStart();
  if (trimmed === '') return 'EOF';
  if (!/^[{["\-0-9tfn]/.test(trimmed)) return `invalid character '${trimmed[0]}' looking for beginning of value`;
  if (/Unexpected end of JSON input|Unterminated string/.test(error.message)) return 'unexpected EOF';
  return error.message;
}

function goTypeName(value) {
  if (Array.isArray(value)) return 'array';
  return { string: 'string', number: 'number', boolean: 'bool' }[typeof value];
}

function readConvertInput(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    invocation.behaviour = 'convert-error';
    fatal(`file open error: open ${file}: ${ERRNO_TEXT[err.code] ?? err.message}`);
  }
  let report;
  try {
    report = JSON.parse(text);
  } catch (err) {
    invocation.behaviour = 'convert-error';
    fatal(`json decode error: ${goJsonDecodeError(text, err)}`);
  }
  const typeName = goTypeName(report);
  if (typeName) {
    invocation.behaviour = 'convert-error';
    fatal(`json decode error: json: cannot unmarshal ${typeName} into Go value of type types.Report`);
  }
  report ??= {};
  if (!report.ArtifactName && !report.ArtifactType) {
    invocation.behaviour = 'convert-error';
    fatal('AWS and Kubernetes scanning reports are not yet supported');
  }
  return report;
}

async function runConvert(ctx, parsed) {
  invocation.behaviour = 'convert';
  const targets = parsed.positional;
  if (targets.length !== 1) {
    process.stdout.write(COMMANDS.convert.help(ctx.specs));
    invocation.behaviour = 'usage-error';
    fatal(targets.length === 0 ? 'Require at least 1 argument' : 'multiple targets cannot be specified');
  }
  const format = ctx.opt('format');
  if (!REPORT_FORMATS.includes(format)) {
    invocation.behaviour = 'usage-error';
    fatal(
      `flag error: unable to parse flags: unable to parse flag: invalid argument "${format}" for "--format" flag: must be one of ${goQuotedList(REPORT_FORMATS)}`,
    );
  }
  const withVulns = ctx.opt('scanners').includes('vuln');
  if (SBOM_FORMATS.includes(format) && !ctx.scannersExplicit) {
    logInfo(
      `"--format ${format}" disables security scanning. Specify "--scanners vuln" explicitly if you want to include vulnerabilities in the "${format}" report.`,
    );
  }
  const report = readConvertInput(targets[0]);
  for (const result of report.Results ?? []) {
    filterBySeverity(result, 'Vulnerabilities', ctx.severities);
    filterBySeverity(result, 'Secrets', ctx.severities);
  }
  let text;
  if (format === 'cyclonedx') text = goJson(cycloneDxFromReport(ctx, report, withVulns && ctx.scannersExplicit));
  else if (format === 'spdx-json') text = goJson(spdxFromReport(ctx, report));
  else if (format === 'json') text = goJson(report);
  else if (format === 'table') text = tableText(report);
  else internalError(`trivy convert --format ${format} is not modelled`);
  writeOutput(ctx, text, '');
  exit(0);
}

// ---------- SBOM encoding of a report (pkg/sbom/io/encode.go, pkg/sbom/cyclonedx, pkg/sbom/spdx) ----------

/** Language types whose packages hang directly off the root (no per-file application component). */
const AGGREGATING_TYPES = new Set([
  'bitnami',
  'conda-pkg',
  'gemspec',
  'gobinary',
  'jar',
  'julia',
  'node-pkg',
  'python-pkg',
  'rust-binary',
  'rustbinary',
]);
const MAVEN_TYPES = new Set(['jar', 'pom', 'gradle', 'sbt']);
const SPDX_IDS = new Set([
  '0BSD',
  'Apache-2.0',
  'BSD-2-Clause',
  'BSD-3-Clause',
  'CC0-1.0',
  'GPL-2.0-only',
  'GPL-2.0-or-later',
  'GPL-3.0-only',
  'GPL-3.0-or-later',
  'ISC',
  'LGPL-2.1-only',
  'LGPL-2.1-or-later',
  'LGPL-3.0-only',
  'MIT',
  'MPL-2.0',
  'OpenSSL',
  'Python-2.0',
  'Unlicense',
  'Zlib',
]);
/** CycloneDX time format Trivy writes (seconds, explicit +00:00). */
const cdxTimestamp = () => new Date().toISOString().replace(/\.\d+Z$/, '+00:00');

/** Artifact, OS and package nodes of a report: the graph both SBOM formats are written from. */
function sbomGraph(report) {
  const metadata = report.Metadata ?? {};
  const root = { kind: 'root', name: report.ArtifactName ?? '', children: [] };
  const nodes = [];
  for (const result of report.Results ?? []) {
    if (!['os-pkgs', 'lang-pkgs'].includes(result.Class)) continue;
    let parent = root;
    if (result.Class === 'os-pkgs' && metadata.OS) {
      parent = { kind: 'os', name: metadata.OS.Family, version: metadata.OS.Name, result, children: [] };
    } else if (result.Class === 'lang-pkgs' && !AGGREGATING_TYPES.has(result.Type)) {
      parent = { kind: 'application', name: result.Target, result, children: [] };
    }
    if (parent !== root) {
      root.children.push(parent);
      nodes.push(parent);
    }
    for (const pkg of result.Packages ?? []) {
      const node = { kind: 'library', pkg, result, children: [] };
      parent.children.push(node);
      nodes.push(node);
    }
  }
  return { root, nodes };
}

/** pkg:oci purl of the image when a repo digest is known (as in the Trivy 0.48 fixture). */
function ociPurl(metadata) {
  const repoDigest = metadata.RepoDigests?.[0];
  if (!repoDigest) return undefined;
  const [repo, digest] = repoDigest.split('@');
  const { registry, repoPath } = parseImageRef(`${repo}@${digest}`);
  const name = repoPath.slice(repoPath.lastIndexOf('/') + 1);
  const arch = metadata.ImageConfig?.architecture || 'amd64';
  return `pkg:oci/${name}@${encodeURIComponent(digest)}?arch=${encodeURIComponent(arch)}&repository_url=${encodeURIComponent(`${registry}/${repoPath}`)}`;
}

const property = (name, value) => ({ name: `aquasecurity:trivy:${name}`, value: String(value) });
const sortedProperties = (properties) =>
  properties.sort((a, b) => byteOrder(a.name, b.name) || byteOrder(a.value, b.value));

function libraryVersion(pkg) {
  return pkg.Release ? `${pkg.Version}-${pkg.Release}` : pkg.Version;
}

function cdxLicenses(pkg) {
  if (!pkg.Licenses?.length) return undefined;
  return pkg.Licenses.map((license) => ({ license: SPDX_IDS.has(license) ? { id: license } : { name: license } }));
}

function cdxLibrary(node, bomRef) {
  const { pkg, result } = node;
  const maven = MAVEN_TYPES.has(result.Type) && pkg.Name?.includes(':');
  const [group, name] = maven
    ? [pkg.Name.slice(0, pkg.Name.lastIndexOf(':')), pkg.Name.slice(pkg.Name.lastIndexOf(':') + 1)]
    : [undefined, pkg.Name];
  const properties = [
    pkg.FilePath && property('FilePath', pkg.FilePath),
    pkg.Layer?.DiffID && property('LayerDiffID', pkg.Layer.DiffID),
    pkg.Layer?.Digest && property('LayerDigest', pkg.Layer.Digest),
    pkg.ID && property('PkgID', pkg.ID),
    result.Type && property('PkgType', result.Type),
    pkg.SrcEpoch && property('SrcEpoch', pkg.SrcEpoch),
    pkg.SrcName && property('SrcName', pkg.SrcName),
    pkg.SrcRelease && property('SrcRelease', pkg.SrcRelease),
    pkg.SrcVersion && property('SrcVersion', pkg.SrcVersion),
  ].filter(Boolean);
  const purl = pkg.Identifier?.PURL;
  return {
    'bom-ref': bomRef,
    type: 'library',
    ...(pkg.Maintainer && { supplier: { name: pkg.Maintainer } }),
    ...(group && { group }),
    name,
    ...(pkg.Version !== undefined && { version: libraryVersion(pkg) }),
    ...(cdxLicenses(pkg) && { licenses: cdxLicenses(pkg) }),
    ...(purl && { purl }),
    ...(properties.length > 0 && { properties: sortedProperties(properties) }),
  };
}

const CVSS_METHODS = [
  ['V2', 'CVSSv2'],
  ['V3', 'CVSSv3'],
  ['V40', 'CVSSv4'],
];
const SEVERITY_NAMES = ['unknown', 'low', 'medium', 'high', 'critical'];

function severityOfScore(score, v2) {
  if (v2) return score >= 7 ? 'high' : score >= 4 ? 'medium' : 'low';
  return score >= 9 ? 'critical' : score >= 7 ? 'high' : score >= 4 ? 'medium' : score > 0 ? 'low' : 'none';
}

/** One rating per source: a CVSS rating per vector it has, else the vendor severity alone (fixture: fluentd with-vulns). */
function cdxRatings(vuln) {
  const sources = [...new Set([...Object.keys(vuln.VendorSeverity ?? {}), ...Object.keys(vuln.CVSS ?? {})])].sort(
    byteOrder,
  );
  return sources.flatMap((source) => {
    const cvss = vuln.CVSS?.[source] ?? {};
    const ratings = CVSS_METHODS.filter(([key]) => cvss[`${key}Score`] !== undefined).map(([key, method]) => ({
      source: { name: source },
      score: cvss[`${key}Score`],
      severity: severityOfScore(cvss[`${key}Score`], key === 'V2'),
      method: key === 'V3' && cvss.V3Vector?.startsWith('CVSS:3.1/') ? 'CVSSv31' : method,
      vector: cvss[`${key}Vector`],
    }));
    return ratings.length > 0
      ? ratings
      : [{ source: { name: source }, severity: SEVERITY_NAMES[vuln.VendorSeverity?.[source] ?? 0] }];
  });
}

function cdxVulnerabilities(report, refOfPackage) {
  const byId = new Map();
  for (const result of report.Results ?? []) {
    for (const vuln of result.Vulnerabilities ?? []) {
      const ref = refOfPackage(result, vuln);
      if (!ref) continue;
      const affects = { ref, versions: [{ version: vuln.InstalledVersion, status: 'affected' }] };
      const known = byId.get(vuln.VulnerabilityID);
      if (known) {
        known.affects.push(affects);
        continue;
      }
      byId.set(vuln.VulnerabilityID, {
        id: vuln.VulnerabilityID,
        ...(vuln.DataSource && { source: { name: vuln.DataSource.ID, url: vuln.DataSource.URL } }),
        ratings: cdxRatings(vuln),
        ...(vuln.CweIDs?.length && { cwes: vuln.CweIDs.map((id) => Number(id.replace(/^CWE-/, ''))) }),
        ...(vuln.Description && { description: vuln.Description }),
        ...(vuln.FixedVersion && { recommendation: `Upgrade ${vuln.PkgName} to version ${vuln.FixedVersion}` }),
        advisories: [vuln.PrimaryURL, ...(vuln.References ?? [])].filter(Boolean).map((url) => ({ url })),
        ...(vuln.PublishedDate && { published: vuln.PublishedDate.replace(/(\.\d+)?Z$/, '+00:00') }),
        ...(vuln.LastModifiedDate && { updated: vuln.LastModifiedDate.replace(/(\.\d+)?Z$/, '+00:00') }),
        affects: [affects],
      });
    }
  }
  return [...byId.values()];
}

/** CycloneDX 1.6 as Trivy 0.69 writes it (shape of fixtures/trivy/sbom/trivy-v0.69.3_fluentd-*.cdx.json). */
function cycloneDxFromReport(ctx, report, withVulns) {
  const metadata = report.Metadata ?? {};
  const { root, nodes } = sbomGraph(report);
  const purl = ociPurl(metadata);
  // core.BOM bomRef: the PURL when it is unique in the BOM, else (and without one) a random UUID for every occurrence
  const refs = new Map([[root, purl ?? randomUUID()]]);
  const purlOf = (node) => (node.kind === 'library' ? node.pkg.Identifier?.PURL : undefined);
  const purlCount = new Map();
  for (const node of nodes) if (purlOf(node)) purlCount.set(purlOf(node), (purlCount.get(purlOf(node)) ?? 0) + 1);
  for (const node of nodes)
    refs.set(node, purlOf(node) && purlCount.get(purlOf(node)) === 1 ? purlOf(node) : randomUUID());
  const rootProperties = sortedProperties(
    [
      ...(metadata.DiffIDs ?? []).map((id) => property('DiffID', id)),
      metadata.ImageID && property('ImageID', metadata.ImageID),
      metadata.Reference && property('Reference', metadata.Reference),
      ...(metadata.RepoDigests ?? []).map((digest) => property('RepoDigest', digest)),
      ...(metadata.RepoTags ?? []).map((tag) => property('RepoTag', tag)),
      report.SchemaVersion !== undefined && property('SchemaVersion', report.SchemaVersion),
      metadata.Size !== undefined && property('Size', metadata.Size),
    ].filter(Boolean),
  );
  const rootComponent = {
    'bom-ref': refs.get(root),
    type: report.ArtifactType === 'container_image' ? 'container' : 'application',
    name: root.name,
    ...(purl && { purl }),
    ...(rootProperties.length > 0 && { properties: rootProperties }),
  };
  const components = nodes
    .map((node) => {
      if (node.kind === 'library') return cdxLibrary(node, refs.get(node));
      return {
        'bom-ref': refs.get(node),
        type: node.kind === 'os' ? 'operating-system' : 'application',
        name: node.name,
        ...(node.version !== undefined && { version: node.version }),
        properties: [property('Class', node.result.Class), property('Type', node.result.Type)],
      };
    })
    .sort((a, b) => byteOrder(a['bom-ref'], b['bom-ref']));
  const dependencies = [root, ...nodes]
    .map((node) => ({ ref: refs.get(node), dependsOn: node.children.map((child) => refs.get(child)).sort(byteOrder) }))
    .sort((a, b) => byteOrder(a.ref, b.ref));
  const refOfPackage = (result, vuln) =>
    nodes.find(
      (node) =>
        node.kind === 'library' &&
        node.result === result &&
        node.pkg.ID === vuln.PkgID &&
        (node.pkg.FilePath ?? '') === (vuln.PkgPath ?? ''),
    ) ?? undefined;
  return {
    $schema: 'http://cyclonedx.org/schema/bom-1.6.schema.json',
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: cdxTimestamp(),
      tools: {
        components: [
          {
            type: 'application',
            manufacturer: { name: 'Aqua Security Software Ltd.' },
            group: 'aquasecurity',
            name: 'trivy',
            version: ctx.version,
          },
        ],
      },
      component: rootComponent,
    },
    components,
    dependencies,
    vulnerabilities: withVulns
      ? cdxVulnerabilities(report, (result, vuln) => {
          const node = refOfPackage(result, vuln);
          return node && refs.get(node);
        })
      : [],
  };
}

/** SPDXRef-<Kind>-<hash>: Trivy derives the suffix from a hash of the element. */
function spdxId(kind, ...parts) {
  return `SPDXRef-${kind}-${createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 16)}`;
}

/** A small SPDX 2.3 JSON document of the same graph. */
function spdxFromReport(ctx, report) {
  const metadata = report.Metadata ?? {};
  const { root, nodes } = sbomGraph(report);
  const purl = ociPurl(metadata);
  const purlRef = (locator) => [
    { referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: locator },
  ];
  const ids = new Map([
    [root, spdxId(report.ArtifactType === 'container_image' ? 'ContainerImage' : 'Application', root.name)],
  ]);
  const packages = [
    {
      name: root.name,
      SPDXID: ids.get(root),
      downloadLocation: 'NONE',
      ...(purl && { externalRefs: purlRef(purl) }),
      primaryPackagePurpose: report.ArtifactType === 'container_image' ? 'CONTAINER' : 'APPLICATION',
    },
  ];
  for (const node of nodes) {
    if (node.kind === 'library') {
      const { pkg } = node;
      ids.set(node, spdxId('Package', node.result.Target, pkg.ID ?? pkg.Name, pkg.FilePath ?? ''));
      const license = pkg.Licenses?.length ? pkg.Licenses.join(' AND ') : 'NONE';
      packages.push({
        name: pkg.Name,
        SPDXID: ids.get(node),
        versionInfo: libraryVersion(pkg),
        supplier: pkg.Maintainer ? `Organization: ${pkg.Maintainer}` : 'NOASSERTION',
        downloadLocation: 'NONE',
        filesAnalyzed: false,
        licenseConcluded: license,
        licenseDeclared: license,
        ...(pkg.Identifier?.PURL && { externalRefs: purlRef(pkg.Identifier.PURL) }),
        primaryPackagePurpose: 'LIBRARY',
      });
    } else {
      ids.set(node, spdxId(node.kind === 'os' ? 'OperatingSystem' : 'Application', node.name));
      packages.push({
        name: node.name,
        SPDXID: ids.get(node),
        ...(node.version !== undefined && { versionInfo: node.version }),
        downloadLocation: 'NONE',
        primaryPackagePurpose: node.kind === 'os' ? 'OPERATING-SYSTEM' : 'APPLICATION',
      });
    }
  }
  const relationships = [
    { spdxElementId: 'SPDXRef-DOCUMENT', relatedSpdxElement: ids.get(root), relationshipType: 'DESCRIBES' },
  ];
  for (const node of [root, ...nodes]) {
    for (const child of node.children)
      relationships.push({
        spdxElementId: ids.get(node),
        relatedSpdxElement: ids.get(child),
        relationshipType: 'CONTAINS',
      });
  }
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: root.name,
    documentNamespace: `http://aquasecurity.github.io/trivy/${report.ArtifactType ?? 'container_image'}/${root.name}-${randomUUID()}`,
    creationInfo: { creators: ['Organization: aquasecurity', `Tool: trivy-${ctx.version}`], created: timestamp() },
    packages,
    relationships,
  };
}

// ---------- client/server mode (trivy server; trivy image --server URL) ----------
//
// Modelled on aquasecurity/trivy v0.69.3. Server: pkg/commands/server/run.go (the vulnerability DB is prepared as
// operation.DownloadDB does, then pkg/rpc/server/listen.go serves /healthz → "ok", /version → VersionInfo JSON, and
// the Twirp services under /twirp/, each behind withToken: a wrong or missing token is HTTP 401 with the Twirp JSON
// error {"code":"unauthenticated","msg":"invalid token"}). The layer cache is the server's: MissingBlobs, PutBlob,
// PutArtifact (pkg/rpc/server/server.go CacheServer) and Scan, which applies the layers (pkg/fanal/applier: a
// missing one is "layer cache missing: KEY") and detects (the scenario's report stands for detection). Like the real
// fs backend (one BoltDB file under <cache-dir>/fanal) it survives the process: here one JSON file per entry under
// <cache-dir>/fanal/stand-in/, so a new server on the same folder is warm. The stand-ins speak Twirp's JSON
// encoding; real clients send protobuf, which changes nothing the scanner sees.
// Client: pkg/fanal/artifact/image/image.go Inspect: fetch manifest and config (scenario.manifestMs), compute the
// cache keys of the image's layers (diff ID + analyzer versions, pkg/cache/key.go CalcKey), ask MissingBlobs, download
// and analyse only the missing layers (scenario.layerMs each, --parallel at a time; listed in the invocation log),
// PutBlob each, PutArtifact when the image is new, then Scan (pkg/rpc/client), and write the report as a local scan
// does. Errors travel as Twirp errors wrapped by the client's chain (see CLIENT_CHAIN).

const SERVER_FLAGS = [
  { name: 'listen', kind: 'string', default: 'localhost:4954', usage: 'listen address in server mode' },
  { name: 'token', kind: 'string', usage: 'for authentication in client/server mode' },
  { name: 'token-header', kind: 'string', default: 'Trivy-Token', usage: 'specify a header name for token' },
  { name: 'cache-backend', kind: 'string', default: 'fs', usage: '[EXPERIMENTAL] cache backend' },
  { name: 'skip-db-update', kind: 'bool', usage: 'skip updating vulnerability database' },
  { name: 'download-db-only', kind: 'bool', usage: "download/update vulnerability database but don't run a scan" },
  { name: 'no-progress', kind: 'bool', usage: 'suppress progress bar' },
  {
    name: 'db-repository',
    kind: 'list',
    default: ['mirror.gcr.io/aquasec/trivy-db:2', 'ghcr.io/aquasecurity/trivy-db:2'],
    usage: 'OCI repository(ies) to retrieve trivy-db in order of priority',
  },
];

const CACHE_SERVICE = '/twirp/trivy.cache.v1.Cache/';
const SCANNER_SERVICE = '/twirp/trivy.scanner.v1.Scanner/';

/** The stand-in's analyzer versions: dpkg went 5 → 6 in v0.69.0 (trivy-incremental-facts.md §3), so keys change. */
function analyzerVersions(version) {
  return { apk: 2, dpkg: versionAtLeast(version, '0.69.0') ? 6 : 5, rpm: 1, jar: 1, 'node-pkg': 1 };
}

/** pkg/cache/key.go CalcKey, reduced: sha256 of the ID and the analyzer versions. */
function cacheKey(id, version) {
  const base = JSON.stringify({ ID: id, AnalyzerVersions: analyzerVersions(version) });
  return `sha256:${createHash('sha256').update(base).digest('hex')}`;
}

function layerStore(cacheDir) {
  const dir = path.join(cacheDir, 'fanal', 'stand-in');
  const file = (kind, key) => path.join(dir, `${kind}-${key.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
  return {
    has: (kind, key) => fs.existsSync(file(kind, key)),
    get: (kind, key) => {
      try {
        return readJson(file(kind, key));
      } catch {
        return undefined;
      }
    },
    put: (kind, key, value) => {
      fs.mkdirSync(dir, { recursive: true });
      writeFileAtomic(file(kind, key), JSON.stringify(value));
    },
  };
}

function twirpError(res, status, code, msg) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ code, msg }));
}

/** Counts crashes over server processes (a file beside the invocation log), for `server.crash.times`. */
function crashesSoFar(ctx) {
  const file = `${ctx.scenario.log ?? path.join(os.tmpdir(), 'fake-trivy')}.server-crashes`;
  let count = 0;
  try {
    count = Number(fs.readFileSync(file, 'utf8')) || 0;
  } catch {
    // none yet
  }
  return { count, add: () => fs.writeFileSync(file, String(count + 1)) };
}

async function runServer(ctx) {
  invocation.behaviour = 'server';
  // Written at the start (a server never exits on its own), so that tests know its pid even if it never listens.
  writeInvocationLog({ listening: ctx.opt('listen') });
  const behaviour = ctx.scenario.server ?? {};
  const meta = readDbMetadata(ctx.cacheDir, 'vuln');
  if (ctx.opt('skip-db-update') && !meta) {
    // operation.DownloadDB: NeedsUpdate's error, wrapped "database error:", returned by server.Run as it is
    logInfo('[vulndb] The first run cannot skip downloading DB', '', 'ERROR');
    invocation.behaviour = 'db-skip-update-first-run';
    fatal('database error: --skip-db-update cannot be specified on the first run');
  }
  if (!ctx.opt('skip-db-update') && dbNeedsUpdate(meta, 'vuln')) await downloadDb(ctx, 'vuln');
  if (ctx.opt('download-db-only')) exit(0);
  const listen = ctx.opt('listen');
  const colon = listen.lastIndexOf(':');
  const [host, port] = [listen.slice(0, colon) || '0.0.0.0', Number(listen.slice(colon + 1))];
  if (behaviour.startDelayMs) await sleep(behaviour.startDelayMs);
  const store = layerStore(ctx.cacheDir);
  let requests = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      requests += req.url.startsWith('/twirp/') ? 1 : 0;
      const crash = behaviour.crash;
      if (crash && req.url.startsWith('/twirp/') && requests === crash.onRequest) {
        const crashes = crashesSoFar(ctx);
        if (crashes.count < (crash.times ?? 1)) {
          crashes.add();
          process.exit(2); // as a crash: the request in flight gets no answer
        }
      }
      serveRequest(ctx, store, req, res, Buffer.concat(chunks).toString('utf8'));
    });
  });
  server.on('error', (err) => {
    invocation.behaviour = 'listen-error';
    const why = err.code === 'EADDRINUSE' ? 'bind: address already in use' : err.message;
    fatal(`server error: listen tcp ${listen}: ${why}`);
  });
  await new Promise((resolve) => server.listen(port, host, resolve));
  logInfo(`Listening ${listen}...`);
  return new Promise(() => {}); // serves until killed
}

function serveRequest(ctx, store, req, res, body) {
  if (req.method === 'GET' && req.url === '/healthz') return res.end('ok');
  if (req.method === 'GET' && req.url === '/version') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    const db = readDbMetadata(ctx.cacheDir, 'vuln');
    return res.end(JSON.stringify({ Version: ctx.version, ...(db ? { VulnerabilityDB: db } : {}) }) + '\n');
  }
  const token = ctx.opt('token');
  const isTwirp = req.url.startsWith(CACHE_SERVICE) || req.url.startsWith(SCANNER_SERVICE);
  if (!isTwirp || req.method !== 'POST') return twirpError(res, 404, 'bad_route', `no handler for path "${req.url}"`);
  if (token && req.headers[ctx.opt('token-header').toLowerCase()] !== token)
    return twirpError(res, 401, 'unauthenticated', 'invalid token');
  let input;
  try {
    input = JSON.parse(body || '{}');
  } catch {
    return twirpError(res, 400, 'malformed', 'the json request could not be decoded');
  }
  const method = req.url.slice(req.url.lastIndexOf('/') + 1);
  const reply = (value) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(typeof value === 'string' ? value : JSON.stringify(value));
  };
  switch (method) {
    case 'MissingBlobs':
      return reply({
        missing_artifact: !store.has('artifact', input.artifact_id ?? ''),
        missing_blob_ids: (input.blob_ids ?? []).filter((key) => !store.has('blob', key)),
      });
    case 'PutBlob':
      store.put('blob', input.diff_id, input.blob_info);
      return reply({});
    case 'PutArtifact':
      store.put('artifact', input.artifact_id, input.artifact_info);
      return reply({});
    case 'Scan':
      return serveScan(store, input, reply, res);
    default:
      return twirpError(res, 404, 'bad_route', `no handler for path "${req.url}"`);
  }
}

/** Scan: every layer must be in the cache; the findings are those of the report its top-most reporting layer names. */
const reportResponses = new Map();
function serveScan(store, input, reply, res) {
  let reportFile;
  for (const key of input.blob_ids ?? []) {
    const blob = store.get('blob', key);
    if (!blob?.SchemaVersion)
      return twirpError(
        res,
        500,
        'internal',
        `failed scan, ${input.target}: failed to apply layers: layer cache missing: ${key}`,
      );
    reportFile = blob.Report ?? reportFile;
  }
  if (!reportFile) return reply({ Report: { SchemaVersion: 2 } });
  if (!reportResponses.has(reportFile))
    reportResponses.set(reportFile, `{"Report":${fs.readFileSync(reportFile, 'utf8')}}`);
  return reply(reportResponses.get(reportFile));
}

/** pkg/flag/remote_flags.go validateServerSchema, as the image command reports it ("flag error: …"). */
function checkServerSchema(serverAddr) {
  let scheme;
  try {
    scheme = new URL(serverAddr).protocol.replace(/:$/, '');
  } catch {
    scheme = '';
  }
  if (scheme === 'http' || scheme === 'https') return;
  invocation.behaviour = 'usage-error';
  fatal(
    scheme === ''
      ? 'flag error: server address must include HTTP or HTTPS schema (e.g., http://localhost:4954 or https://localhost:4954)'
      : `flag error: server address must use HTTP or HTTPS schema, got '${scheme}' (e.g., use http://localhost:4954 instead of ${serverAddr})`,
  );
}

/** The client's chain above each call's error (image.go Inspect/inspect, pkg/scan/service.go, pkg/commands/artifact). */
const CLIENT_RUN = 'run error: image scan error: scan error: scan failed: ';
const CLIENT_CHAIN = {
  MissingBlobs: () => `${CLIENT_RUN}failed analysis: unable to get missing layers: unable to fetch missing layers: `,
  PutBlob: (key) =>
    `${CLIENT_RUN}failed analysis: analyze error: pipeline error: failed to store layer: ${key} in cache: unable to store cache on the server: `,
  PutArtifact: () =>
    `${CLIENT_RUN}failed analysis: analyze error: unable to analyze config: failed to put image info into the cache: unable to store cache on the server: `,
  Scan: () => `${CLIENT_RUN}scan failed: failed to detect vulnerabilities via RPC: `,
};

/** twirp's generated client (rpc/cache/service.twirp.go, rpc/scanner/service.twirp.go): transport errors and non-200 answers as twirp errors. */
function twirpCall(ctx, service, method, input) {
  const url = `${ctx.opt('server').replace(/\/+$/, '')}/twirp/${service}/${method}`;
  const token = ctx.opt('token');
  const body = JSON.stringify(input);
  return new Promise((resolve) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          ...(token ? { [ctx.opt('token-header')]: token } : {}),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode === 200) return resolve({ ok: true, value: JSON.parse(text) });
          let error;
          try {
            const parsed = JSON.parse(text);
            if (!parsed.code) throw new Error('no code');
            error = `twirp error ${parsed.code}: ${parsed.msg}`;
          } catch {
            const code =
              {
                401: 'unauthenticated',
                403: 'permission_denied',
                404: 'bad_route',
                429: 'resource_exhausted',
                502: 'unavailable',
                503: 'unavailable',
                504: 'unavailable',
              }[res.statusCode] ?? 'unknown';
            error = `twirp error ${code}: Error from intermediary with HTTP status code ${res.statusCode} "${http.STATUS_CODES[res.statusCode]}"`;
          }
          resolve({ ok: false, error });
        });
      },
    );
    req.on('error', (err) => {
      const { host } = new URL(url);
      const cause =
        err.code === 'ECONNREFUSED'
          ? `dial tcp ${host}: connect: connection refused`
          : err.code === 'ECONNRESET' || err.message === 'socket hang up'
            ? 'EOF'
            : err.message;
      resolve({ ok: false, error: `twirp error internal: failed to do request: Post "${url}": ${cause}` });
    });
    req.end(body);
  });
}

function clientFailure(chain, error) {
  invocation.behaviour = error.includes('unauthenticated') ? 'server-unauthenticated' : 'server-error';
  fatal(`${chain}${error}`);
}

/** The layers of an image (scenario `layers`, shared by naming the same diff IDs), else one of its own. */
function imageLayers(ref, behaviour) {
  if (behaviour.layers?.length) return behaviour.layers;
  return [`sha256:${createHash('sha256').update(`layer of ${ref}`).digest('hex')}`];
}

function layerMs(ctx, diffId) {
  const setting = ctx.scenario.layerMs;
  if (typeof setting === 'number') return setting;
  return setting?.[diffId] ?? setting?.default ?? 0;
}

async function emitClientReport(ctx, ref, behaviour) {
  invocation.behaviour = 'client-report';
  logScanStart(ctx);
  const reportFile = resolveReportPath(behaviour.report);
  const report = readJson(reportFile);
  const needsJavaDb = (report.Results ?? []).some((r) => ['jar', 'pom', 'gradle', 'sbt'].includes(r.Type));
  if (needsJavaDb) await prepareDb(ctx, 'java'); // jar analysis is the client's (initJavaDB)
  await sleep(ctx.scenario.manifestMs ?? 0); // manifest and config
  const layers = imageLayers(ref, behaviour);
  const keyOf = new Map(layers.map((diffId) => [cacheKey(diffId, ctx.version), diffId]));
  const imageId = `sha256:${createHash('sha256')
    .update(`config of ${behaviour.digest ?? ref}`)
    .digest('hex')}`;
  const artifactKey = cacheKey(imageId, ctx.version);
  const missing = await twirpCall(ctx, 'trivy.cache.v1.Cache', 'MissingBlobs', {
    artifact_id: artifactKey,
    blob_ids: [...keyOf.keys()],
  });
  if (!missing.ok) clientFailure(CLIENT_CHAIN.MissingBlobs(), missing.error);
  const missingKeys = missing.value.missing_blob_ids ?? [];
  invocation.layers = {
    downloaded: missingKeys.map((key) => keyOf.get(key)),
    cached: [...keyOf.keys()].filter((key) => !missingKeys.includes(key)).map((key) => keyOf.get(key)),
  };
  const top = layers.at(-1);
  // parallel.NewPipeline(--parallel): at most that many layers downloaded and analysed at once
  const queue = [...missingKeys];
  const worker = async () => {
    for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
      const diffId = keyOf.get(key);
      await sleep(layerMs(ctx, diffId));
      const blob = { SchemaVersion: 2, DiffID: diffId, ...(diffId === top ? { Report: reportFile } : {}) };
      const put = await twirpCall(ctx, 'trivy.cache.v1.Cache', 'PutBlob', { diff_id: key, blob_info: blob });
      if (!put.ok) clientFailure(CLIENT_CHAIN.PutBlob(key), put.error);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, ctx.opt('parallel')) }, worker));
  if (missing.value.missing_artifact) {
    const put = await twirpCall(ctx, 'trivy.cache.v1.Cache', 'PutArtifact', {
      artifact_id: artifactKey,
      artifact_info: { SchemaVersion: 1, ImageID: imageId },
    });
    if (!put.ok) clientFailure(CLIENT_CHAIN.PutArtifact(), put.error);
  }
  const scan = await twirpCall(ctx, 'trivy.scanner.v1.Scanner', 'Scan', {
    target: ref,
    artifact_id: artifactKey,
    blob_ids: [...keyOf.keys()],
    options: { scanners: ctx.opt('scanners') },
  });
  if (!scan.ok) clientFailure(CLIENT_CHAIN.Scan(), scan.error);
  const shaped = shapeReport(ctx, scan.value.Report, ref, behaviour.digest);
  writeOutput(ctx, ctx.opt('format') === 'json' ? goJson(shaped) : tableText(shaped));
  exit(0);
}

// ---------- main ----------

function loadScenario() {
  const file = process.env.FAKE_TRIVY_SCENARIO;
  if (!file) return {};
  try {
    return readJson(file);
  } catch (err) {
    return internalError(`cannot read scenario ${file}: ${err.message}`);
  }
}

/** os.UserCacheDir()/trivy; $TRIVY_CACHE_DIR is handled like every other TRIVY_* variable. */
function defaultCacheDir() {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'trivy');
}

/** Trivy maps unknown --severity values to UNKNOWN with a warning (pkg/flag/report_flags.go toSeverity). */
function normalizeSeverities(values) {
  return values.map((value) => {
    const severity = value.toUpperCase();
    if (SEVERITIES.includes(severity)) return severity;
    logInfo('Unknown severity option', `err="unknown severity: ${value}"`, 'WARN');
    return 'UNKNOWN';
  });
}

function makeContext(scenario, specs, parsed) {
  const version = scenario.version ?? DEFAULT_VERSION;
  applyEnvFallback(parsed, specs);
  quiet = Boolean(flagValue(parsed, specs, 'quiet'));
  applyConfigFile(parsed, specs);
  const opt = (name) => flagValue(parsed, specs, name);
  return {
    scenario,
    version,
    specs,
    opt,
    cacheDir: opt('cache-dir') || defaultCacheDir(),
    severities: normalizeSeverities(opt('severity') ?? SEVERITIES),
    // the default flipped to true in v0.67
    listAllPkgs: 'list-all-pkgs' in parsed.values ? parsed.values['list-all-pkgs'] : versionAtLeast(version, '0.67.0'),
    scannersExplicit: 'scanners' in parsed.values,
  };
}

const COMMANDS = {
  image: {
    flags: (version) => [...IMAGE_FLAGS.filter((s) => !s.since || versionAtLeast(version, s.since)), ...GLOBAL_FLAGS],
    help: (specs) => helpText('trivy image [flags] IMAGE_NAME', 'Scan a container image', specs),
    run: (ctx, parsed) => runImage(ctx, parsed),
  },
  convert: {
    flags: () => [...CONVERT_FLAGS, ...GLOBAL_FLAGS],
    help: (specs) =>
      helpText('trivy convert [flags] RESULT_JSON', 'Convert Trivy JSON report into a different format', specs),
    run: (ctx, parsed) => runConvert(ctx, parsed),
  },
  version: {
    flags: () => [VERSION_FORMAT_FLAG, ...GLOBAL_FLAGS],
    help: (specs) => helpText('trivy version [flags]', 'Print the version', specs),
    run: (ctx) => showVersion(ctx, ctx.opt('format')),
  },
};
COMMANDS.server = {
  flags: () => [...SERVER_FLAGS, ...GLOBAL_FLAGS],
  help: (specs) => helpText('trivy server [flags]', 'Server mode', specs),
  run: (ctx, parsed) => runServer(ctx, parsed),
};
COMMANDS.s = COMMANDS.server;
COMMANDS.i = COMMANDS.image;
COMMANDS.conv = COMMANDS.convert;

async function runSubcommand(scenario, command, tokens) {
  const specs = command.flags(scenario.version ?? DEFAULT_VERSION);
  let parsed;
  try {
    parsed = parseFlags(tokens, specs);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    invocation.behaviour = 'usage-error';
    return subcommandFlagFailure(err, command.help(specs));
  }
  if (parsed.values.help) {
    invocation.behaviour = 'help';
    process.stdout.write(command.help(specs));
    exit(0);
  }
  return command.run(makeContext(scenario, specs, parsed), parsed);
}

function runRoot(scenario, tokens) {
  const specs = [...ROOT_FLAGS, ...GLOBAL_FLAGS];
  let parsed;
  try {
    parsed = parseFlags(tokens, specs);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    invocation.behaviour = 'usage-error';
    return rootCommandFailure(err.message);
  }
  const ctx = makeContext(scenario, specs, parsed);
  if (ctx.opt('version')) return showVersion(ctx, ctx.opt('format'));
  invocation.behaviour = 'help';
  process.stdout.write(
    `Scanner for vulnerabilities in container images, file systems, and Git repositories, as well as for configuration issues and hard-coded secrets\n\n${ROOT_USAGE}`,
  );
  exit(0);
}

async function main() {
  const scenario = loadScenario();
  logPath = scenario.log;
  const { command, rest } = splitSubcommand(process.argv.slice(2));
  if (command === undefined) return runRoot(scenario, rest);
  if (Object.hasOwn(COMMANDS, command)) return runSubcommand(scenario, COMMANDS[command], rest);
  invocation.behaviour = 'usage-error';
  return rootCommandFailure(`unknown command "${command}" for "trivy"`);
}

main().catch((err) => {
  if (err instanceof ExitRequest) return flushThenExit(err.code);
  process.stderr.write(`fake-trivy: ${err?.stack ?? err}\n`);
  invocation.behaviour = 'internal-error';
  writeInvocationLog({ endedAt: new Date().toISOString(), exitCode: 99 });
  flushThenExit(99);
});
