import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Compares two kept e2e runs (CORDON_E2E_KEEP=1) of the same scenario, e.g. the 0.171 CLI against
 * the reference and against Cordon, by what crossed the wire: which methods the CLI called and how
 * often, which answers were errors, and the shapes (keys) of results and notifications.
 *
 *   node --import tsx test/e2e/wire-diff.ts ~/.cache/cordon-e2e/reference-0.171.0-command-XXXX ~/.cache/cordon-e2e/cordon-0.171.0-command-YYYY
 */

type Json = Record<string, any>;

interface Entry {
  conn: number;
  dir: string;
  msg: Json;
}

function readWire(dir: string): Entry[] {
  return readFileSync(path.join(dir, 'wire.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^(?:\d*ms )?#(\d+) (>>|<<|--) (.*)$/.exec(line);
      if (!m) throw new Error(`bad wire line: ${line}`);
      return { conn: Number(m[1]), dir: m[2]!, msg: JSON.parse(m[3]!) as Json };
    });
}

function shape(value: unknown): string {
  if (value === null || typeof value !== 'object') return typeof value;
  if (Array.isArray(value)) return `[${value.length ? shape(value[0]) : ''}]`;
  return `{${Object.keys(value).sort().join(',')}}`;
}

/** A multiset of facts about one run, each a line of text. */
function facts(entries: Entry[]): Map<string, number> {
  const out = new Map<string, number>();
  const add = (f: string): void => {
    out.set(f, (out.get(f) ?? 0) + 1);
  };
  const methodOf = new Map<string, string>();
  for (const { conn, dir, msg } of entries) {
    if (dir === '--') {
      add(`connection event: ${msg.event}`);
      continue;
    }
    if (dir === '>>') {
      if (msg.method && msg.id !== undefined) {
        methodOf.set(`${conn}:${msg.id}`, msg.method);
        add(`client request ${msg.method} params ${shape(msg.params)}`);
      } else if (msg.method) add(`client notification ${msg.method}`);
      else add(`client response ${shape(msg.result ?? msg.error)}`);
      continue;
    }
    if (msg.method && msg.id === undefined) {
      add(`server notification ${msg.method} ${shape(msg.params)}`);
      continue;
    }
    if (msg.method) {
      add(`server request ${msg.method}`);
      continue;
    }
    const method = methodOf.get(`${conn}:${msg.id}`) ?? '?';
    if (msg.error) add(`answer to ${method}: error ${msg.error.code} ${String(msg.error.message).replace(/\/\S+/g, 'PATH')}`);
    else add(`answer to ${method}: ${shape(msg.result)}`);
    if (method === 'process/start' && msg.result) add(`process/start sandboxType=${msg.result.sandboxType}`);
  }
  return out;
}

const [a, b] = process.argv.slice(2);
if (!a || !b) {
  console.error('usage: wire-diff.ts RUN_DIR_A RUN_DIR_B');
  process.exit(2);
}
const fa = facts(readWire(a));
const fb = facts(readWire(b));
const keys = [...new Set([...fa.keys(), ...fb.keys()])].sort();
console.log(`A = ${path.basename(a)}\nB = ${path.basename(b)}`);
for (const k of keys) {
  const na = fa.get(k) ?? 0;
  const nb = fb.get(k) ?? 0;
  if (na !== nb) console.log(`${String(na).padStart(3)} ${String(nb).padStart(3)}  ${k}`);
}
