/**
 * Renders a Starlark error the way Codex's interpreter prints it (traceback, `error:` line and an
 * annotated source excerpt), so that `cordon policy check` and the server print the same text.
 */
import type { CallSite as Frame } from './starlark-eval.js';
import type { Span } from './starlark-parser.js';

interface Pos {
  line: number;
  col: number;
}

function lineStarts(src: string): number[] {
  const starts = [0];
  for (let i = 0; i < src.length; i++) if (src[i] === '\n') starts.push(i + 1);
  return starts;
}

function position(starts: number[], offset: number): Pos {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] as number) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, col: offset - (starts[lo] as number) };
}

function lineText(src: string, starts: number[], line: number): string {
  const start = starts[line - 1] as number;
  const end = src.indexOf('\n', start);
  return src.slice(start, end < 0 ? src.length : end).replace(/\r$/, '');
}

function excerpt(src: string, file: string, span: Span): string {
  const starts = lineStarts(src);
  if (span.start >= src.length && src.length > 0) {
    // An error at the very end of the input: Starlark has no line to show.
    return `--> ${file}:1:1\n |\n |\n`;
  }
  const a = position(starts, span.start);
  const last = position(starts, Math.max(span.start, span.end - 1));
  const w = String(last.line).length;
  const pad = ' '.repeat(w);
  const num = (n: number): string => String(n).padStart(w);
  let out = `${pad}--> ${file}:${a.line}:${a.col + 1}\n${pad} |\n`;
  if (a.line === last.line) {
    out += `${num(a.line)} | ${lineText(src, starts, a.line)}\n`;
    out += `${pad} | ${' '.repeat(a.col)}${'^'.repeat(Math.max(1, span.end - span.start))}\n`;
  } else {
    const slash = a.col === 0;
    out += slash
      ? `${num(a.line)} | / ${lineText(src, starts, a.line)}\n`
      : `${num(a.line)} |   ${lineText(src, starts, a.line)}\n${pad} |  ${'_'.repeat(a.col + 1)}^\n`;
    for (let l = a.line + 1; l <= last.line; l++) out += `${num(l)} | | ${lineText(src, starts, l)}\n`;
    out += `${pad} | |${'_'.repeat(last.col + 1)}^\n`;
  }
  return `${out}${pad} |\n`;
}

/** The text after `starlark error: ` for an error at `span`, raised with `frames` active. */
export function renderStarlarkError(src: string, file: string, message: string, span: Span, frames: readonly Frame[]): string {
  const starts = lineStarts(src);
  let out = 'starlark error: ';
  if (frames.length > 0) {
    out += 'Traceback (most recent call last):\n';
    frames.forEach((f, i) => {
      const line = position(starts, f.start).line;
      const where = i === 0 ? '<module>' : (frames[i - 1] as Frame).callee;
      out += `  * ${file}:${line}, in ${where}\n      ${lineText(src, starts, line).trim()}\n`;
    });
  }
  return `${out}error: ${message}\n${excerpt(src, file, span)}`;
}
