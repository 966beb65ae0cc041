import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SETTINGS } from '../../src/config/settings.js';
import { withSettingsTable } from '../../src/config/settings-table.js';
import { REPO_ROOT } from '../support/paths.js';

const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

test('the README settings table is the one generated from the code (npx tsx scripts/update-readme.ts)', () => {
  assert.equal(readme, withSettingsTable(readme));
  for (const setting of SETTINGS) assert.ok(readme.includes(`| \`${setting.env}\` |`), setting.env);
});

test('the README gives the set-up, run and test commands and the exit codes', () => {
  assert.ok(readme.includes('npm ci && npm run build\n'));
  assert.ok(readme.includes('npx ephor-scanner\n'));
  assert.ok(readme.includes('```bash\nnpm test\n```'));
  for (const code of ['`0`', '`1`', '`2`']) assert.match(readme, new RegExp(`^\\| ${code} \\|`, 'm'));
});

test('.ci/run installs with npm ci and runs the README test command', () => {
  const ci = readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8');
  assert.match(ci, /^npm ci\b/m);
  assert.match(ci, /^npm test$/m);
});
