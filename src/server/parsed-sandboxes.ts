import type { FsCallOptions } from '../environment/types.js';
import { parseWireSandbox } from '../protocol/index.js';
import { sandboxFromWire } from '../sandbox/profile.js';

/** Distinct sandboxes kept per connection; a client sends one or two (its profile, per cwd). */
const MAX_KEPT = 32;
const NONE: FsCallOptions = Object.freeze({});

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function holdsNonFinite(value: unknown): boolean {
  if (typeof value === 'number') return !Number.isFinite(value);
  if (value === null || typeof value !== 'object') return false;
  return Object.values(value).some(holdsNonFinite);
}

/**
 * The `sandbox` of fs calls, validated and normalised once per distinct value. A 0.171 client sends
 * the same sandbox object with every fs call; validating it (zod, for the reference's error
 * wording) was most of a sandboxed `fs/getMetadata`'s server time. The key is the value's JSON
 * text, which determines the result: validation is a pure function of the JSON value. Only valid
 * sandboxes are kept (an invalid one is refused each time with its own error). The result is
 * frozen and the same object for every call with that value, so the file system can key its own
 * per-request work (the ceiling intersection) on its identity.
 */
export class ParsedSandboxes {
  private readonly known = new Map<string, FsCallOptions>();

  options(raw: unknown): FsCallOptions {
    if (raw === undefined || raw === null) return NONE;
    // A non-object is refused by the parser with its own message; nothing to key.
    if (typeof raw !== 'object') return this.parse(raw);
    const key = JSON.stringify(raw);
    // JSON text stands for the value but for numbers out of range (1e999 is Infinity, written
    // `null`) and -0 (written `0`; every number a sandbox holds must be at least 1, so 0 and -0
    // are refused alike): a value holding a non-finite number is parsed every time, never keyed.
    if (key.includes('null') && holdsNonFinite(raw)) return this.parse(raw);
    let found = this.known.get(key);
    if (found === undefined) {
      found = this.parse(raw);
      if (this.known.size >= MAX_KEPT) this.known.clear();
      this.known.set(key, found);
    }
    return found;
  }

  private parse(raw: unknown): FsCallOptions {
    const wire = parseWireSandbox(raw);
    return wire ? deepFreeze({ sandbox: sandboxFromWire(wire) }) : NONE;
  }
}
