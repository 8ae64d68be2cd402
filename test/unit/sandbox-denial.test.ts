import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SandboxDenialScanner } from '../../src/local/sandbox-denial.js';
import { uuidProblem } from '../../src/protocol/uuid.js';

const scan = (chunks: (string | Buffer)[]): SandboxDenialScanner => {
  const s = new SandboxDenialScanner();
  for (const c of chunks) s.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return s;
};

describe('sandboxDenied: the 0.171 reference rule', () => {
  it('matches each phrase in any case, only with a non-zero exit', () => {
    for (const phrase of [
      'Operation not permitted',
      'PERMISSION DENIED',
      'read-only file system',
      'seccomp',
      'Sandbox',
      'landlock',
      'failed to write file',
    ]) {
      const s = scan([`x: ${phrase}\n`]);
      assert.equal(s.denied(1), true, phrase);
      assert.equal(s.denied(0), false, `${phrase} with exit 0`);
    }
    for (const text of ['EPERM', 'not allowed', 'Access is denied', 'bwrap: nope', 'permission\ndenied'])
      assert.equal(scan([text]).denied(1), false, text);
  });

  it('counts a seccomp kill (128 + SIGSYS) without any output, but not other signals or 126/127', () => {
    assert.equal(scan([]).denied(159), true);
    for (const code of [137, 126, 127, 2, 1]) assert.equal(scan(['hello']).denied(code), false, String(code));
  });

  it('finds a phrase split across chunks at every position', () => {
    const phrase = 'read-only file system';
    for (let cut = 1; cut < phrase.length; cut++) {
      assert.equal(scan(['abc ', phrase.slice(0, cut), phrase.slice(cut), ' def']).denied(1), true, `cut at ${cut}`);
      assert.equal(scan([phrase.slice(0, cut), 'X', phrase.slice(cut)]).denied(1), false, `interrupted at ${cut}`);
    }
    const split3 = ['Per', 'miss', 'ion den', 'ied'];
    assert.equal(scan(split3).denied(1), true, 'a phrase over more than two chunks');
  });

  it('scans binary and large output, each byte once', () => {
    const noise = Buffer.alloc(4 * 1024 * 1024, 0xff);
    assert.equal(scan([noise, noise]).denied(1), false);
    assert.equal(scan([noise, Buffer.from('...sandbox...'), noise]).denied(1), true);
  });
});

describe('metadata.threadId: UUID problems in the uuid crate wording', () => {
  it('accepts the hyphenated, simple, braced and urn forms', () => {
    const id = '01a23c2a-3070-79f0-a528-386924514ac9';
    for (const ok of [id, id.toUpperCase(), id.replaceAll('-', ''), `{${id}}`, `urn:uuid:${id}`])
      assert.equal(uuidProblem(ok), undefined, ok);
  });

  it('words each problem as the reference does', () => {
    assert.equal(
      uuidProblem('t'),
      'invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `t` at 1',
    );
    assert.equal(uuidProblem(''), 'invalid length: expected length 32 for simple format, found 0');
    assert.equal(uuidProblem('0123'), 'invalid length: expected length 32 for simple format, found 4');
    assert.equal(uuidProblem('01a23c2a-3070-79f0-a528-386924514ac'), 'invalid group length in group 4: expected 12, found 11');
    assert.equal(uuidProblem('01a23c2a-3070-79f0-a528'), 'invalid group count: expected 5, found 4');
  });
});
