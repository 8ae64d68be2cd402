import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Checks an `Authorization: Bearer <token>` header in constant time (lengths are hashed away). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header?.trim() ?? '');
  const given = match ? (match[1] as string).trim() : '';
  const ok = timingSafeEqual(digest(given), digest(token));
  return ok && given.length > 0;
}
