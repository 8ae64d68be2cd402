/**
 * Evaluator for the Starlark subset parsed by starlark-parser.ts. Programs are bounded: no
 * `while`, no recursion (Starlark forbids it; a depth limit enforces it) and a cap on the size of
 * built strings and lists, so evaluating an operator's rules file always ends.
 */
import type { Expr, Span, Stmt } from './starlark-parser.js';

export class StarlarkTuple {
  constructor(readonly items: Value[]) {}
}

export class StarlarkFunction {
  constructor(
    readonly name: string,
    readonly params: Array<{ name: string; default: Value | undefined }>,
    readonly body: Stmt[],
  ) {}
}

export interface Builtin {
  name: string;
  /** Parameter names in positional order. */
  params: readonly string[];
  /** Those that must be given. */
  required: readonly string[];
  /** `site`: the call expression (where a later error about this call points). */
  call(args: Map<string, Value>, site: Span): Value;
}

export type Value = null | boolean | number | string | Value[] | StarlarkTuple | Map<Value, Value> | StarlarkFunction | Builtin;

/** A call in progress: where it was made, and what it called. */
export interface CallSite extends Span {
  callee: string;
}

/** An error raised while evaluating: where, and the call sites active at the time (outermost first). */
export class StarlarkEvalError extends Error {
  constructor(
    message: string,
    readonly span: Span,
    readonly frames: CallSite[],
  ) {
    super(message);
  }
}

/** Raised by a builtin: reported at the builtin's call site. */
export class BuiltinError extends Error {}

const MAX_DEPTH = 64;
/** Statements and comprehension steps one file may run: loops over large ranges end in an error, not a hang. */
const MAX_STEPS = 1_000_000;
const MAX_LENGTH = 1_000_000;

export function typeName(v: Value): string {
  if (v === null) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'int';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) return 'list';
  if (v instanceof StarlarkTuple) return 'tuple';
  if (v instanceof Map) return 'dict';
  return 'function';
}

export function repr(v: Value): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(repr).join(', ')}]`;
  if (v instanceof StarlarkTuple) return `(${v.items.map(repr).join(', ')}${v.items.length === 1 ? ',' : ''})`;
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `${repr(k)}: ${repr(x)}`).join(', ')}}`;
  return `<function ${v.name}>`;
}

function truthy(v: Value): boolean {
  if (v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof StarlarkTuple) return v.items.length > 0;
  if (v instanceof Map) return v.size > 0;
  return true;
}

function equal(a: Value, b: Value): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i] as Value));
  if (a instanceof StarlarkTuple && b instanceof StarlarkTuple) return equal(a.items, b.items);
  return a === b;
}

const arity = (name: string, args: Value[], min: number, max: number): void => {
  if (args.length < min || args.length > max)
    throw new BuiltinError(`\`${name}\` takes ${min === max ? min : `${min} to ${max}`} argument(s), got ${args.length}`);
};
const asString = (v: Value, what: string): string => {
  if (typeof v !== 'string') throw new BuiltinError(`${what} expects a string, got \`${typeName(v)}\``);
  return v;
};

/** The methods of Starlark's built-in types that rules files plausibly use. */
function callMethod(target: Value, name: string, args: Value[]): Value {
  const a0 = args[0] as Value;
  if (Array.isArray(target)) {
    if (name === 'append') return (arity(name, args, 1, 1), target.push(a0), null);
    if (name === 'extend') {
      arity(name, args, 1, 1);
      if (!Array.isArray(a0))
        throw new BuiltinError(
          `Type of parameter \`other\` doesn't match, expected \`iterable\`, actual \`${typeName(a0)} (repr: ${repr(a0)})\``,
        );
      if (target.length + a0.length > MAX_LENGTH) throw new BuiltinError('Value too large');
      target.push(...a0);
      return null;
    }
    if (name === 'index') return (arity(name, args, 1, 1), target.findIndex((x) => equal(x, a0)));
  }
  if (target instanceof Map) {
    const find = (k: Value): Value | undefined => [...target].find(([key]) => equal(key, k))?.[1];
    if (name === 'get') return (arity(name, args, 1, 2), find(a0) ?? args[1] ?? null);
    if (name === 'keys') return (arity(name, args, 0, 0), [...target.keys()]);
    if (name === 'values') return (arity(name, args, 0, 0), [...target.values()]);
    if (name === 'items') return (arity(name, args, 0, 0), [...target].map(([k, v]) => new StarlarkTuple([k, v])));
  }
  if (typeof target === 'string') {
    if (name === 'split') {
      arity(name, args, 0, 1);
      return args.length === 0 || a0 === null ? target.split(/\s+/).filter((w) => w !== '') : target.split(asString(a0, 'split'));
    }
    if (name === 'join') {
      arity(name, args, 1, 1);
      if (!Array.isArray(a0)) throw new BuiltinError('join expects a list');
      return a0.map((x) => asString(x, 'join')).join(target);
    }
    if (name === 'startswith') return (arity(name, args, 1, 1), target.startsWith(asString(a0, name)));
    if (name === 'endswith') return (arity(name, args, 1, 1), target.endsWith(asString(a0, name)));
    if (name === 'strip') return (arity(name, args, 0, 0), target.trim());
    if (name === 'lower') return (arity(name, args, 0, 0), target.toLowerCase());
    if (name === 'upper') return (arity(name, args, 0, 0), target.toUpperCase());
    if (name === 'replace') return (arity(name, args, 2, 2), target.split(asString(a0, name)).join(asString(args[1] as Value, name)));
  }
  throw new BuiltinError(`Object of type \`${typeName(target)}\` has no attribute \`${name}\``);
}

/** Starlark's standard functions that rules files plausibly use (positional arguments). */
export function standardBuiltins(): Map<string, Builtin> {
  const fns: Record<string, [number, number, (args: Value[]) => Value]> = {
    len: [
      1,
      1,
      ([v]) =>
        typeof v === 'string' || Array.isArray(v)
          ? v.length
          : v instanceof StarlarkTuple
            ? v.items.length
            : v instanceof Map
              ? v.size
              : fail1(`len() not supported on \`${typeName(v as Value)}\``),
    ],
    str: [1, 1, ([v]) => (typeof v === 'string' ? v : repr(v as Value))],
    repr: [1, 1, ([v]) => repr(v as Value)],
    bool: [1, 1, ([v]) => truthy(v as Value)],
    type: [1, 1, ([v]) => typeName(v as Value)],
    list: [
      0,
      1,
      ([v]) =>
        v === undefined
          ? []
          : Array.isArray(v)
            ? [...v]
            : v instanceof StarlarkTuple
              ? [...v.items]
              : v instanceof Map
                ? [...v.keys()]
                : fail1(`list() not supported on \`${typeName(v)}\``),
    ],
    tuple: [
      1,
      1,
      ([v]) => new StarlarkTuple(Array.isArray(v) ? [...v] : v instanceof StarlarkTuple ? v.items : fail1('tuple() expects a list')),
    ],
    range: [
      1,
      3,
      (args) => {
        const [a, b, step = 1] = args.map((x) => (typeof x === 'number' ? x : fail1('range() expects ints')));
        const [lo, hi] = b === undefined ? [0, a as number] : [a as number, b];
        if (step === 0) fail1('range() step cannot be zero');
        if (Math.abs((hi - lo) / step) > MAX_LENGTH) fail1('Value too large');
        const out: number[] = [];
        for (let i = lo; step > 0 ? i < hi : i > hi; i += step) out.push(i);
        return out;
      },
    ],
    sorted: [
      1,
      1,
      ([v]) => {
        const items = Array.isArray(v) ? [...v] : fail1('sorted() expects a list');
        return items.sort((x, y) =>
          typeof x === 'number' && typeof y === 'number' ? x - y : String(x) < String(y) ? -1 : String(x) > String(y) ? 1 : 0,
        );
      },
    ],
    reversed: [1, 1, ([v]) => (Array.isArray(v) ? [...v].reverse() : fail1('reversed() expects a list'))],
    enumerate: [1, 1, ([v]) => (Array.isArray(v) ? v.map((x, i) => new StarlarkTuple([i, x])) : fail1('enumerate() expects a list'))],
    zip: [
      2,
      2,
      ([a, b]) =>
        Array.isArray(a) && Array.isArray(b)
          ? a.slice(0, Math.min(a.length, b.length)).map((x, i) => new StarlarkTuple([x, b[i] as Value]))
          : fail1('zip() expects lists'),
    ],
    any: [1, 1, ([v]) => (Array.isArray(v) ? v.some(truthy) : fail1('any() expects a list'))],
    all: [1, 1, ([v]) => (Array.isArray(v) ? v.every(truthy) : fail1('all() expects a list'))],
    print: [0, 16, () => null],
    fail: [1, 1, ([v]) => fail1(`fail: ${typeof v === 'string' ? v : repr(v as Value)}`)],
  };
  const out = new Map<string, Builtin>();
  for (const [name, [min, max, fn]] of Object.entries(fns)) {
    const params = Array.from({ length: max }, (_, i) => `arg${i}`);
    out.set(name, {
      name,
      params,
      required: params.slice(0, min),
      call: (args) => fn(params.filter((p) => args.has(p)).map((p) => args.get(p) as Value)),
    });
  }
  return out;
}

function fail1(message: string): never {
  throw new BuiltinError(message);
}

class Return {
  constructor(readonly value: Value) {}
}

/** Names visible to code: each function's locals, then module globals, then builtins. */
function declaredNames(body: Stmt[], into: Set<string>): Set<string> {
  for (const s of body) {
    if (s.type === 'assign') into.add(s.target);
    else if (s.type === 'def') into.add(s.name);
    else if (s.type === 'for') {
      for (const t of s.targets) into.add(t);
      declaredNames(s.body, into);
    } else if (s.type === 'if') {
      declaredNames(s.body, into);
      declaredNames(s.orelse, into);
    }
  }
  return into;
}

/**
 * Checks what Starlark checks before running anything: every name resolves, and no `load`.
 * Throws StarlarkEvalError with no frames (Starlark reports these without a traceback).
 */
function resolveNames(module: Stmt[], builtins: ReadonlySet<string>): void {
  const globals = declaredNames(module, new Set());
  const visible = (name: string, scopes: Array<Set<string>>): boolean => builtins.has(name) || scopes.some((s) => s.has(name));
  const checkExpr = (e: Expr, scopes: Array<Set<string>>): void => {
    switch (e.type) {
      case 'name':
        if (!visible(e.name, scopes)) throw new StarlarkEvalError(`Variable \`${e.name}\` not found`, e, []);
        return;
      case 'list':
      case 'tuple':
        return e.items.forEach((x) => checkExpr(x, scopes));
      case 'dict':
        return e.entries.forEach(([k, v]) => (checkExpr(k, scopes), checkExpr(v, scopes)));
      case 'call':
        checkExpr(e.callee, scopes);
        return e.args.forEach((a) => checkExpr(a.value, scopes));
      case 'index':
        checkExpr(e.target, scopes);
        return checkExpr(e.index, scopes);
      case 'attr':
        return checkExpr(e.target, scopes);
      case 'binary':
        checkExpr(e.left, scopes);
        return checkExpr(e.right, scopes);
      case 'unary':
        return checkExpr(e.operand, scopes);
      case 'cond':
        checkExpr(e.test, scopes);
        checkExpr(e.then, scopes);
        return checkExpr(e.otherwise, scopes);
      case 'listcomp': {
        const inner = new Set<string>();
        const all = [inner, ...scopes];
        for (const c of e.clauses) {
          if (c.kind === 'for') {
            checkExpr(c.iter, all);
            for (const t of c.targets) inner.add(t);
          } else checkExpr(c.test, all);
        }
        return checkExpr(e.element, all);
      }
      default:
        return;
    }
  };
  const checkBody = (body: Stmt[], scopes: Array<Set<string>>): void => {
    for (const s of body) {
      switch (s.type) {
        case 'load':
          throw new StarlarkEvalError(`No imports are available, you tried \`${s.module}\` (no call to \`Evaluator.set_loader\`)`, s, []);
        case 'expr':
          checkExpr(s.expr, scopes);
          break;
        case 'assign':
          checkExpr(s.value, scopes);
          break;
        case 'return':
          if (s.value) checkExpr(s.value, scopes);
          break;
        case 'if':
          checkExpr(s.test, scopes);
          checkBody(s.body, scopes);
          checkBody(s.orelse, scopes);
          break;
        case 'for':
          checkExpr(s.iter, scopes);
          checkBody(s.body, scopes);
          break;
        case 'def': {
          for (const p of s.params) if (p.default) checkExpr(p.default, scopes);
          const locals = declaredNames(s.body, new Set(s.params.map((p) => p.name)));
          checkBody(s.body, [locals, ...scopes]);
          break;
        }
        case 'pass':
          break;
      }
    }
  };
  checkBody(module, [globals]);
}

export class Evaluator {
  private readonly globals = new Map<string, Value>();
  /** Call sites of the calls in progress, outermost first. */
  private readonly frames: CallSite[] = [];
  private steps = 0;

  constructor(private readonly builtins: ReadonlyMap<string, Builtin>) {}

  run(module: Stmt[]): void {
    resolveNames(module, new Set([...this.builtins.keys(), 'None', 'True', 'False']));
    this.execBody(module, null);
  }

  private fail(message: string, span: Span): never {
    throw new StarlarkEvalError(message, span, [...this.frames]);
  }

  private lookup(name: string, locals: Map<string, Value> | null, span: Span): Value {
    if (locals?.has(name)) return locals.get(name) as Value;
    if (this.globals.has(name)) return this.globals.get(name) as Value;
    const builtin = this.builtins.get(name);
    if (builtin) return builtin;
    return this.fail(`Local variable \`${name}\` referenced before assignment`, span);
  }

  private execBody(body: Stmt[], locals: Map<string, Value> | null): void {
    for (const s of body) this.exec(s, locals);
  }

  private step(span: Span): void {
    if (++this.steps > MAX_STEPS) this.fail(`evaluation exceeded ${MAX_STEPS} steps`, span);
  }

  private exec(s: Stmt, locals: Map<string, Value> | null): void {
    this.step(s);
    const scope = locals ?? this.globals;
    switch (s.type) {
      case 'expr':
        this.eval(s.expr, locals);
        return;
      case 'assign': {
        const value = this.eval(s.value, locals);
        if (s.op === '=') scope.set(s.target, value);
        else scope.set(s.target, this.binary('+', this.lookup(s.target, locals, s), value, s));
        return;
      }
      case 'def': {
        const params = s.params.map((p) => ({ name: p.name, default: p.default ? this.eval(p.default, locals) : undefined }));
        scope.set(s.name, new StarlarkFunction(s.name, params, s.body));
        return;
      }
      case 'return':
        throw new Return(s.value ? this.eval(s.value, locals) : null);
      case 'pass':
      case 'load':
        return;
      case 'if':
        this.execBody(truthy(this.eval(s.test, locals)) ? s.body : s.orelse, locals);
        return;
      case 'for': {
        for (const item of this.iterate(this.eval(s.iter, locals), s.iter)) {
          this.assignTargets(scope, s.targets, item, s);
          this.execBody(s.body, locals);
        }
        return;
      }
    }
  }

  private iterate(v: Value, span: Span): Value[] {
    if (Array.isArray(v)) return [...v];
    if (v instanceof StarlarkTuple) return v.items;
    if (v instanceof Map) return [...v.keys()];
    return this.fail(`Operation \`iter\` not supported on type \`${typeName(v)}\``, span);
  }

  private assignTargets(scope: Map<string, Value>, targets: string[], item: Value, span: Span): void {
    if (targets.length === 1) return void scope.set(targets[0] as string, item);
    const parts = Array.isArray(item) ? item : item instanceof StarlarkTuple ? item.items : null;
    if (!parts || parts.length !== targets.length)
      this.fail(`Unpacked ${parts ? parts.length : 1} values but expected ${targets.length}`, span);
    targets.forEach((t, i) => scope.set(t, parts[i] as Value));
  }

  private comprehension(e: Extract<Expr, { type: 'listcomp' }>, locals: Map<string, Value> | null): Value[] {
    const out: Value[] = [];
    const scope = new Map(locals ?? []);
    const run = (i: number): void => {
      const clause = e.clauses[i];
      this.step(e);
      if (!clause) {
        out.push(this.eval(e.element, scope));
        if (out.length > MAX_LENGTH) this.fail('Value too large', e);
        return;
      }
      if (clause.kind === 'if') {
        if (truthy(this.eval(clause.test, scope))) run(i + 1);
        return;
      }
      for (const item of this.iterate(this.eval(clause.iter, scope), clause.iter)) {
        this.assignTargets(scope, clause.targets, item, e);
        run(i + 1);
      }
    };
    run(0);
    return out;
  }

  private eval(e: Expr, locals: Map<string, Value> | null): Value {
    switch (e.type) {
      case 'name':
        if (e.name === 'None') return null;
        if (e.name === 'True') return true;
        if (e.name === 'False') return false;
        return this.lookup(e.name, locals, e);
      case 'int':
        return e.value;
      case 'string':
        return e.value;
      case 'list':
        return e.items.map((x) => this.eval(x, locals));
      case 'tuple':
        return new StarlarkTuple(e.items.map((x) => this.eval(x, locals)));
      case 'dict': {
        const m = new Map<Value, Value>();
        for (const [k, v] of e.entries) m.set(this.eval(k, locals), this.eval(v, locals));
        return m;
      }
      case 'cond':
        return truthy(this.eval(e.test, locals)) ? this.eval(e.then, locals) : this.eval(e.otherwise, locals);
      case 'unary': {
        const v = this.eval(e.operand, locals);
        if (e.op === 'not') return !truthy(v);
        if (typeof v !== 'number') this.fail(`Operation \`${e.op}\` not supported on type \`${typeName(v)}\``, e);
        return e.op === '-' ? -v : v;
      }
      case 'binary': {
        if (e.op === 'and') {
          const l = this.eval(e.left, locals);
          return truthy(l) ? this.eval(e.right, locals) : l;
        }
        if (e.op === 'or') {
          const l = this.eval(e.left, locals);
          return truthy(l) ? l : this.eval(e.right, locals);
        }
        return this.binary(e.op, this.eval(e.left, locals), this.eval(e.right, locals), e);
      }
      case 'index': {
        const target = this.eval(e.target, locals);
        const index = this.eval(e.index, locals);
        if (target instanceof Map) {
          for (const [k, v] of target) if (equal(k, index)) return v;
          return this.fail(`Key \`${repr(index)}\` not found in dictionary`, e);
        }
        const seq = typeof target === 'string' || Array.isArray(target) ? target : target instanceof StarlarkTuple ? target.items : null;
        if (seq === null || typeof index !== 'number')
          return this.fail(`Operation \`[]\` not supported for types \`${typeName(target)}\` and \`${typeName(index)}\``, e);
        const i = index < 0 ? seq.length + index : index;
        if (i < 0 || i >= seq.length) this.fail(`Index \`${index}\` is out of bound`, e);
        return seq[i] as Value;
      }
      case 'attr':
        return this.fail(`Object of type \`${typeName(this.eval(e.target, locals))}\` has no attribute \`${e.name}\``, e);
      case 'call':
        return this.call(e, locals);
      case 'listcomp':
        return this.comprehension(e, locals);
    }
  }

  private binary(op: string, l: Value, r: Value, span: Span): Value {
    const unsupported = (): never =>
      this.fail(`Operation \`${op}\` not supported for types \`${typeName(l)}\` and \`${typeName(r)}\``, span);
    const capped = <T extends string | Value[]>(v: T): T => (v.length > MAX_LENGTH ? this.fail('Value too large', span) : v);
    switch (op) {
      case '==':
        return equal(l, r);
      case '!=':
        return !equal(l, r);
      case 'in':
      case 'not in': {
        let found: boolean;
        if (typeof r === 'string' && typeof l === 'string') found = r.includes(l);
        else if (Array.isArray(r)) found = r.some((x) => equal(x, l));
        else if (r instanceof StarlarkTuple) found = r.items.some((x) => equal(x, l));
        else if (r instanceof Map) found = [...r.keys()].some((x) => equal(x, l));
        else return unsupported();
        return op === 'in' ? found : !found;
      }
      case '+':
        if (typeof l === 'number' && typeof r === 'number') return l + r;
        if (typeof l === 'string' && typeof r === 'string') return capped(l + r);
        if (Array.isArray(l) && Array.isArray(r)) return capped([...l, ...r]);
        if (l instanceof StarlarkTuple && r instanceof StarlarkTuple) return new StarlarkTuple(capped([...l.items, ...r.items]));
        return unsupported();
      case '-':
        if (typeof l === 'number' && typeof r === 'number') return l - r;
        return unsupported();
      case '*': {
        if (typeof l === 'number' && typeof r === 'number') return l * r;
        const [seq, n] = typeof r === 'number' ? [l, r] : [r, l];
        if (typeof n !== 'number') return unsupported();
        if (typeof seq === 'string') return seq.length * n > MAX_LENGTH ? this.fail('Value too large', span) : seq.repeat(Math.max(0, n));
        if (Array.isArray(seq)) {
          if (seq.length * n > MAX_LENGTH) this.fail('Value too large', span);
          return Array.from({ length: Math.max(0, n) }, () => seq).flat();
        }
        return unsupported();
      }
      case '//':
      case '%':
        if (typeof l === 'number' && typeof r === 'number') {
          if (r === 0) this.fail('Integer division by zero', span);
          return op === '//' ? Math.floor(l / r) : l - r * Math.floor(l / r);
        }
        return unsupported();
      case '<':
      case '>':
      case '<=':
      case '>=':
        if ((typeof l === 'number' && typeof r === 'number') || (typeof l === 'string' && typeof r === 'string')) {
          return op === '<' ? l < r : op === '>' ? l > r : op === '<=' ? l <= r : l >= r;
        }
        return unsupported();
    }
    return unsupported();
  }

  private call(e: Extract<Expr, { type: 'call' }>, locals: Map<string, Value> | null): Value {
    if (e.callee.type === 'attr') {
      const target = this.eval(e.callee.target, locals);
      const args = e.args.map((a) =>
        a.name === null
          ? this.eval(a.value, locals)
          : this.fail(`\`${e.callee.type === 'attr' ? e.callee.name : ''}\` takes positional arguments only`, e),
      );
      try {
        return callMethod(target, e.callee.name, args);
      } catch (err) {
        if (err instanceof BuiltinError) this.fail(err.message, e);
        throw err;
      }
    }
    const callee = this.eval(e.callee, locals);
    const positional: Value[] = [];
    const named = new Map<string, Value>();
    for (const a of e.args) {
      const v = this.eval(a.value, locals);
      if (a.name === null) positional.push(v);
      else named.set(a.name, v);
    }
    if (callee instanceof StarlarkFunction) {
      if (this.frames.length >= MAX_DEPTH) this.fail('Starlark call stack overflow', e);
      this.frames.push({ start: e.start, end: e.end, callee: callee.name });
      try {
        const required = callee.params.filter((p) => p.default === undefined).map((p) => p.name);
        const frame = this.bind(
          callee.name,
          callee.params.map((p) => p.name),
          required,
          positional,
          named,
          e,
          (name) => callee.params.find((p) => p.name === name)?.default,
        );
        try {
          this.execBody(callee.body, frame);
        } catch (err) {
          if (err instanceof Return) return err.value;
          throw err;
        }
        return null;
      } finally {
        this.frames.pop();
      }
    }
    if (
      callee !== null &&
      typeof callee === 'object' &&
      'call' in callee &&
      !(callee instanceof Map) &&
      !Array.isArray(callee) &&
      !(callee instanceof StarlarkTuple)
    ) {
      const builtin = callee as Builtin;
      this.frames.push({ start: e.start, end: e.end, callee: builtin.name });
      try {
        const args = this.bind(builtin.name, builtin.params, builtin.required, positional, named, e, () => undefined);
        return builtin.call(args, { start: e.start, end: e.end });
      } catch (err) {
        if (err instanceof BuiltinError) this.fail(err.message, e);
        throw err;
      } finally {
        this.frames.pop();
      }
    }
    return this.fail(`Operation \`call\` not supported on type \`${typeName(callee)}\``, e);
  }

  private bind(
    name: string,
    params: readonly string[],
    required: readonly string[],
    positional: Value[],
    named: Map<string, Value>,
    span: Span,
    defaultOf: (param: string) => Value | undefined,
  ): Map<string, Value> {
    if (positional.length > params.length)
      this.fail(`Found ${positional.length - params.length} extra positional parameter(s) for call to ${name}`, span);
    const bound = new Map<string, Value>();
    positional.forEach((v, i) => bound.set(params[i] as string, v));
    const extra: string[] = [];
    for (const [k, v] of named) {
      if (!params.includes(k)) extra.push(k);
      else if (bound.has(k)) this.fail(`Multiple parameters named \`${k}\` for call to ${name}`, span);
      else bound.set(k, v);
    }
    if (extra.length > 0) this.fail(`Found \`${extra.join('`, `')}\` extra named parameter(s) for call to ${name}`, span);
    for (const p of required) if (!bound.has(p)) this.fail(`Missing parameter \`${p}\` for call to \`${name}\``, span);
    for (const p of params) {
      if (bound.has(p)) continue;
      const d = defaultOf(p);
      if (d !== undefined) bound.set(p, d);
    }
    return bound;
  }
}
