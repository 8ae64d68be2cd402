const PREFIX = 'urn:uuid:';
const GROUPS = [8, 4, 4, 4, 12];
const isHex = (c: string): boolean => /^[0-9a-fA-F]$/.test(c);

/**
 * Why `text` is not a UUID, in the words of the Rust `uuid` crate the reference parses with
 * (hyphenated, simple, braced or `urn:uuid:` forms), or undefined when it is one.
 */
export function uuidProblem(text: string): string | undefined {
  let body = text.startsWith(PREFIX) ? text.slice(PREFIX.length) : text;
  const offset = text.length - body.length;
  if (body.length === 38 && body.startsWith('{') && body.endsWith('}')) body = body.slice(1, -1);
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c !== '-' && !isHex(c)) {
      const at = offset + i + 1 + (body === text.slice(offset) ? 0 : 1);
      return `invalid character: expected an optional prefix of \`urn:uuid:\` followed by [0-9a-fA-F-], found \`${c}\` at ${at}`;
    }
  }
  if (!body.includes('-')) return body.length === 32 ? undefined : `invalid length: expected length 32 for simple format, found ${body.length}`;
  const groups = body.split('-');
  if (groups.length !== GROUPS.length) return `invalid group count: expected ${GROUPS.length}, found ${groups.length}`;
  for (let g = 0; g < GROUPS.length; g++) {
    const found = (groups[g] as string).length;
    if (found !== GROUPS[g]) return `invalid group length in group ${g}: expected ${GROUPS[g]}, found ${found}`;
  }
  return undefined;
}
