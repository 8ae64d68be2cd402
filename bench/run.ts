import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { figures, prepareFsFixtures, type Side } from './figures.js';
import { installReference, ROOT, type RunningServer, startCordon, startReference } from './servers.js';

/**
 * `npm run bench [-- --reference 0.141.0] [--sandboxed-reference 0.171.0] [--rounds 3] [--only TEXT] [--no-reference] [--no-proxy]`
 * Measures each figure's servers through the same client, interleaved (the order rotates every
 * round) so machine noise hits all of them, each round on freshly started servers, and prints each
 * side's median and the median of the per-round ratios of the first side against each other.
 * `--only` keeps the figures whose name contains TEXT (repeatable, e.g. `--only sandboxed --only default`).
 * The managed-proxy figures (bench/proxy.ts) follow unless `--only` or `--no-proxy` is given.
 */
const { values } = parseArgs({
  options: {
    reference: { type: 'string', default: '0.141.0' },
    'sandboxed-reference': { type: 'string', default: '0.171.0' },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string', multiple: true },
    'no-reference': { type: 'boolean', default: false },
    'no-proxy': { type: 'boolean', default: false },
  },
});

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const rounds = Number(values.rounds);
const fixtures = prepareFsFixtures();
const only = values.only ?? [];
const withReference = !values['no-reference'];
const all = figures({ fsDir: fixtures.dir })
  .filter((f) => only.length === 0 || only.some((o) => f.name.includes(o)))
  .map((f) => ({ ...f, sides: (f.sides ?? ['cordon', 'reference']).filter((s) => withReference || !s.startsWith('reference')) }));
const versions: Record<string, string> = {
  reference: values.reference as string,
  'reference-sandboxed': values['sandboxed-reference'] as string,
};
const binaries = new Map<string, string>();
for (const side of new Set(all.flatMap((f) => f.sides)))
  if (side.startsWith('reference')) binaries.set(side, installReference(versions[side] as string));

const starters: Record<Side, () => Promise<RunningServer>> = {
  cordon: () => startCordon(),
  'cordon-default': () => startCordon(fixtures.dir),
  reference: () => startReference(binaries.get('reference') as string, 'reference'),
  'reference-sandboxed': () => startReference(binaries.get('reference-sandboxed') as string, 'reference-sandboxed'),
};
const label = (side: Side): string => (side.startsWith('reference') ? `${side.replace('-sandboxed', '')} ${versions[side]}` : side);

const loadAtStart = os.loadavg();
const machine = `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}`;
console.log(`${machine}; load average at start ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}\n`);
const began = performance.now();
const results: { name: string; unit: string; higherIsBetter: boolean; samples: Partial<Record<Side, number[]>> }[] = [];
/** docs/performance.md's table, one row per figure: configuration, figure, bar, Cordon, compared with, ratio, met. */
const table: string[] = [];
const fmt = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));
try {
  for (const figure of all) {
    const samples: Partial<Record<Side, number[]>> = {};
    for (let round = 0; round < rounds * (figure.roundsFactor ?? 1); round++) {
      const order = figure.sides.map((_, i) => figure.sides[(i + round) % figure.sides.length] as Side);
      for (const side of order) {
        const server = await starters[side]();
        try {
          (samples[side] ??= []).push(await figure.measure(server));
        } finally {
          await server.stop();
        }
      }
    }
    results.push({ name: figure.name, unit: figure.unit, higherIsBetter: figure.higherIsBetter, samples });
    const [first, ...others] = figure.sides as [Side, ...Side[]];
    const mine = samples[first] as number[];
    const parts = [`${label(first)} ${median(mine).toFixed(3)} ${figure.unit}`];
    const ratios: number[] = [];
    const compared: string[] = [];
    for (const other of others) {
      const theirs = samples[other] as number[];
      const ratio = median(theirs.map((t, i) => (figure.higherIsBetter ? (mine[i] as number) / t : t / (mine[i] as number))));
      ratios.push(ratio);
      compared.push(`${other === 'cordon' ? 'Cordon unsandboxed' : label(other)} ${fmt(median(theirs))}`);
      parts.push(`${label(other)} ${median(theirs).toFixed(3)} (${ratio.toFixed(2)}x ${ratio >= 1 ? 'better' : 'worse'})`);
    }
    console.log(`${figure.name}\n    ${parts.join('  |  ')}`);
    const { configuration, bar, met } = figure.row;
    table.push(
      `| ${configuration} | ${figure.name.replace(/^(default config|sandboxed \(0\.171 object\)): /, '')} | ${bar ?? '—'} | ${fmt(median(mine))} ${figure.unit} | ${
        compared.join('; ') || '—'
      } | ${ratios.map((r) => `${r.toFixed(2)}x`).join('; ') || '—'} | ${met ? (met(median(mine), ratios) ? 'yes' : 'no') : '—'} |`,
    );
  }
} finally {
  fixtures.cleanup();
}

const minutes = (performance.now() - began) / 60_000;
const stamp = new Date().toISOString();
const out = {
  date: stamp,
  machine: {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    loadAverageAtStart: loadAtStart,
    loadAverage: os.loadavg(),
  },
  node: process.version,
  references: withReference ? versions : null,
  rounds,
  minutes,
  table,
  results: results.map((r) => ({ ...r, medians: Object.fromEntries(Object.entries(r.samples).map(([k, v]) => [k, median(v)])) })),
};
mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
const file = path.join(ROOT, 'bench', 'results', `${stamp.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
console.log('\n| configuration | figure | bar | Cordon (median) | compared with (median) | ratio (median of rounds) | met |');
console.log('|---|---|---|---|---|---|---|');
for (const row of table) console.log(row);
console.log(
  `\n${minutes.toFixed(1)} min; load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; results written to ${path.relative(process.cwd(), file)}`,
);
if (only.length === 0 && !values['no-proxy']) {
  console.log('');
  await import('./proxy.js');
}
