import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { CordonServer } from '../src/server/index.js';
import { ParsedSandboxes } from '../src/server/parsed-sandboxes.js';
import { type Json, RawClient, startServer, tempDir } from './helpers.js';

const uri = (p: string): string => pathToFileURL(p).href;
const special = (kind: string, access: string, subpath?: string): Json => ({
  path: { type: 'special', value: { kind, ...(subpath ? { subpath } : {}) } },
  access,
});

/** A 0.171 fs sandbox: the given entries, the policy context rooted at `ws`. */
const fsSandbox = (ws: string, entries: Json[], extra: Json = {}): Json => ({
  permissions: { type: 'managed', file_system: { type: 'restricted', entries, ...extra }, network: 'restricted' },
  policyContext: { cwd: uri(ws), workspaceRoots: [uri(ws)] },
  windowsSandboxLevel: 'disabled',
  useLegacyLandlock: false,
});

/**
 * A connection validates each distinct sandbox value once and the file system keys its decisions on
 * the result (server/parsed-sandboxes.ts, LocalFileSystem.restriction). These cases alternate
 * sandboxes on one connection so that a decision kept for one value would show up under another:
 * every refusal comes after its permissive twin was answered, and the twin is asked again after.
 */
describe('sandboxes kept per connection', () => {
  let server: CordonServer;
  let url: string;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let ws: string;
  let outside: string;
  let client: RawClient;
  let everything: Json;

  const read = async (file: string, sandbox: Json): Promise<Json> => client.request('fs/readFile', { path: uri(file), sandbox });
  const readsBack = async (file: string, sandbox: Json, text: string): Promise<void> => {
    const r = await read(file, sandbox);
    assert.equal(r.error, undefined, `reading ${file}: ${JSON.stringify(r.error)}`);
    assert.equal(Buffer.from(r.result.dataBase64 as string, 'base64').toString(), text);
  };
  const isRefused = async (file: string, sandbox: Json): Promise<void> => {
    const r = await read(file, sandbox);
    assert.ok(r.error, `reading ${file} was answered: ${JSON.stringify(r.result)}`);
  };

  before(async () => {
    ({ server, url } = await startServer());
    tmp = await tempDir('cordon-sbcache-');
    ws = path.join(tmp.dir, 'ws');
    outside = path.join(tmp.dir, 'outside');
    mkdirSync(ws);
    mkdirSync(outside);
    writeFileSync(path.join(ws, 'secret.txt'), 'SECRET');
    writeFileSync(path.join(ws, 'ok.txt'), 'OK');
    writeFileSync(path.join(outside, 'host.txt'), 'HOST');
    client = (await RawClient.ready(url)).client;
    everything = fsSandbox(ws, [special('root', 'read'), special('project_roots', 'write')]);
  });
  after(async () => {
    client.close();
    await server.close();
    await tmp.cleanup();
  });

  it('a deny entry added to a sandbox already answered is honoured, and the first sandbox still reads', async () => {
    const denySecret = fsSandbox(ws, [
      special('root', 'read'),
      special('project_roots', 'write'),
      { path: { type: 'path', path: path.join(ws, 'secret.txt') }, access: 'none' },
    ]);
    for (let round = 0; round < 2; round++) {
      await readsBack(path.join(ws, 'secret.txt'), everything, 'SECRET');
      await isRefused(path.join(ws, 'secret.txt'), denySecret);
      await readsBack(path.join(ws, 'ok.txt'), denySecret, 'OK');
    }
  });

  it('a sandbox that does not read the root refuses what the permissive one just read; inside its roots it reads', async () => {
    const rootsOnly = fsSandbox(ws, [special('minimal', 'read'), special('project_roots', 'write')]);
    for (let round = 0; round < 2; round++) {
      await readsBack(path.join(outside, 'host.txt'), everything, 'HOST');
      await isRefused(path.join(outside, 'host.txt'), rootsOnly);
      await readsBack(path.join(ws, 'ok.txt'), rootsOnly, 'OK');
    }
  });

  it('the same policy context with another cwd is another sandbox: its project roots are its own', async () => {
    const projectOnly = (root: string): Json => ({
      ...fsSandbox(root, [special('project_roots', 'write')]),
      policyContext: { cwd: uri(root), workspaceRoots: [uri(root)] },
    });
    await readsBack(path.join(ws, 'ok.txt'), projectOnly(ws), 'OK');
    await isRefused(path.join(ws, 'ok.txt'), projectOnly(outside));
    await readsBack(path.join(outside, 'host.txt'), projectOnly(outside), 'HOST');
    await isRefused(path.join(outside, 'host.txt'), projectOnly(ws));
  });

  it('an out-of-range number is refused each time, though its JSON text matches a valid sandbox', async () => {
    const withNull = fsSandbox(ws, [special('root', 'read')], { glob_scan_max_depth: null });
    const asText = (depth: string): string =>
      JSON.stringify({ id: 77, method: 'fs/getMetadata', params: { path: uri(path.join(ws, 'ok.txt')), sandbox: withNull } }).replace(
        '"glob_scan_max_depth":null',
        `"glob_scan_max_depth":${depth}`,
      );
    for (const [text, valid] of [
      [asText('null'), true],
      [asText('1e999'), false],
      [asText('null'), true],
      [asText('1e999'), false],
    ] as const) {
      client.send(text);
      const r = await client.next((m) => m.id === 77);
      client.received.splice(client.received.indexOf(r), 1);
      if (valid) assert.equal(r.error, undefined, JSON.stringify(r.error));
      else assert.equal(r.error?.code, -32602, `1e999 accepted: ${JSON.stringify(r)}`);
    }
  });
});

describe('ParsedSandboxes', () => {
  const value = (): Json => fsSandbox('/srv/w', [special('root', 'read')]);

  it('gives the same frozen options for equal values, and none for null or absent', () => {
    const kept = new ParsedSandboxes();
    const a = kept.options(value());
    assert.equal(kept.options(value()), a);
    assert.ok(a.sandbox);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.sandbox) && Object.isFrozen(a.sandbox.profile));
    assert.throws(() => {
      (a.sandbox as { cwd: string | null }).cwd = '/elsewhere';
    }, TypeError);
    assert.equal(a.sandbox.cwd, '/srv/w');
    assert.equal(kept.options(null).sandbox, undefined);
    assert.equal(kept.options(undefined).sandbox, undefined);
    const other = kept.options(fsSandbox('/srv/other', [special('root', 'read')]));
    assert.notEqual(other, a);
    assert.equal(other.sandbox?.cwd, '/srv/other');
  });

  it('refuses an invalid value every time, with the same error', () => {
    const kept = new ParsedSandboxes();
    const bad = { ...value(), windowsSandboxLevel: 'bogus' };
    const first = (() => {
      try {
        kept.options(bad);
      } catch (err) {
        return err as Error;
      }
      return undefined;
    })();
    assert.ok(first, 'an invalid sandbox was accepted');
    assert.throws(() => kept.options(bad), { message: first.message });
    assert.throws(() => kept.options('text'));
  });
});
