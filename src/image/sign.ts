/**
 * Optional signed URLs: an HMAC-SHA256 over the asset path and its query, carried in the `sig`
 * query parameter, so only the publisher (who holds a key) can mint image variants. Several keys
 * are accepted at once so a key can be rotated without breaking URLs already published. Pure apart
 * from node:crypto.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { clientError } from '../errors.js';

/** The query parameter that carries the signature. */
export const SIGNATURE_PARAM = 'sig';

/**
 * The exact string that is signed. Publishers reproduce this recipe in their own code:
 *
 * 1. Start with `/` followed by the asset path without its leading slash, as the CDN sees it
 *    after decoding (`photos/cat.jpg`).
 * 2. Append `?`, always (even when there are no parameters).
 * 3. Take every query parameter except `sig`, percent-decoded (`+` is a space), as `key=value`.
 * 4. Sort them by key, then by value, comparing Unicode code points (byte order of UTF-8; what
 *    Python's `sorted`, Go's `sort.Strings` and `Buffer.compare` do), and join them with `&`.
 *
 * So `?w=400&fmt=auto` and `?fmt=auto&w=400` both sign `/photos/cat.jpg?fmt=auto&w=400`.
 */
export function signaturePayload(path: string, query: URLSearchParams): string {
  const pairs: Array<[string, string]> = [];
  for (const [key, value] of query) {
    if (key !== SIGNATURE_PARAM) pairs.push([key, value]);
  }
  pairs.sort(([ka, va], [kb, vb]) => compareCodePoints(ka, kb) || compareCodePoints(va, vb));
  return `/${path}?${pairs.map(([key, value]) => `${key}=${value}`).join('&')}`;
}

/**
 * The `sig` value for a path and query: HMAC-SHA256 of `signaturePayload` (UTF-8) under `key`,
 * encoded base64url without padding (RFC 4648 §5), 43 characters.
 */
export function signPath(path: string, query: URLSearchParams, key: string): string {
  const payload = signaturePayload(path, query);
  return createHmac('sha256', key).update(payload, 'utf8').digest('base64url');
}

/**
 * Checks the `sig` parameter against every key. No-op when `keys` is empty (signing off).
 * Throws `missing_signature` (403) when `sig` is absent or given more than once, and
 * `bad_signature` (403) when no key produces it. Comparison is constant-time per key.
 */
export function verifySignature(
  path: string,
  query: URLSearchParams,
  keys: readonly string[],
): void {
  if (keys.length === 0) return;
  const given = query.getAll(SIGNATURE_PARAM);
  if (given.length !== 1) {
    const message =
      given.length === 0
        ? 'this URL must be signed: the sig parameter is missing'
        : `sig must be given exactly once, got ${given.length} values`;
    throw clientError('missing_signature', message, { status: 403, field: SIGNATURE_PARAM });
  }
  const actual = Buffer.from(given[0] ?? '', 'utf8');
  let matched = false;
  for (const key of keys) {
    const expected = Buffer.from(signPath(path, query, key), 'utf8');
    // timingSafeEqual throws on unequal lengths; a signature of the wrong length is simply wrong.
    if (expected.length === actual.length && timingSafeEqual(expected, actual)) matched = true;
  }
  if (!matched) {
    throw clientError('bad_signature', 'sig does not match this URL', {
      status: 403,
      field: SIGNATURE_PARAM,
    });
  }
}

/** Orders strings by Unicode code point, which is also UTF-8 byte order. */
function compareCodePoints(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
