/**
 * Asset paths: the one place where a URL path as received becomes the relative path an asset is
 * stored and looked up under (`photos/cat.jpg`), and back.
 *
 * The URL path is percent-decoded exactly once; every check runs on the decoded text, so an
 * encoded traversal (`%2e%2e/`, `..%2f`) is caught and a doubly encoded one (`%252e%252e`) stays
 * the literal, harmless name `%2e%2e`. Stores call `validateAssetPath` (never decode again) as a
 * second line of defence. Rejections are `invalid_path` client errors (400) naming the problem.
 */
import { clientError, type CdnError } from './errors.js';

/** Longest path segment in UTF-8 bytes: NAME_MAX on common file systems. */
export const MAX_SEGMENT_BYTES = 255;
/** Longest whole path in UTF-8 bytes: keeps keys, file names and log lines bounded. */
export const MAX_PATH_BYTES = 1024;
/** First segment reserved for the servers' own endpoints (DESIGN.md "Reserved URL prefix"). */
export const RESERVED_PREFIX = '_cdn';

/** C0 controls (including NUL) and DEL; they have no business in a file name or a log line. */
const CONTROL = /[\u0000-\u001f\u007f]/;
/** With the `u` flag a well-formed surrogate pair is one code point, so this finds lone halves. */
const LONE_SURROGATE = /\p{Cs}/u;

function invalidPath(message: string): CdnError {
  return clientError('invalid_path', `invalid asset path: ${message}`, { field: 'path' });
}

const ENCODED_SLASH = /%2f/i;

/**
 * Turn a URL path as received (still percent-encoded, with or without one leading `/`) into the
 * normalised relative asset path. Throws `invalid_path` (400) naming the problem.
 */
export function normalizeAssetPath(raw: string): string {
  const encoded = raw.startsWith('/') ? raw.slice(1) : raw;
  if (encoded === '') throw invalidPath('empty path');
  // A fragment is never part of a request; a name with '#' in it is reached as %23.
  if (encoded.includes('#')) throw invalidPath("a '#' must be written %23");
  // `a%2Fb` would otherwise name the same asset as `a/b`: two URLs for one file, cached and purged
  // apart at the edge. One spelling only (Apache refuses encoded slashes by default too).
  if (ENCODED_SLASH.test(encoded)) throw invalidPath("an encoded '/' (%2F) is not allowed: write the slash itself");
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    throw invalidPath('malformed percent-encoding or UTF-8');
  }
  return validateAssetPath(decoded);
}

/**
 * Check an already-decoded asset path and return it unchanged. Never decodes: calling this on
 * the output of `normalizeAssetPath` accepts it as is (`%2e%2e` stays a literal name).
 */
export function validateAssetPath(path: string): string {
  if (path === '') throw invalidPath('empty path');
  if (CONTROL.test(path)) throw invalidPath('control characters are not allowed');
  if (LONE_SURROGATE.test(path)) throw invalidPath('malformed UTF-8');
  if (path.includes('\\')) throw invalidPath('backslashes are not allowed');
  if (path.startsWith('/')) throw invalidPath('absolute paths are not allowed');
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) {
    throw invalidPath(`longer than ${MAX_PATH_BYTES} bytes`);
  }
  const segments = path.split('/');
  for (const segment of segments) {
    if (segment === '') throw invalidPath('empty segments are not allowed');
    if (segment === '.' || segment === '..') throw invalidPath(`'${segment}' segments are not allowed`);
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) {
      throw invalidPath(`a segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
  }
  if (segments[0] === RESERVED_PREFIX) throw invalidPath(`'${RESERVED_PREFIX}/' is reserved`);
  return path;
}

/**
 * The URL form of an asset path: each segment percent-encoded, joined by `/`, with no leading
 * slash (callers prefix `/` or `/_cdn/assets/`), so `normalizeAssetPath(assetPathToUrl(p)) === p`
 * for every valid `p`.
 */
export function assetPathToUrl(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}
