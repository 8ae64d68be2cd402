import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { invalidParams } from './errors.js';

/**
 * Every path field takes a plain absolute path or a `file://` URI (docs/protocol.md §6). Results carry
 * paths in the form the request used (see `pathForm`): URIs for 0.142+ clients, which send URIs
 * and parse them back, plain paths for 0.122–0.141 clients. Anything else is
 * `-32602 path is not absolute: <path>`.
 */
export function parseAbsolutePath(value: string): string {
  if (value.startsWith('file:')) {
    let resolved: string;
    try {
      resolved = fileURLToPath(value);
    } catch (err) {
      throw invalidParams(`invalid file URI ${value}: ${err instanceof Error ? err.message : String(err)}`);
    }
    // `%00` decodes to a NUL, which no system call takes: refused here as in a plain path.
    if (resolved.includes('\0')) throw invalidParams(`path contains a NUL byte: ${JSON.stringify(resolved)}`);
    return resolved;
  }
  if (value === '' || !path.isAbsolute(value)) throw invalidParams(`path is not absolute: ${value}`);
  if (value.includes('\0')) throw invalidParams(`path contains a NUL byte: ${JSON.stringify(value)}`);
  return value;
}

/** An absolute path as a `file://` URI. */
export const pathToUri = (p: string): string => pathToFileURL(p).href;

export type PathForm = 'uri' | 'plain';

/** How a request spelled a path: the form its result's paths are given back in. */
export const pathForm = (value: string): PathForm => (value.startsWith('file:') ? 'uri' : 'plain');

/** A result path in the given form. */
export const formatPath = (p: string, form: PathForm): string => (form === 'uri' ? pathToUri(p) : p);
