// Bundles the CLI (its entry point, src/main.ts) into one self-contained file, and the Trivy launcher it starts
// (src/trivy/launcher/main.ts) into a second one beside it: dist/ephor-scanner.mjs and dist/trivy-launcher.mjs are
// what the container image ships.
import { build } from 'esbuild';
import { chmodSync, readFileSync, rmSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = 'dist/ephor-scanner.mjs';

rmSync('dist', { recursive: true, force: true }); // nothing stale ships beside the bundle

await build({
  entryPoints: { 'ephor-scanner': 'src/main.ts', 'trivy-launcher': 'src/trivy/launcher/main.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: false,
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  define: { __EPHOR_SCANNER_VERSION__: JSON.stringify(pkg.version) },
  // pino, commander and client-node's dependencies are CommonJS and call require() for Node built-ins.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
  },
});
chmodSync(outfile, 0o755);
