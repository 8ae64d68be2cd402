import { readFile } from 'node:fs/promises';

/** The bearer token in `file` (surrounding whitespace trimmed); an empty file is an error. */
export async function readToken(file: string): Promise<string> {
  const token = (await readFile(file, 'utf8')).trim();
  if (!token) throw new Error(`token file ${file} is empty`);
  return token;
}
