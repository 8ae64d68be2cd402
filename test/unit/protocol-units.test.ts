import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeBase64BytesStrict, decodeBase64Strict } from '../../src/protocol/base64.js';
import {
  Base64Stream,
  classifyMessage,
  encodeError,
  encodeResult,
  encodeResultFrame,
  isStreamed,
  parseMessage,
} from '../../src/protocol/envelope.js';
import type { RpcError } from '../../src/protocol/errors.js';
import { LARGE_MESSAGE_BYTES, parseLargeWriteFile } from '../../src/protocol/large-request.js';
import { fsErrorFromOs, osErrorMessage } from '../../src/protocol/os-error.js';
import { parseAbsolutePath } from '../../src/protocol/paths.js';
import { ReadParams, StartParams } from '../../src/protocol/process.js';
import { parseParams } from '../../src/protocol/validate.js';

describe('base64 (strict, reference wording)', () => {
  it('decodes canonical input', () => {
    assert.equal(decodeBase64Strict('aGVsbG8K').toString(), 'hello\n');
    assert.equal(decodeBase64Strict('YQ==').toString(), 'a');
    assert.equal(decodeBase64Strict('YWI=').toString(), 'ab');
    assert.equal(decodeBase64Strict('').length, 0);
  });
  it('reports the first bad symbol, length, padding and last-symbol errors', () => {
    const msg = (s: string) => {
      try {
        decodeBase64Strict(s);
        return 'ok';
      } catch (e) {
        return (e as Error).message;
      }
    };
    assert.equal(msg('ab c'), 'Invalid symbol 32, offset 2.');
    assert.equal(msg('!abc'), 'Invalid symbol 33, offset 0.');
    assert.equal(msg('YWJj\nZGVm'), 'Invalid symbol 10, offset 4.');
    assert.equal(msg('YQ==='), 'Invalid symbol 61, offset 2.');
    assert.equal(msg('Y'), 'Invalid input length: 1');
    assert.equal(msg('YWJjZ'), 'Invalid input length: 5');
    assert.equal(msg('YQ'), 'Invalid padding');
    assert.equal(msg('YR=='), 'Invalid last symbol 82, offset 1.');
  });
});

describe('base64 from bytes (strict)', () => {
  const strictOk = (s: string): boolean => {
    try {
      decodeBase64Strict(s);
      return true;
    } catch {
      return false;
    }
  };

  it('decodes what decodeBase64Strict decodes, across its 4 MiB steps', () => {
    for (const n of [1, 2, 3, 4, 5, 3 * 1024 * 1024 - 1, 3 * 1024 * 1024, 3 * 1024 * 1024 + 1, 3 * 1024 * 1024 + 2, 7_000_001]) {
      const data = randomBytes(n);
      assert.ok(decodeBase64BytesStrict(Buffer.from(data.toString('base64')))?.equals(data), `${n} bytes`);
    }
  });

  it('declines everything the strict decoder refuses (it then words the error)', () => {
    const good = randomBytes(6 * 1024 * 1024 + 1).toString('base64');
    const spoil = (at: number, ch: string): string => good.slice(0, at) + ch + good.slice(at + 1);
    const cases = [
      'Y',
      'YQ',
      'YQ=',
      'YQ===',
      'YR==',
      'YWJ=',
      'Y===',
      '=YWJ',
      'YW=j',
      'YWJj\nZGVm',
      'ab c',
      'YWJj ZGVm',
      'YW-j',
      'YW_j',
      'YWJjZA',
      'é123',
      spoil(5, '!'),
      spoil(4 * 1024 * 1024 + 2, '-'),
      spoil(4 * 1024 * 1024 - 1, '_'),
      spoil(good.length - 5, '='),
      spoil(100, '\u00ff'),
      `${good.slice(0, -4)}AAB=`,
      good.slice(0, -1),
    ];
    for (const s of cases) {
      assert.equal(strictOk(s), false, `strict refuses ${JSON.stringify(s.slice(0, 20))}`);
      assert.equal(decodeBase64BytesStrict(Buffer.from(s, 'latin1')), undefined, `declines ${JSON.stringify(s.slice(0, 20))}`);
    }
  });
});

describe('large fs/writeFile requests', () => {
  const data = randomBytes(LARGE_MESSAGE_BYTES);
  const b64 = data.toString('base64');
  const bytes = (o: unknown) => Buffer.from(JSON.stringify(o));

  it('takes the data out as bytes and parses the rest', () => {
    const parsed = parseLargeWriteFile(
      bytes({ id: 7, method: 'fs/writeFile', params: { path: '/tmp/é "x"', dataBase64: b64, sandbox: null } }),
    );
    assert.ok(parsed && 'data' in parsed && parsed.data.equals(data));
    assert.deepEqual(parsed?.request, {
      kind: 'request',
      id: 7,
      method: 'fs/writeFile',
      params: { path: '/tmp/é "x"', dataBase64: '', sandbox: null },
    });
    assert.equal(decodeBase64BytesStrict(Buffer.alloc(0)), undefined, 'empty data is left to the usual path');
  });

  it('words invalid base64 from the bytes exactly as the usual path does', () => {
    const invalid = [
      `${b64.slice(0, -4)}!!!!`,
      b64.replace(/\//g, '_'),
      `${b64.slice(0, -4)}AB=A`,
      `${b64.slice(0, -4)}AAB=`,
      `${b64}A`,
      `${b64.slice(0, -4)}AA=`,
    ];
    for (const field of invalid) {
      const parsed = parseLargeWriteFile(bytes({ id: 1, method: 'fs/writeFile', params: { path: '/x', dataBase64: field } }));
      let expected = '';
      try {
        decodeBase64Strict(field);
      } catch (err) {
        expected = (err as Error).message;
      }
      assert.ok(expected !== '', 'the usual path refuses it');
      assert.ok(parsed && 'base64Problem' in parsed, field.slice(-8));
      assert.equal(parsed.base64Problem, expected);
    }
  });

  it('leaves anything unusual to the usual path', () => {
    const cases: unknown[] = [
      { id: 1, method: 'fs/writeBlock', params: { handle: 'h', dataBase64: b64 } },
      { id: 1, method: 'fs/writeFile', params: { path: '/x', extra: { dataBase64: b64 }, dataBase64: '' } },
      { id: 1, method: 'fs/writeFile', params: { path: '/x', other: { dataBase64: 'AAAA' }, dataBase64: b64 } },
      { method: 'fs/writeFile', params: { path: '/x', dataBase64: b64 } },
      { id: 1, method: 'fs/writeFile', params: { path: '/x', dataBase64: b64, comment: 'dataBase64' } },
      { id: 1, method: 'fs/writeFile', params: { path: '/tmp/"dataBase64":"x', dataBase64: b64 } },
      { id: 1, method: 'fs/writeFile', params: { path: 'x'.repeat(70_000), dataBase64: b64 } },
    ];
    for (const c of cases) assert.equal(parseLargeWriteFile(bytes(c)), undefined, JSON.stringify(c).slice(0, 120));
    // An escaped slash is valid JSON for the same base64, but only JSON.parse reads escapes.
    assert.equal(
      parseLargeWriteFile(
        Buffer.from(`{"id":1,"method":"fs/writeFile","params":{"path":"/x","dataBase64":"${b64.replace(/\//g, '\\/')}"}}`),
      ),
      undefined,
    );
    assert.equal(
      parseLargeWriteFile(Buffer.from(`{"id":1,"method":"fs/writeFile","params":{"path":"/x","dataBase64":"${b64}"}`)),
      undefined,
      'truncated JSON',
    );
  });
});

describe('envelope', () => {
  it('classifies requests, notifications, responses and junk', () => {
    assert.deepEqual(classifyMessage({ id: 1, method: 'm', params: { a: 1 } }), { kind: 'request', id: 1, method: 'm', params: { a: 1 } });
    assert.deepEqual(classifyMessage({ jsonrpc: '2.0', id: 'x', method: 'm' }), {
      kind: 'request',
      id: 'x',
      method: 'm',
      params: undefined,
    });
    assert.equal(classifyMessage({ method: 'n' }).kind, 'notification');
    assert.equal(classifyMessage({ id: 3, result: {} }).kind, 'response');
    assert.equal(classifyMessage({ id: null, method: 'm' }).kind, 'invalid');
    assert.equal(classifyMessage([]).kind, 'invalid');
    assert.equal(classifyMessage({}).kind, 'invalid');
    assert.equal(parseMessage('{').kind, 'invalid');
  });
  it('encodes in the reference key order without jsonrpc', () => {
    assert.equal(encodeResult(1, { a: 1 }), '{"id":1,"result":{"a":1}}');
    assert.equal(encodeError('s', -32600, 'bad "x"'), '{"error":{"code":-32600,"message":"bad \\"x\\""},"id":"s"}');
  });
});

describe('paths', () => {
  it('accepts absolute paths and file URIs, refuses the rest', () => {
    assert.equal(parseAbsolutePath('/tmp/x'), '/tmp/x');
    assert.equal(parseAbsolutePath('file:///tmp/a%20b'), '/tmp/a b');
    assert.throws(
      () => parseAbsolutePath('tmp'),
      (e: RpcError) => e.code === -32602 && e.message === 'path is not absolute: tmp',
    );
    assert.throws(
      () => parseAbsolutePath(''),
      (e: RpcError) => e.message === 'path is not absolute: ',
    );
    assert.throws(
      () => parseAbsolutePath('file://remote-host/x'),
      (e: RpcError) => e.code === -32602,
    );
    for (const nul of ['/tmp/a\0b', 'file:///tmp/a%00b'])
      assert.throws(
        () => parseAbsolutePath(nul),
        (e: RpcError) => e.code === -32602 && e.message === 'path contains a NUL byte: "/tmp/a\\u0000b"',
        nul,
      );
  });
});

describe('os errors', () => {
  it('words errors as Rust std does and maps fs codes', () => {
    assert.equal(osErrorMessage({ code: 'ENOENT' }), 'No such file or directory (os error 2)');
    assert.equal(osErrorMessage({ code: 'EISDIR' }), 'Is a directory (os error 21)');
    assert.equal(fsErrorFromOs(Object.assign(new Error('x'), { code: 'ENOENT' })).code, -32004);
    assert.equal(fsErrorFromOs(Object.assign(new Error('x'), { code: 'EACCES' })).code, -32600);
    assert.equal(fsErrorFromOs(Object.assign(new Error('x'), { code: 'EROFS' })).message, 'Read-only file system (os error 30)');
  });
});

describe('params validation (serde wording)', () => {
  const msg = (fn: () => unknown) => {
    try {
      fn();
      return 'ok';
    } catch (e) {
      return (e as Error).message;
    }
  };
  it('words missing fields, wrong types and bad numbers like serde', () => {
    assert.equal(
      msg(() => parseParams(ReadParams, {}, 'ReadParams')),
      'missing field `processId`',
    );
    assert.equal(
      msg(() => parseParams(ReadParams, { processId: 1 }, 'ReadParams')),
      'invalid type: number, expected a string',
    );
    assert.equal(
      msg(() => parseParams(ReadParams, { processId: 'p', afterSeq: -1 }, 'ReadParams')),
      'invalid number',
    );
    assert.equal(
      msg(() => parseParams(ReadParams, { processId: 'p', afterSeq: 1.5 }, 'ReadParams')),
      'invalid number',
    );
    assert.equal(
      msg(() => parseParams(ReadParams, { processId: 'p', waitMs: true }, 'ReadParams')),
      'invalid type: boolean `true`, expected u64',
    );
    assert.equal(
      msg(() => parseParams(ReadParams, 'x', 'ReadParams')),
      'invalid type: string "x", expected struct ReadParams',
    );
    assert.equal(
      msg(() => parseParams(ReadParams, null, 'ReadParams')),
      'invalid type: null, expected struct ReadParams',
    );
    assert.equal(
      msg(() => parseParams(StartParams, { processId: 'p', argv: ['x'], cwd: '/', env: { A: 1 }, tty: false }, 'ExecParams')),
      'invalid type: number, expected a string',
    );
    assert.equal(
      msg(() => parseParams(ReadParams, ['p', 3], 'ReadParams')),
      'ok',
    );
  });
});

describe('streamed base64 results', () => {
  it('encodes chunks of any length into one valid message, carrying partial triples across chunks', async () => {
    const pieces = [1, 2, 4, 3 * 16 * 1024 + 1, 100_000, 5, 0, 7].map((n) =>
      Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff)),
    );
    async function* chunks() {
      // The same buffer is reused between chunks, as the file reader does.
      const scratch = Buffer.alloc(200_000);
      for (const p of pieces) {
        p.copy(scratch);
        yield scratch.subarray(0, p.length);
        scratch.fill(0xee);
      }
    }
    const message = encodeResultFrame(7, new Base64Stream('{"dataBase64":"', chunks(), '","eof":true}'));
    assert.ok(isStreamed(message));
    const parts: Buffer[] = [];
    for await (const part of message.parts) parts.push(Buffer.from(part));
    assert.ok(parts.length > 3, 'sent in parts');
    const parsed = JSON.parse(Buffer.concat(parts).toString()) as { id: number; result: { dataBase64: string; eof: boolean } };
    assert.equal(parsed.id, 7);
    assert.equal(parsed.result.eof, true);
    assert.equal(parsed.result.dataBase64, Buffer.concat(pieces).toString('base64'));
  });
});

describe('oversize messages are refused before they are parsed', () => {
  it('a large message holding more values than any method takes is refused with its id; a large string is parsed', async () => {
    const { MAX_MESSAGE_VALUES, oversizeRefusal } = await import('../../src/protocol/large-request.js');
    const many = `{"id":"huge","method":"process/start","params":{"env":{${Array.from({ length: MAX_MESSAGE_VALUES + 1 }, (_, i) => `"E${i}":"v"`).join(',')}}}}`;
    const refused = oversizeRefusal(Buffer.from(many));
    assert.equal(refused?.id, 'huge');
    assert.match(refused?.message ?? '', /process\/start is too large: more than 131072 values/);
    assert.equal(oversizeRefusal(many)?.id, 'huge', 'the stdio transport gives text');
    const justUnder = `{"id":2,"method":"process/start","params":{"env":{${Array.from({ length: MAX_MESSAGE_VALUES - 10 }, (_, i) => `"E${i}":"v"`).join(',')}}}}`;
    assert.equal(oversizeRefusal(Buffer.from(justUnder)), undefined);
    const pad = Buffer.from(`{"id":9,"method":"environment/info","params":{"pad":"${'x'.repeat(16 * 1024 * 1024)}"}}`);
    assert.equal(oversizeRefusal(pad), undefined, 'a 16 MiB message of few values is parsed, as the reference does');
    assert.equal(
      oversizeRefusal(`{"params":{"a":[${'123456789,'.repeat(MAX_MESSAGE_VALUES + 1)}1]}}`)?.id,
      null,
      'no id: answered with id -1',
    );
  });
});
