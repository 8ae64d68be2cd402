/**
 * Tokenizer for the Starlark subset that `.rules` files use (see starlark-parser.ts for why this
 * is hand-written). Python-style layout: NEWLINE ends a statement, INDENT/DEDENT open and close
 * blocks, and line breaks inside brackets are ignored.
 */

export type TokenKind = 'name' | 'int' | 'string' | 'op' | 'newline' | 'indent' | 'dedent' | 'eof' | 'error';

export interface Token {
  kind: TokenKind;
  /** The identifier, operator, or the decoded string value. */
  value: string;
  /** Byte range in the source (UTF-16 offsets: the source is a JS string). */
  start: number;
  end: number;
}

export class StarlarkSyntaxError extends Error {
  constructor(
    message: string,
    readonly start: number,
    readonly end: number,
  ) {
    super(message);
  }
}

const KEYWORDS = new Set([
  'def',
  'if',
  'elif',
  'else',
  'for',
  'in',
  'return',
  'pass',
  'and',
  'or',
  'not',
  'load',
  'break',
  'continue',
  'lambda',
]);
const OPERATORS = [
  '**',
  '==',
  '!=',
  '<=',
  '>=',
  '+=',
  '-=',
  '*=',
  '//',
  '->',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  ',',
  ':',
  '.',
  '=',
  '+',
  '-',
  '*',
  '/',
  '%',
  '<',
  '>',
  '|',
  '&',
  ';',
];

export function isKeyword(name: string): boolean {
  return KEYWORDS.has(name);
}

/**
 * The tokens of `src`. A lexical error becomes a final `error` token, so that (as in Starlark,
 * whose lexer is driven by the parser) a syntax error before it is the one reported.
 */
export function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  try {
    lex(src, tokens);
  } catch (err) {
    if (!(err instanceof StarlarkSyntaxError)) throw err;
    tokens.push({ kind: 'error', value: err.message, start: err.start, end: err.end });
  }
  return tokens;
}

function lex(src: string, tokens: Token[]): void {
  const indents = [0];
  let depth = 0;
  let i = 0;
  let atLineStart = true;
  const push = (kind: TokenKind, value: string, start: number, end: number): void => void tokens.push({ kind, value, start, end });

  while (i < src.length) {
    if (atLineStart && depth === 0) {
      let col = 0;
      let j = i;
      while (j < src.length && (src[j] === ' ' || src[j] === '\t')) {
        col += src[j] === '\t' ? 8 - (col % 8) : 1;
        j++;
      }
      // Blank and comment-only lines do not affect layout.
      if (j >= src.length || src[j] === '\n' || src[j] === '\r' || src[j] === '#') {
        while (j < src.length && src[j] !== '\n') j++;
        i = j + 1;
        continue;
      }
      atLineStart = false;
      const top = indents[indents.length - 1] as number;
      if (col > top) {
        indents.push(col);
        push('indent', '', j, j);
      } else {
        while (col < (indents[indents.length - 1] as number)) {
          indents.pop();
          push('dedent', '', j, j);
        }
        if (col !== indents[indents.length - 1]) throw new StarlarkSyntaxError('Parse error: incorrect indentation', j, j);
      }
      i = j;
    }
    const c = src[i] as string;
    if (c === '\n') {
      if (depth === 0) {
        push('newline', '\n', i, i + 1);
        atLineStart = true;
      }
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '\\' && src[i + 1] === '\n') {
      i += 2;
      continue;
    }
    if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const start = i;
      while (i < src.length && /[A-Za-z0-9_]/.test(src[i] as string)) i++;
      const word = src.slice(start, i);
      if ((word === 'r' || word === 'b' || word === 'rb' || word === 'br') && (src[i] === '"' || src[i] === "'")) {
        i = readString(src, i, start, word.includes('r'), push);
        continue;
      }
      push('name', word, start, i);
      continue;
    }
    if (/[0-9]/.test(c)) {
      const start = i;
      while (i < src.length && /[0-9A-Za-z_]/.test(src[i] as string)) i++;
      const text = src.slice(start, i);
      if (!/^(0|[1-9][0-9]*|0[xX][0-9a-fA-F]+|0[oO][0-7]+)$/.test(text))
        throw new StarlarkSyntaxError(`Parse error: invalid integer literal '${text}'`, start, i);
      push('int', String(Number(text)), start, i);
      continue;
    }
    if (c === '"' || c === "'") {
      i = readString(src, i, i, false, push);
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (!op) throw new StarlarkSyntaxError(`Parse error: unexpected character '${c}'`, i, i + 1);
    if (op === '(' || op === '[' || op === '{') depth++;
    if ((op === ')' || op === ']' || op === '}') && depth > 0) depth--;
    push('op', op, i, i + op.length);
    i += op.length;
  }
  // The end of the input ends the last statement and closes every open block.
  if (!atLineStart || depth > 0) push('newline', '\n', src.length, src.length);
  while (indents.length > 1) {
    indents.pop();
    push('dedent', '', src.length, src.length);
  }
  push('eof', '', src.length, src.length);
}

const ESCAPES: Record<string, string> = {
  n: '\n',
  t: '\t',
  r: '\r',
  '\\': '\\',
  "'": "'",
  '"': '"',
  '0': '\0',
  a: '\x07',
  b: '\b',
  f: '\f',
  v: '\v',
  '\n': '',
};

function readString(
  src: string,
  quoteAt: number,
  start: number,
  raw: boolean,
  push: (kind: TokenKind, value: string, start: number, end: number) => void,
): number {
  const q = src[quoteAt] as string;
  const triple = src.startsWith(q.repeat(3), quoteAt);
  const close = triple ? q.repeat(3) : q;
  let i = quoteAt + close.length;
  let value = '';
  for (;;) {
    if (i >= src.length || (!triple && src[i] === '\n')) throw new StarlarkSyntaxError('Parse error: unfinished string literal', start, i);
    if (src.startsWith(close, i)) break;
    const ch = src[i] as string;
    if (ch === '\\' && i + 1 < src.length) {
      const next = src[i + 1] as string;
      if (raw) {
        value += ch + next;
      } else if (next === 'x' && /^[0-9a-fA-F]{2}$/.test(src.slice(i + 2, i + 4))) {
        value += String.fromCharCode(parseInt(src.slice(i + 2, i + 4), 16));
        i += 2;
      } else if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(src.slice(i + 2, i + 6))) {
        value += String.fromCharCode(parseInt(src.slice(i + 2, i + 6), 16));
        i += 4;
      } else if (next in ESCAPES) {
        value += ESCAPES[next];
      } else {
        value += ch + next;
      }
      i += 2;
      continue;
    }
    value += ch;
    i++;
  }
  i += close.length;
  push('string', value, start, i);
  return i;
}
