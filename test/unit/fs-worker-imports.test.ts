import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../built-cli.js';

/**
 * A sandboxed fs worker is a fresh Node process, and under a ceiling that masks missing metadata
 * names (the default `:workspace` in a project without `.codex`) one starts for every write: what
 * it imports is paid on every such call. The protocol's schemas (zod, `protocol/index.ts`) cost
 * about 45 ms of a 110 ms start; the worker needs only error texts and codes.
 */
function runtimeImports(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of source.matchAll(/^import\s+(type\s+)?[^'"]*?from\s+'([^']+)';/gms)) {
    if (m[1]) continue; // erased at compile time
    const spec = m[2] as string;
    if (spec.startsWith('.')) out.push(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
    else out.push(spec);
  }
  for (const m of source.matchAll(/^export\s+(?!type\b)[^'"]*?from\s+'([^']+)';/gms)) {
    const spec = m[1] as string;
    if (spec.startsWith('.')) out.push(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return out;
}

describe('the fs worker stays light to start', () => {
  it('imports neither the protocol index nor zod, directly or through any module it loads', () => {
    const entry = path.join(ROOT, 'src', 'local', 'fs-worker-main.ts');
    const seen = new Map<string, string>();
    const queue = [entry];
    seen.set(entry, '(entry)');
    while (queue.length) {
      const file = queue.shift() as string;
      for (const dep of runtimeImports(file)) {
        if (seen.has(dep)) continue;
        seen.set(dep, file);
        if (dep.startsWith('/')) queue.push(dep);
      }
    }
    const chain = (dep: string): string => {
      const links = [dep];
      for (let at = seen.get(dep); at && at !== '(entry)'; at = seen.get(at)) links.push(at);
      return links.map((l) => path.relative(ROOT, l) || l).join(' <- ');
    };
    const heavy = [...seen.keys()].filter((d) => d === 'zod' || d.endsWith(path.join('protocol', 'index.ts')));
    assert.deepEqual(heavy.map(chain), [], 'the worker loads the protocol schemas');
    // The walk found the worker's own modules (it is not vacuous).
    assert.ok(seen.has(path.join(ROOT, 'src', 'local', 'file-system.ts')));
    assert.ok(seen.has(path.join(ROOT, 'src', 'protocol', 'messages.ts')));
  });
});
