import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * `npm run test:reliability`: runs every `*.reliability.ts` file one after another and prints the
 * figures they measured as a Markdown table (also written to CORDON_REL_REPORT when set).
 * CORDON_REL_SEED picks the seed (default 15), CORDON_REL_SCALE makes the run longer (e.g. 10).
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.reliability.ts') && (only.length === 0 || only.some((o) => f.includes(o))))
  .sort()
  .map((f) => path.join(here, f));
const dir = mkdtempSync(path.join(tmpdir(), 'cordon-rel-figures-'));
const figures = path.join(dir, 'figures.jsonl');
writeFileSync(figures, '');
const started = performance.now();
const code = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=420000', ...files], {
    stdio: 'inherit',
    env: { ...process.env, CORDON_REL_FIGURES: figures },
  });
  child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});
const minutes = ((performance.now() - started) / 60_000).toFixed(1);
const rows = readFileSync(figures, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { name: string; value: string | number; unit: string });
rmSync(dir, { recursive: true, force: true });
const table = [
  `Seed ${process.env.CORDON_REL_SEED ?? 15}, scale ${process.env.CORDON_REL_SCALE ?? 1}, ${minutes} min, exit ${code}.`,
  '',
  '| figure | value |',
  '|---|---|',
  ...rows.map((r) => `| ${r.name} | ${String(r.value).replace(/\|/g, '\\|')}${r.unit ? ` ${r.unit}` : ''} |`),
].join('\n');
process.stdout.write(`\n${table}\n`);
if (process.env.CORDON_REL_REPORT) writeFileSync(process.env.CORDON_REL_REPORT, `${table}\n`);
process.exit(code);
