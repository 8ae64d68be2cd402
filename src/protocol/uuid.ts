const PREFIX = 'urn:uuid:';
const GROUPS = [8, 4, 4, 4, 12];
const isHex = (c: string): boolean => /^[0-9a-fA-F]$/.test(c);

/**
 * Why `text` is not a UUID, in the words of the Rust `uuid` crate the reference parses with
 * (hyphenated, simple, braced or `urn:uuid:` forms), or undefined when it is one.
 */
export function uuidProblem(text: string): string | undefined {
  let start = text.startsWith(PREFIX) ? PREFIX.length : 0;
  let body = text.slice(start);
  if (body.length === 38 && body.startsWith('{') && body.endsWith('}')) {
    body = body.slice(1, -1);
    start += 1;
  }
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    // The position is 1-based, counted in the text as sent.
    if (c !== '-' && !isHex(c))
      return `invalid character: expected an optional prefix of \`urn:uuid:\` followed by [0-9a-fA-F-], found \`${c}\` at ${start + i + 1}`;
  }
  if (!body.includes('-'))
    return body.length === 32 ? undefined : `invalid length: expected length 32 for simple format, found ${body.length}`;
  const groups = body.split('-');
  if (groups.length !== GROUPS.length) return `invalid group count: expected ${GROUPS.length}, found ${groups.length}`;
  for (let g = 0; g < GROUPS.length; g++) {
    const found = (groups[g] as string).length;
    if (found !== GROUPS[g]) return `invalid group length in group ${g}: expected ${GROUPS[g]}, found ${found}`;
  }
  return undefined;
}
