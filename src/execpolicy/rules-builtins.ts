/** The three builtins of a `.rules` file, with Codex's argument checks and error texts. */
import path from 'node:path';
import type { Decision, NetworkProtocol, NetworkRule, PatternToken, PrefixRule } from './policy.js';
import { shlexSplit } from './shlex.js';
import { type Builtin, BuiltinError, repr, typeName, type Value } from './starlark-eval.js';

/** A `prefix_rule` call's examples, checked once the whole file has been evaluated. */
export interface PendingExamples {
  rules: PrefixRule[];
  matches: string[][];
  notMatches: string[][];
  /** Where the `prefix_rule` call starts in its file (offset). */
  site: number;
}

/** What evaluating rules files produces. */
export interface PolicyBuilder {
  prefixRules: PrefixRule[];
  hostExecutables: Map<string, string[]>;
  networkRules: NetworkRule[];
  pending: PendingExamples[];
}

export function newPolicyBuilder(): PolicyBuilder {
  return { prefixRules: [], hostExecutables: new Map(), networkRules: [], pending: [] };
}

function typeMismatch(param: string, expected: string, actual: Value): BuiltinError {
  return new BuiltinError(
    `Type of parameter \`${param}\` doesn't match, expected \`${expected}\`, actual \`${typeName(actual)} (repr: ${repr(actual)})\``,
  );
}

function str(args: Map<string, Value>, param: string): string | undefined {
  if (!args.has(param)) return undefined;
  const v = args.get(param) as Value;
  if (typeof v !== 'string') throw typeMismatch(param, 'str', v);
  return v;
}

function list(args: Map<string, Value>, param: string): Value[] | undefined {
  if (!args.has(param)) return undefined;
  const v = args.get(param) as Value;
  if (!Array.isArray(v)) throw typeMismatch(param, 'list', v);
  return v;
}

const invalidRule = (msg: string): BuiltinError => new BuiltinError(`invalid rule: ${msg}`);

function parseDecision(value: string): Decision {
  if (value === 'allow' || value === 'prompt' || value === 'forbidden') return value;
  throw new BuiltinError(`invalid decision: ${value}`);
}

function justificationOf(args: Map<string, Value>): string | null {
  const j = str(args, 'justification');
  if (j === undefined) return null;
  if (j.trim() === '') throw invalidRule('justification cannot be empty');
  return j;
}

function patternElement(v: Value): string[] {
  const bad = (msg: string): BuiltinError => new BuiltinError(`invalid pattern element: ${msg}`);
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) {
    if (v.length === 0) throw bad('pattern alternatives cannot be empty');
    return v.map((alt) => {
      if (typeof alt !== 'string') throw bad(`pattern alternative must be a string (got ${typeName(alt)})`);
      return alt;
    });
  }
  throw bad(`pattern element must be a string or list of strings (got ${typeName(v)})`);
}

function example(v: Value): string[] {
  const bad = (msg: string): BuiltinError => new BuiltinError(`invalid example: ${msg}`);
  if (typeof v === 'string') {
    if (v === '') throw bad('example cannot be an empty string');
    const words = shlexSplit(v);
    if (words === null) throw bad('example string has invalid shell syntax');
    return words;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) throw bad('example cannot be an empty list');
    return v.map((t) => {
      if (typeof t !== 'string') throw bad(`example tokens must be strings (got ${typeName(t)})`);
      return t;
    });
  }
  throw bad(`example must be a string or list of strings (got ${typeName(v)})`);
}

const PROTOCOLS: readonly NetworkProtocol[] = ['http', 'https', 'socks5_tcp', 'socks5_udp'];

function networkHost(host: string): string {
  if (host === '') throw invalidRule('network_rule host cannot be empty');
  if (/\s/.test(host)) throw invalidRule('network_rule host cannot contain whitespace');
  if (/[/?#]/.test(host)) throw invalidRule('network_rule host must be a hostname or IP literal (without scheme or path)');
  if (host.includes('*')) throw invalidRule('network_rule host must be a specific host; wildcards are not allowed');
  return host;
}

export function rulesBuiltins(builder: PolicyBuilder): Map<string, Builtin> {
  const prefixRule: Builtin = {
    name: 'prefix_rule',
    params: ['pattern', 'decision', 'match', 'not_match', 'justification'],
    required: ['pattern'],
    call(args, site) {
      const pattern = list(args, 'pattern') as Value[];
      const decisionText = str(args, 'decision');
      const matchList = list(args, 'match');
      const notMatchList = list(args, 'not_match');
      if (pattern.length === 0) throw new BuiltinError('invalid pattern element: pattern cannot be empty');
      const elements = pattern.map(patternElement);
      const decision = decisionText === undefined ? 'allow' : parseDecision(decisionText);
      const justification = justificationOf(args);
      const rest: PatternToken[] = elements.slice(1).map((alts) => (alts.length === 1 ? { single: alts[0] as string } : { alts }));
      const rules = (elements[0] as string[]).map((first): PrefixRule => ({ first, rest, decision, justification }));
      const matches = (matchList ?? []).map(example);
      const notMatches = (notMatchList ?? []).map(example);
      builder.prefixRules.push(...rules);
      if (matches.length > 0 || notMatches.length > 0) builder.pending.push({ rules, matches, notMatches, site: site.start });
      return null;
    },
  };
  const hostExecutable: Builtin = {
    name: 'host_executable',
    params: ['name', 'paths'],
    required: ['name', 'paths'],
    call(args) {
      const name = str(args, 'name') as string;
      const paths = list(args, 'paths') as Value[];
      if (name === '') throw invalidRule('host_executable name cannot be empty');
      if (name.includes('/') || name.includes('\\')) throw invalidRule(`host_executable name must be a bare executable name (got ${name})`);
      const out: string[] = [];
      for (const p of paths) {
        if (typeof p !== 'string') throw typeMismatch('paths', 'list of str', paths);
        if (!p.startsWith('/')) throw invalidRule(`host_executable paths must be absolute (got ${p})`);
        if (path.basename(p) !== name) throw invalidRule(`host_executable path \`${p}\` must have basename \`${name}\``);
        if (!out.includes(p)) out.push(p);
      }
      builder.hostExecutables.set(name, out);
      return null;
    },
  };
  const networkRule: Builtin = {
    name: 'network_rule',
    params: ['host', 'protocol', 'decision', 'justification'],
    required: ['host', 'protocol', 'decision'],
    call(args) {
      const host = str(args, 'host') as string;
      const protocol = str(args, 'protocol') as string;
      const decisionText = str(args, 'decision') as string;
      str(args, 'justification'); // type-checked with the other arguments, validated after the host
      if (!(PROTOCOLS as readonly string[]).includes(protocol)) {
        throw invalidRule(`network_rule protocol must be one of ${PROTOCOLS.join(', ')} (got ${protocol})`);
      }
      let decision: NetworkRule['decision'];
      if (decisionText === 'allow' || decisionText === 'deny' || decisionText === 'prompt') decision = decisionText;
      else if (decisionText === 'forbidden') decision = 'deny';
      else throw new BuiltinError(`invalid decision: ${decisionText}`);
      networkHost(host);
      const justification = justificationOf(args);
      const normalizedHost = host.toLowerCase().replace(/\.$/, '');
      builder.networkRules.push({ host, normalizedHost, protocol: protocol as NetworkProtocol, decision, justification });
      return null;
    },
  };
  return new Map([
    ['prefix_rule', prefixRule],
    ['host_executable', hostExecutable],
    ['network_rule', networkRule],
  ]);
}
