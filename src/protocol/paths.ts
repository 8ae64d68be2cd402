import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalidParams } from './errors.js';

/**
 * Every path field takes a plain absolute path or a `file://` URI (PROTOCOL.md §1); results always
 * carry plain paths. Anything else is `-32602 path is not absolute: <path>`.
 */
export function parseAbsolutePath(value: string): string {
  if (value.startsWith('file:')) {
    let resolved: string;
    try {
      resolved = fileURLToPath(value);
    } catch (err) {
      throw invalidParams(`invalid file URI ${value}: ${err instanceof Error ? err.message : String(err)}`);
    }
    return resolved;
  }
  if (value === '' || !path.isAbsolute(value)) throw invalidParams(`path is not absolute: ${value}`);
  if (value.includes('\0')) throw invalidParams(`path contains a NUL byte: ${JSON.stringify(value)}`);
  return value;
}
