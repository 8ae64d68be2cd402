/**
 * Splits `bash -lc "a && b | c"` into the commands an exec policy judges, as Codex does.
 *
 * Codex parses the script with tree-sitter-bash and splits it only when the syntax tree holds
 * nothing but plain words and quoted strings joined by `&&`, `||`, `;` and `|`; anything else (an
 * expansion, a redirection, a subshell, an assignment, control flow, a parse error) leaves the
 * whole argv as one command. The same grammar is used here, through its WebAssembly build (shipped
 * inside the `tree-sitter-bash` npm package, run by `web-tree-sitter`), so the node kinds and the
 * cases accepted are the ones Codex sees; a hand-written shell tokenizer would drift from it.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { Language, type Node, Parser } from 'web-tree-sitter';

const ALLOWED_KINDS = new Set([
  'program',
  'list',
  'pipeline',
  'command',
  'command_name',
  'word',
  'string',
  'string_content',
  'raw_string',
  'number',
  'concatenation',
]);
const ALLOWED_PUNCTUATION = new Set(['&&', '||', ';', '|', '"', "'"]);
const SHELLS = new Set(['bash', 'zsh', 'sh']);

/** `bash`, `/usr/bin/zsh`, `sh.exe`: the shells whose `-c`/`-lc` scripts Codex splits. */
export function isSplittableShell(program: string): boolean {
  if (SHELLS.has(program)) return true;
  const base = path.basename(program);
  const stem = base.includes('.') && !base.startsWith('.') ? base.slice(0, base.lastIndexOf('.')) : base;
  return SHELLS.has(stem);
}

export interface SplitResult {
  commands: string[][];
  /** The argv was a shell script that could not be split: it is judged as one command. */
  unsplittableScript: boolean;
}

export class ShellSplitter {
  private constructor(private readonly parser: Parser) {}

  static async create(): Promise<ShellSplitter> {
    const require = createRequire(import.meta.url);
    await Parser.init();
    const bash = await Language.load(require.resolve('tree-sitter-bash/tree-sitter-bash.wasm'));
    const parser = new Parser();
    parser.setLanguage(bash);
    return new ShellSplitter(parser);
  }

  /** The plain commands of a script, or null when it is not made of plain commands only. */
  splitScript(script: string): string[][] | null {
    const tree = this.parser.parse(script);
    if (!tree) return null;
    try {
      const root = tree.rootNode;
      if (root.hasError) return null;
      const commands: Node[] = [];
      const stack: Node[] = [root];
      for (let node = stack.pop(); node; node = stack.pop()) {
        if (node.isNamed) {
          if (!ALLOWED_KINDS.has(node.type)) return null;
          if ((node.type === 'word' || node.type === 'number') && !isLiteralWord(node)) return null;
          if (node.type === 'command') commands.push(node);
        } else if (!ALLOWED_PUNCTUATION.has(node.type) && node.type.trim() !== '') return null;
        for (const child of node.children) if (child) stack.push(child);
      }
      commands.sort((a, b) => a.startIndex - b.startIndex);
      const out: string[][] = [];
      for (const c of commands) {
        const words = plainCommand(c);
        if (!words) return null;
        out.push(words);
      }
      return out;
    } finally {
      tree.delete();
    }
  }

  /**
   * The literal words of every command anywhere in a `bash -lc` script (inside loops,
   * substitutions, subshells…), dynamic words and redirections left out; null when the argv is
   * not such a script or the script does not parse. For spotting dangerous commands only: it
   * must never be taken as proof that a script is harmless.
   */
  literalCommands(argv: readonly string[]): string[][] | null {
    const [shell, flag, script] = argv;
    if (argv.length !== 3 || (flag !== '-c' && flag !== '-lc') || !isSplittableShell(shell as string)) return null;
    const tree = this.parser.parse(script as string);
    if (!tree) return null;
    try {
      if (tree.rootNode.hasError) return null;
      const out: string[][] = [];
      const stack: Node[] = [tree.rootNode];
      for (let node = stack.pop(); node; node = stack.pop()) {
        if (node.type === 'command') {
          const words = literalCommand(node);
          if (words) out.push(words);
        }
        for (const child of node.namedChildren) if (child) stack.push(child);
      }
      return out;
    } finally {
      tree.delete();
    }
  }

  /** The commands an exec policy judges for one argv. */
  commandsFor(argv: readonly string[]): SplitResult {
    const [shell, flag, script] = argv;
    if (argv.length === 3 && (flag === '-c' || flag === '-lc') && isSplittableShell(shell as string)) {
      const commands = this.splitScript(script as string);
      if (commands && commands.length > 0) return { commands, unsplittableScript: false };
      return { commands: [[...argv]], unsplittableScript: true };
    }
    return { commands: [[...argv]], unsplittableScript: false };
  }
}

/**
 * A word whose spelling is what the program receives: no expansion, globbing, brace or tilde
 * expansion, escape or zsh `=cmd`. Codex refuses to split a script holding any other word.
 */
function isLiteralWord(node: Node): boolean {
  if (node.namedChildCount > 0) return false;
  const text = node.text;
  return !text.startsWith('=') && !/[{}*?[\]\\~^#$`]/.test(text);
}

function doubleQuoted(node: Node): string | null {
  for (const part of node.namedChildren) if (part?.type !== 'string_content') return null;
  const text = node.text;
  if (text.length < 2 || !text.startsWith('"') || !text.endsWith('"')) return null;
  const inner = text.slice(1, -1);
  // Double quotes still remove these escapes: the spelling is not the value.
  if (/\\[$`"\\\n]/.test(inner)) return null;
  return inner;
}

function literalWord(node: Node): string | null {
  switch (node.type) {
    case 'word':
    case 'number':
      return isLiteralWord(node) ? node.text : null;
    case 'string':
      return doubleQuoted(node);
    case 'raw_string':
      return rawString(node);
    case 'concatenation': {
      let joined = '';
      for (const part of node.namedChildren) {
        const piece = part ? literalWord(part) : null;
        if (piece === null) return null;
        joined += piece;
      }
      return joined === '' ? null : joined;
    }
    default:
      return null;
  }
}

/** A command node's literal words: its name must be literal; other non-literal words are dropped. */
function literalCommand(cmd: Node): string[] | null {
  const words: string[] = [];
  let named = false;
  for (const child of cmd.namedChildren) {
    if (!child) continue;
    if (child.type === 'command_name') {
      const first = child.namedChild(0);
      const name = first ? literalWord(first) : null;
      if (name === null) return null;
      words.push(name);
      named = true;
    } else if (named) {
      const word = literalWord(child);
      if (word !== null) words.push(word);
    }
  }
  return named ? words : null;
}

function rawString(node: Node): string | null {
  const text = node.text;
  return text.length >= 2 && text.startsWith("'") && text.endsWith("'") ? text.slice(1, -1) : null;
}

function plainCommand(cmd: Node): string[] | null {
  const words: string[] = [];
  for (const child of cmd.namedChildren) {
    if (!child) return null;
    switch (child.type) {
      case 'command_name': {
        const word = child.namedChild(0);
        if (word?.type !== 'word') return null;
        words.push(word.text);
        break;
      }
      case 'word':
      case 'number':
        words.push(child.text);
        break;
      case 'string': {
        const s = doubleQuoted(child);
        if (s === null) return null;
        words.push(s);
        break;
      }
      case 'raw_string': {
        const s = rawString(child);
        if (s === null) return null;
        words.push(s);
        break;
      }
      case 'concatenation': {
        let joined = '';
        for (const part of child.namedChildren) {
          if (!part) return null;
          let piece: string | null;
          if (part.type === 'word' || part.type === 'number') piece = part.text;
          else if (part.type === 'string') piece = doubleQuoted(part);
          else if (part.type === 'raw_string') piece = rawString(part);
          else return null;
          if (piece === null) return null;
          joined += piece;
        }
        if (joined === '') return null;
        words.push(joined);
        break;
      }
      default:
        return null;
    }
  }
  return words;
}
