import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeFrame } from '../../src/client/frame-decoder.js';
import { MessageAssembler } from '../../src/client/message-assembler.js';

/** Feeds `message` in pieces cut at the given sizes (cycled), with the frame hint a fragmenting server would give. */
function assemble(message: Buffer, sizes: number[], frameBytes = message.length): Record<string, unknown> | undefined {
  const a = new MessageAssembler();
  let off = 0;
  for (let i = 0; off < message.length; i++) {
    const n = Math.min(sizes[i % sizes.length] as number, message.length - off);
    const frameEnd = Math.min(message.length, (Math.floor(off / frameBytes) + 1) * frameBytes);
    a.feed(Buffer.from(message.subarray(off, off + n)), Math.max(0, frameEnd - off - n));
    off += n;
  }
  return a.finish();
}

/** What the message means, decoded the plain way: the base64 field replaced by its bytes. */
function expected(message: Buffer): Record<string, unknown> {
  const m = JSON.parse(message.toString()) as Record<string, Record<string, unknown>>;
  const holder = (m.params ?? m.result) as Record<string, unknown>;
  for (const field of ['chunk', 'dataBase64']) {
    if (typeof holder[field] === 'string') {
      holder.data = Buffer.from(holder[field] as string, 'base64');
      delete holder[field];
    }
  }
  return m;
}

describe('MessageAssembler', () => {
  const data = randomBytes(300_001);
  const readFile = Buffer.from(JSON.stringify({ id: 7, result: { dataBase64: data.toString('base64') } }));
  const output = Buffer.from(
    JSON.stringify({
      method: 'process/output',
      params: { processId: 'p', seq: 3, stream: 'stdout', chunk: data.subarray(0, 70_000).toString('base64') },
    }),
  );

  it('decodes a base64 field split at every kind of boundary', () => {
    for (const sizes of [[1], [2], [3], [5], [7, 1, 2], [1023, 1, 4097], [65536], [readFile.length]]) {
      const got = assemble(readFile, sizes, 65536);
      assert.deepEqual(got, expected(readFile), `pieces of ${sizes.join(',')}`);
      assert.ok(Buffer.isBuffer((got?.result as Record<string, unknown> | undefined)?.data));
    }
    assert.deepEqual(assemble(output, [4096, 13]), expected(output));
  });

  it('decodes an empty field and padded tails', () => {
    for (const n of [0, 1, 2, 3, 4]) {
      const m = Buffer.from(
        JSON.stringify({ id: 1, result: { dataBase64: data.subarray(0, n).toString('base64'), eof: true } }) + ' '.repeat(2000),
      );
      assert.deepEqual(assemble(m, [3]), expected(m), `${n} bytes`);
    }
  });

  it('hands other messages to the plain decoder unchanged', () => {
    const small = Buffer.from('{"id":1,"result":{"kind":"file","size":3}}');
    assert.deepEqual(assemble(small, [5]), decodeFrame(small));
    const big = Buffer.from(
      JSON.stringify({ id: 2, result: { entries: Array.from({ length: 500 }, (_, i) => ({ name: `f${i}`, kind: 'file' })) } }),
    );
    assert.deepEqual(assemble(big, [100]), decodeFrame(big));
    assert.equal(assemble(Buffer.from('not json at all, and long enough '.repeat(100)), [64]), undefined);
  });

  it('a field in an unexpected place, or an escaped look-alike, still parses right', () => {
    // The field is nested one level deeper than params/result: re-encoded and parsed whole.
    const nested = Buffer.from(JSON.stringify({ id: 3, result: { inner: { dataBase64: 'aGVsbG8=' } }, pad: 'x'.repeat(3000) }));
    assert.deepEqual(assemble(nested, [10]), JSON.parse(nested.toString()));
    // A string that merely contains the field's name, escaped.
    const escaped = Buffer.from(JSON.stringify({ id: 4, result: { note: '"dataBase64":"x' }, pad: 'y'.repeat(3000) }));
    assert.deepEqual(assemble(escaped, [10]), JSON.parse(escaped.toString()));
  });

  it('a base64 string that never ends is not a message', () => {
    assert.equal(assemble(Buffer.from(`{"id":1,"result":{"dataBase64":"${'QUJD'.repeat(1000)}`), [100]), undefined);
  });
});
