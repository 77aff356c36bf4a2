/**
 * The origin's view of a request target: the path exactly as the client sent it (still
 * percent-encoded, dot segments not resolved), so `a/%2e%2e/b` is refused as a traversal attempt
 * instead of being silently resolved to `b` by a URL parser, and the asset path cut from it.
 */
import { RESERVED_PREFIX, normalizeAssetPath } from '../src/asset-path.js';
import { clientError } from '../src/errors.js';

/** Scheme and authority of an absolute-form request target (RFC 9112 §3.2.2): `http://host:port`. */
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;

/**
 * Path and query of a request target as sent: origin-form (`/a/b?x`) or absolute-form
 * (`http://host/a/b?x`, whose path is taken the same way). Undefined for anything else
 * (`*`, authority-form).
 */
export function splitTarget(target: string): { path: string; query: string } | undefined {
  const start = target.startsWith('/') ? 0 : ABSOLUTE_FORM.exec(target)?.[0].length;
  if (start === undefined) return undefined;
  const q = target.indexOf('?', start);
  const path = q < 0 ? target.slice(start) : target.slice(start, q);
  return { path: path.startsWith('/') ? path : `/${path}`, query: q < 0 ? '' : target.slice(q + 1) };
}

/** True for the origin's own endpoints (`/_cdn/…`), which are never asset paths. */
export function isControlPath(path: string): boolean {
  return path === `/${RESERVED_PREFIX}` || path.startsWith(`/${RESERVED_PREFIX}/`);
}

/**
 * Dot segments are refused before anything else: a URL parser would resolve
 * `/_cdn/assets/a/%2e%2e/%2e%2e/b` to `/_cdn/b` and the request would land somewhere else.
 */
export function refuseDotSegments(rawPath: string): void {
  for (const segment of rawPath.split('/')) {
    let decoded = segment;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      // malformed escapes are reported by the path rules later
    }
    if (decoded === '.' || decoded === '..') {
      throw clientError('invalid_path', `invalid asset path: '${decoded}' segments are not allowed`, { field: 'path' });
    }
  }
}

/**
 * The asset path of a content or publisher URL (`prefix` stripped), validated. A router matches
 * the decoded path, but the asset path is cut from the raw one, so the prefix must be there as
 * written: `/_cdn/%61ssets/x` would otherwise lose the wrong characters and name another asset.
 * normalizeAssetPath accepts one leading slash; the prefix already took it, so one more is an
 * empty segment (`//x`), not a second URL for `x`.
 */
export function assetPathOf(rawPath: string, prefix = '/'): string {
  if (!`${rawPath}/`.startsWith(prefix)) {
    throw clientError('invalid_path', `invalid asset path: the URL must start with ${prefix} written without percent-encoding`, { field: 'path' });
  }
  const rest = rawPath.slice(prefix.length);
  if (rest.startsWith('/')) throw clientError('invalid_path', 'invalid asset path: empty segments are not allowed', { field: 'path' });
  return normalizeAssetPath(rest);
}
