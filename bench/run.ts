import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { figures, prepareFsFixtures } from './figures.js';
import { installReference, ROOT, startCordon, startReference, type RunningServer } from './servers.js';

/**
 * `npm run bench [-- --reference 0.141.0] [--rounds 3] [--only substring] [--no-reference]`
 * Measures Cordon and the reference server through the same client, interleaved (A B A B ...) so
 * machine noise hits both, and prints each side's median and the median ratio.
 */
const { values } = parseArgs({
  options: {
    reference: { type: 'string', default: '0.141.0' },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string' },
    'no-reference': { type: 'boolean', default: false },
  },
});

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const rounds = Number(values.rounds);
const fixtures = prepareFsFixtures();
const all = figures({ fsDir: fixtures.dir }).filter((f) => !values.only || f.name.includes(values.only));
const withReference = !values['no-reference'];
const referenceBin = withReference ? installReference(values.reference as string) : undefined;

const results: { name: string; unit: string; higherIsBetter: boolean; cordon: number[]; reference: number[] }[] = [];
try {
  for (const figure of all) {
    const row = { name: figure.name, unit: figure.unit, higherIsBetter: figure.higherIsBetter, cordon: [] as number[], reference: [] as number[] };
    for (let round = 0; round < rounds * (figure.roundsFactor ?? 1); round++) {
      const sides: [('cordon' | 'reference'), () => Promise<RunningServer>][] = [['cordon', startCordon]];
      if (referenceBin && !figure.cordonOnly) sides.push(['reference', () => startReference(referenceBin)]);
      if (round % 2 === 1) sides.reverse();
      for (const [side, start] of sides) {
        const server = await start();
        try {
          row[side].push(await figure.measure(server));
        } finally {
          await server.stop();
        }
      }
    }
    results.push(row);
    const c = median(row.cordon);
    const r = row.reference.length ? median(row.reference) : NaN;
    const ratios = row.reference.map((ref, i) => (figure.higherIsBetter ? (row.cordon[i] as number) / ref : ref / (row.cordon[i] as number)));
    const better = ratios.length ? median(ratios) : NaN;
    console.log(
      `${figure.name.padEnd(66)} cordon ${c.toFixed(2).padStart(9)} ${figure.unit.padEnd(12)} reference ${Number.isNaN(r) ? '     n/a' : r.toFixed(2).padStart(9)}   ${Number.isNaN(better) ? '' : `cordon ${better.toFixed(2)}x ${better >= 1 ? 'better' : 'worse'}`}`,
    );
  }
} finally {
  fixtures.cleanup();
}

const stamp = new Date().toISOString();
const out = {
  date: stamp,
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release() },
  node: process.version,
  reference: withReference ? values.reference : null,
  rounds,
  results: results.map((r) => ({
    ...r,
    cordonMedian: median(r.cordon),
    referenceMedian: r.reference.length ? median(r.reference) : null,
    medianRatio: r.reference.length ? median(r.reference.map((ref, i) => (r.higherIsBetter ? (r.cordon[i] as number) / ref : ref / (r.cordon[i] as number)))) : null,
  })),
};
mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
const file = path.join(ROOT, 'bench', 'results', `${stamp.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
console.log(`\nresults written to ${path.relative(process.cwd(), file)}`);
