// Regenerates the settings table in README.md from src/config/settings.ts: `npx tsx scripts/update-readme.ts`.
import { readFileSync, writeFileSync } from 'node:fs';
import { withSettingsTable } from '../src/config/settings-table.js';

const file = new URL('../README.md', import.meta.url);
writeFileSync(file, withSettingsTable(readFileSync(file, 'utf8')));
