/**
 * Parser for the Starlark subset of Codex `.rules` files.
 *
 * Why hand-written: no maintained Starlark parser exists on npm (the packages found are either
 * unmaintained BUILD-file formatters or bindings to native/Go tools that need a download), and
 * `.rules` files only need a small, well-defined slice of the language: assignments, `def`,
 * `if`/`for`, calls with keyword arguments, lists, dicts, strings, ints and `+`. A recursive-descent
 * parser over starlark-lexer.ts's tokens covers exactly that, and keeps every node's source span so
 * that errors can be reported the way Codex's Starlark interpreter reports them.
 */
import { isKeyword, StarlarkSyntaxError, type Token, tokenize } from './starlark-lexer.js';

export interface Span {
  start: number;
  end: number;
}

export type Expr = Span &
  (
    | { type: 'name'; name: string }
    | { type: 'int'; value: number }
    | { type: 'string'; value: string }
    | { type: 'list'; items: Expr[] }
    | { type: 'tuple'; items: Expr[] }
    | { type: 'dict'; entries: Array<[Expr, Expr]> }
    | { type: 'call'; callee: Expr; args: Arg[] }
    | { type: 'index'; target: Expr; index: Expr }
    | { type: 'attr'; target: Expr; name: string }
    | { type: 'binary'; op: string; left: Expr; right: Expr }
    | { type: 'unary'; op: string; operand: Expr }
    | { type: 'cond'; test: Expr; then: Expr; otherwise: Expr }
    | { type: 'listcomp'; element: Expr; clauses: Clause[] }
  );

export type Clause = { kind: 'for'; targets: string[]; iter: Expr } | { kind: 'if'; test: Expr };

export interface Arg {
  name: string | null;
  value: Expr;
}

export interface Param {
  name: string;
  default: Expr | null;
}

export type Stmt = Span &
  (
    | { type: 'expr'; expr: Expr }
    | { type: 'assign'; target: string; op: '=' | '+='; value: Expr }
    | { type: 'def'; name: string; params: Param[]; body: Stmt[] }
    | { type: 'return'; value: Expr | null }
    | { type: 'pass' }
    | { type: 'if'; test: Expr; body: Stmt[]; orelse: Stmt[] }
    | { type: 'for'; targets: string[]; iter: Expr; body: Stmt[] }
    | { type: 'load'; module: string }
  );

function describe(t: Token): string {
  switch (t.kind) {
    case 'name':
      return isKeyword(t.value) ? `keyword '${t.value}'` : `identifier '${t.value}'`;
    case 'int':
      return `integer literal '${t.value}'`;
    case 'string':
      return `string literal ${JSON.stringify(t.value)}`;
    case 'op':
      return `symbol '${t.value}'`;
    case 'newline':
      return 'new line';
    case 'indent':
      return 'indentation';
    case 'dedent':
      return 'dedentation';
    case 'eof':
    case 'error':
      return 'end of file';
  }
}

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  private get peek(): Token {
    const t = this.tokens[this.pos] as Token;
    if (t.kind === 'error') throw new StarlarkSyntaxError(t.value, t.start, t.end);
    return t;
  }

  private kindNow(): Token['kind'] {
    return this.peek.kind;
  }

  private atBlockEnd(): boolean {
    return this.kindNow() === 'dedent' || this.kindNow() === 'eof';
  }

  private next(): Token {
    return this.tokens[this.pos++] as Token;
  }

  private isOp(value: string): boolean {
    return this.peek.kind === 'op' && this.peek.value === value;
  }

  private isName(value: string): boolean {
    return this.peek.kind === 'name' && this.peek.value === value;
  }

  private fail(expected: string): never {
    const t = this.peek;
    throw new StarlarkSyntaxError(`Parse error: unexpected ${describe(t)}, expected ${expected}`, t.start, t.end);
  }

  private expectOp(value: string): Token {
    if (!this.isOp(value)) this.fail(`symbol '${value}'`);
    return this.next();
  }

  private expectKind(kind: Token['kind'], what: string): Token {
    if (this.peek.kind !== kind) this.fail(what);
    return this.next();
  }

  private identifier(): Token {
    if (this.peek.kind !== 'name' || isKeyword(this.peek.value)) this.fail('identifier');
    return this.next();
  }

  module(): Stmt[] {
    const body: Stmt[] = [];
    while (this.peek.kind !== 'eof') {
      if (this.peek.kind === 'newline') {
        this.next();
        continue;
      }
      body.push(...this.statement());
    }
    return body;
  }

  private statement(): Stmt[] {
    const t = this.peek;
    if (t.kind === 'name') {
      if (t.value === 'def') return [this.def()];
      if (t.value === 'if') return [this.ifStmt()];
      if (t.value === 'for') return [this.forStmt()];
    }
    return this.simpleStatements();
  }

  /** `a; b; c NEWLINE` */
  private simpleStatements(): Stmt[] {
    const out = [this.small()];
    while (this.isOp(';')) {
      this.next();
      if (this.peek.kind === 'newline') break;
      out.push(this.small());
    }
    this.expectKind('newline', 'new line');
    return out;
  }

  private small(): Stmt {
    const t = this.peek;
    if (t.kind === 'name' && t.value === 'pass') {
      this.next();
      return { type: 'pass', start: t.start, end: t.end };
    }
    if (t.kind === 'name' && t.value === 'return') {
      this.next();
      const value = this.peek.kind === 'newline' || this.isOp(';') ? null : this.exprList();
      return { type: 'return', value, start: t.start, end: value ? value.end : t.end };
    }
    if (t.kind === 'name' && t.value === 'load') {
      this.next();
      this.expectOp('(');
      const module = this.expectKind('string', 'string literal');
      while (!this.isOp(')')) {
        this.expectOp(',');
        if (this.isOp(')')) break;
        if (this.peek.kind === 'name' && this.tokens[this.pos + 1]?.value === '=') {
          this.next();
          this.next();
        }
        this.expectKind('string', 'string literal');
      }
      const close = this.next();
      return { type: 'load', module: module.value, start: t.start, end: close.end };
    }
    const expr = this.exprList();
    if (this.isOp('=') || this.isOp('+=')) {
      const op = this.next().value as '=' | '+=';
      if (expr.type !== 'name')
        throw new StarlarkSyntaxError('Parse error: only simple names can be assigned to in .rules files', expr.start, expr.end);
      const value = this.exprList();
      return { type: 'assign', target: expr.name, op, value, start: expr.start, end: value.end };
    }
    return { type: 'expr', expr, start: expr.start, end: expr.end };
  }

  private block(): Stmt[] {
    this.expectOp(':');
    if (this.peek.kind !== 'newline') return this.simpleStatements();
    this.next();
    this.expectKind('indent', 'indentation');
    const body: Stmt[] = [];
    while (!this.atBlockEnd()) body.push(...this.statement());
    if (this.kindNow() === 'dedent') this.next();
    return body;
  }

  private def(): Stmt {
    const start = this.next().start;
    const name = this.identifier().value;
    this.expectOp('(');
    const params: Param[] = [];
    while (!this.isOp(')')) {
      const p = this.identifier().value;
      let def: Expr | null = null;
      if (this.isOp('=')) {
        this.next();
        def = this.expr();
      }
      params.push({ name: p, default: def });
      if (!this.isOp(')')) this.expectOp(',');
    }
    this.next();
    const body = this.block();
    return { type: 'def', name, params, body, start, end: body.at(-1)?.end ?? start };
  }

  private ifStmt(): Stmt {
    const start = this.next().start;
    const test = this.expr();
    const body = this.block();
    let orelse: Stmt[] = [];
    if (this.isName('elif')) orelse = [this.ifStmt()];
    else if (this.isName('else')) {
      this.next();
      orelse = this.block();
    }
    return { type: 'if', test, body, orelse, start, end: (orelse.at(-1) ?? body.at(-1))?.end ?? start };
  }

  private forStmt(): Stmt {
    const start = this.next().start;
    const targets = this.forTargets();
    const iter = this.exprList();
    const body = this.block();
    return { type: 'for', targets, iter, body, start, end: body.at(-1)?.end ?? start };
  }

  /** `a` or `a, b` (or `(a, b)`), then `in`. */
  private forTargets(): string[] {
    const paren = this.isOp('(');
    if (paren) this.next();
    const targets = [this.identifier().value];
    while (this.isOp(',')) {
      this.next();
      targets.push(this.identifier().value);
    }
    if (paren) this.expectOp(')');
    if (!this.isName('in')) this.fail("keyword 'in'");
    this.next();
    return targets;
  }

  /** An expression, or a bare tuple `a, b`. */
  private exprList(): Expr {
    const first = this.expr();
    if (!this.isOp(',')) return first;
    const items = [first];
    while (this.isOp(',')) {
      this.next();
      if (this.peek.kind === 'newline' || this.isOp('=') || this.isOp(')')) break;
      items.push(this.expr());
    }
    return { type: 'tuple', items, start: first.start, end: (items.at(-1) as Expr).end };
  }

  expr(): Expr {
    const then = this.or();
    if (!this.isName('if')) return then;
    this.next();
    const test = this.or();
    if (!this.isName('else')) this.fail("keyword 'else'");
    this.next();
    const otherwise = this.expr();
    return { type: 'cond', test, then, otherwise, start: then.start, end: otherwise.end };
  }

  private or(): Expr {
    let left = this.and();
    while (this.isName('or')) {
      this.next();
      const right = this.and();
      left = { type: 'binary', op: 'or', left, right, start: left.start, end: right.end };
    }
    return left;
  }

  private and(): Expr {
    let left = this.not();
    while (this.isName('and')) {
      this.next();
      const right = this.not();
      left = { type: 'binary', op: 'and', left, right, start: left.start, end: right.end };
    }
    return left;
  }

  private not(): Expr {
    if (this.isName('not')) {
      const start = this.next().start;
      const operand = this.not();
      return { type: 'unary', op: 'not', operand, start, end: operand.end };
    }
    return this.comparison();
  }

  private comparison(): Expr {
    let left = this.sum();
    for (;;) {
      let op: string | undefined;
      if (this.peek.kind === 'op' && ['==', '!=', '<', '>', '<=', '>='].includes(this.peek.value)) op = this.next().value;
      else if (this.isName('in')) op = this.next().value;
      else if (this.isName('not') && this.tokens[this.pos + 1]?.value === 'in') {
        this.pos += 2;
        op = 'not in';
      }
      if (!op) return left;
      const right = this.sum();
      left = { type: 'binary', op, left, right, start: left.start, end: right.end };
    }
  }

  private sum(): Expr {
    let left = this.product();
    while (this.isOp('+') || this.isOp('-')) {
      const op = this.next().value;
      const right = this.product();
      left = { type: 'binary', op, left, right, start: left.start, end: right.end };
    }
    return left;
  }

  private product(): Expr {
    let left = this.unary();
    while (this.isOp('*') || this.isOp('//') || this.isOp('%')) {
      const op = this.next().value;
      const right = this.unary();
      left = { type: 'binary', op, left, right, start: left.start, end: right.end };
    }
    return left;
  }

  private unary(): Expr {
    if (this.isOp('-') || this.isOp('+')) {
      const t = this.next();
      const operand = this.unary();
      return { type: 'unary', op: t.value, operand, start: t.start, end: operand.end };
    }
    return this.postfix();
  }

  private postfix(): Expr {
    let e = this.atom();
    for (;;) {
      if (this.isOp('(')) {
        this.next();
        const args: Arg[] = [];
        while (!this.isOp(')')) {
          if (this.peek.kind === 'name' && this.tokens[this.pos + 1]?.kind === 'op' && this.tokens[this.pos + 1]?.value === '=') {
            const name = this.identifier().value;
            this.next();
            args.push({ name, value: this.expr() });
          } else {
            args.push({ name: null, value: this.expr() });
          }
          this.separator(')');
        }
        const close = this.next();
        e = { type: 'call', callee: e, args, start: e.start, end: close.end };
      } else if (this.isOp('[')) {
        this.next();
        const index = this.expr();
        const close = this.expectOp(']');
        e = { type: 'index', target: e, index, start: e.start, end: close.end };
      } else if (this.isOp('.')) {
        this.next();
        const name = this.identifier();
        e = { type: 'attr', target: e, name: name.value, start: e.start, end: name.end };
      } else return e;
    }
  }

  private atom(): Expr {
    const t = this.peek;
    if (t.kind === 'int') {
      this.next();
      return { type: 'int', value: Number(t.value), start: t.start, end: t.end };
    }
    if (t.kind === 'string') {
      this.next();
      return { type: 'string', value: t.value, start: t.start, end: t.end };
    }
    if (t.kind === 'name' && !isKeyword(t.value)) {
      this.next();
      return { type: 'name', name: t.value, start: t.start, end: t.end };
    }
    if (this.isOp('[')) {
      this.next();
      if (this.isOp(']')) {
        const close = this.next();
        return { type: 'list', items: [], start: t.start, end: close.end };
      }
      const first = this.expr();
      if (this.isName('for')) {
        const clauses: Clause[] = [];
        while (this.isName('for') || this.isName('if')) {
          if (this.next().value === 'for') clauses.push({ kind: 'for', targets: this.forTargets(), iter: this.or() });
          else clauses.push({ kind: 'if', test: this.or() });
        }
        const close = this.expectOp(']');
        return { type: 'listcomp', element: first, clauses, start: t.start, end: close.end };
      }
      this.separator(']');
      const items = [first, ...this.items(']')];
      const close = this.next();
      return { type: 'list', items, start: t.start, end: close.end };
    }
    if (this.isOp('(')) {
      this.next();
      if (this.isOp(')')) {
        const close = this.next();
        return { type: 'tuple', items: [], start: t.start, end: close.end };
      }
      const first = this.expr();
      if (this.isOp(')')) {
        this.next();
        return first;
      }
      this.expectOp(',');
      const items = [first, ...this.items(')')];
      const close = this.next();
      return { type: 'tuple', items, start: t.start, end: close.end };
    }
    if (this.isOp('{')) {
      this.next();
      const entries: Array<[Expr, Expr]> = [];
      while (!this.isOp('}')) {
        const key = this.expr();
        this.expectOp(':');
        entries.push([key, this.expr()]);
        if (!this.isOp('}')) this.expectOp(',');
      }
      const close = this.next();
      return { type: 'dict', entries, start: t.start, end: close.end };
    }
    this.fail('expression');
  }

  /** After an item: a comma, or the closing bracket (which the error names, as Starlark does). */
  private separator(close: string): void {
    if (this.isOp(close)) return;
    if (!this.isOp(',')) this.fail(`symbol '${close}'`);
    this.next();
  }

  private items(close: string): Expr[] {
    const items: Expr[] = [];
    while (!this.isOp(close)) {
      items.push(this.expr());
      this.separator(close);
    }
    return items;
  }
}

/** Parses a whole `.rules` file; throws StarlarkSyntaxError. */
export function parseModule(src: string): Stmt[] {
  return new Parser(tokenize(src)).module();
}
