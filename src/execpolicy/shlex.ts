/** POSIX-shell word splitting and quoting for `match`/`not_match` examples (no expansion of any kind). */

/** Splits like a POSIX shell without expansions; null on an unterminated quote or escape. */
export function shlexSplit(s: string): string[] | null {
  const words: string[] = [];
  let word: string | null = null;
  let i = 0;
  while (i < s.length) {
    const c = s[i] as string;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (word !== null) words.push(word);
      word = null;
      i++;
    } else if (c === '#' && word === null) {
      while (i < s.length && s[i] !== '\n') i++;
    } else if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) return null;
      word = (word ?? '') + s.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      word = word ?? '';
      i++;
      for (;;) {
        if (i >= s.length) return null;
        const d = s[i] as string;
        if (d === '"') break;
        if (d === '\\' && i + 1 < s.length && '$`"\\\n'.includes(s[i + 1] as string)) {
          if (s[i + 1] !== '\n') word += s[i + 1];
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
      i++;
    } else if (c === '\\') {
      if (i + 1 >= s.length) return null;
      if (s[i + 1] !== '\n') word = (word ?? '') + s[i + 1];
      i += 2;
    } else {
      word = (word ?? '') + c;
      i++;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

const UNQUOTED = 1;
const SINGLE = 2;
const DOUBLE = 4;

/** Bytes a word may hold unquoted (the Rust `shlex` crate's list, which Codex's texts use). */
function unquotedOk(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || '+-./:@]_'.includes(String.fromCharCode(c));
}

/** How a run of bytes from the start of `b` can be quoted, and how long that run is. */
function strategy(b: Buffer, from: number): [number, number] {
  let ok = UNQUOTED | SINGLE | DOUBLE;
  let i = from;
  // `^` is only safe right after an opening single quote.
  if (b[i] === 0x5e) {
    ok = SINGLE;
    i++;
  }
  for (; i < b.length; i++) {
    const c = b[i] as number;
    let cur = ok;
    if (c >= 0x80 || !unquotedOk(c)) cur &= ~UNQUOTED;
    if (c === 0x27 || c === 0x5e || c === 0x5c) cur &= ~SINGLE; // ' ^ \
    if (c === 0x60 || c === 0x24 || c === 0x21 || c === 0x5e) cur &= ~DOUBLE; // ` $ ! ^
    if (cur === 0) break;
    ok = cur;
  }
  return [i - from, ok & UNQUOTED ? UNQUOTED : ok & SINGLE ? SINGLE : DOUBLE];
}

/**
 * Quotes a word as Codex does (the Rust `shlex` crate's `try_quote`): unquoted when it can be,
 * else runs of single- or double-quoted text, preferring single quotes.
 */
export function shlexQuote(word: string): string {
  if (word === '') return "''";
  const b = Buffer.from(word, 'utf8');
  const out: number[] = [];
  for (let at = 0; at < b.length; ) {
    const [len, how] = strategy(b, at);
    const chunk = b.subarray(at, at + len);
    if (how === UNQUOTED) out.push(...chunk);
    else if (how === SINGLE) out.push(0x27, ...chunk, 0x27);
    else {
      out.push(0x22);
      for (const c of chunk) {
        if (c === 0x24 || c === 0x60 || c === 0x22 || c === 0x5c) out.push(0x5c);
        out.push(c);
      }
      out.push(0x22);
    }
    at += len;
  }
  return Buffer.from(out).toString('utf8');
}

export function shlexJoin(words: readonly string[]): string {
  return words.map(shlexQuote).join(' ');
}
