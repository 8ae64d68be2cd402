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

export function shlexQuote(word: string): string {
  if (word === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'"'"'`)}'`;
}

export function shlexJoin(words: readonly string[]): string {
  return words.map(shlexQuote).join(' ');
}
