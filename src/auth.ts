/**
 * Bearer-token checks for the publisher, purge and admin APIs. Tokens are compared in constant
 * time over their SHA-256 digests, so neither content nor length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { CdnError } from './errors.js';

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** True when `given` equals `expected`, in time independent of where they differ. */
export function tokensEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * Check an `Authorization: Bearer …` header. Missing or malformed → 401 with
 * `WWW-Authenticate` (RFC 6750 §3); present but wrong → 403.
 */
export function requireBearer(header: string | null | undefined, expected: string, realm: string): void {
  const m = header === null || header === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!m) {
    throw new CdnError('unauthorized', 'client', `a Bearer token is required (Authorization: Bearer <${realm} token>)`, {
      status: 401,
      field: 'authorization',
      headers: { 'WWW-Authenticate': `Bearer realm="${realm}"` },
    });
  }
  if (!tokensEqual(m[1]!, expected)) {
    throw new CdnError('forbidden', 'client', `the ${realm} token is not valid`, { status: 403, field: 'authorization' });
  }
}
