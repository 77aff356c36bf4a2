/** Asset path normalisation: exact outputs for accepted paths, exact errors for rejected ones. */
import { describe, expect, it } from 'vitest';
import { assetPathToUrl, normalizeAssetPath, validateAssetPath } from '../../../src/asset-path.js';
import { CdnError } from '../../../src/errors.js';

function errorOf(fn: () => unknown): CdnError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CdnError);
    return err as CdnError;
  }
  throw new Error('expected a CdnError');
}

const DOTS = "invalid asset path: '..' segments are not allowed";
const DOT = "invalid asset path: '.' segments are not allowed";
const EMPTY_SEGMENT = 'invalid asset path: empty segments are not allowed';
const EMPTY = 'invalid asset path: empty path';
const CONTROL = 'invalid asset path: control characters are not allowed';
const BACKSLASH = 'invalid asset path: backslashes are not allowed';
const ABSOLUTE = 'invalid asset path: absolute paths are not allowed';
const MALFORMED = 'invalid asset path: malformed percent-encoding or UTF-8';
const RESERVED = "invalid asset path: '_cdn/' is reserved";
const ENCODED_SLASH = "invalid asset path: an encoded '/' (%2F) is not allowed: write the slash itself";
const HASH = "invalid asset path: a '#' must be written %23";
const LONG_SEGMENT = 'invalid asset path: a segment is longer than 255 bytes';
const LONG_PATH = 'invalid asset path: longer than 1024 bytes';
/** Exactly 1024 bytes: four 200-byte segments, four slashes, one 220-byte segment. */
const PATH_1024 = `${'x'.repeat(200)}/`.repeat(4) + 'y'.repeat(220);

describe('normalizeAssetPath', () => {
  it.each([
    ['photos/cat.jpg', 'photos/cat.jpg'],
    ['/photos/cat.jpg', 'photos/cat.jpg'],
    ['a%20b.jpg', 'a b.jpg'],
    ['a+b.jpg', 'a+b.jpg'],
    ['caf%C3%A9.png', 'café.png'],
    ['café.png', 'café.png'],
    ['a%23b', 'a#b'],
    ['%252e%252e', '%2e%2e'],
    ['%252e%252e/x', '%2e%2e/x'],
    ['...', '...'],
    ['.well-known/x', '.well-known/x'],
    ['a/..b/c..', 'a/..b/c..'],
    ['_cdnx/y', '_cdnx/y'],
    ['x/_cdn/y', 'x/_cdn/y'],
    ['_CDN/y', '_CDN/y'],
    ['%F0%9F%90%88.gif', '\u{1F408}.gif'],
    ['a'.repeat(255), 'a'.repeat(255)],
    [PATH_1024, PATH_1024],
    // Limits apply to the decoded path: 1,026 encoded bytes, 1,024 decoded.
    ['/' + PATH_1024.replace('x', '%78'), PATH_1024],
  ])('accepts %j as %j', (raw, expected) => {
    expect(normalizeAssetPath(raw)).toBe(expected);
  });

  it.each([
    ['', EMPTY],
    ['/', EMPTY],
    ['..', DOTS],
    ['../public123/x', DOTS],
    ['..%2f', ENCODED_SLASH],
    ['a%2Fb', ENCODED_SLASH],
    ['a#b', HASH],
    ['photos/#', HASH],
    ['..%2fetc/passwd', ENCODED_SLASH],
    ['%2e%2e/', DOTS],
    ['%2E./x', DOTS],
    ['.%2E/x', DOTS],
    ['a/%2E%2E/b', DOTS],
    ['a/..', DOTS],
    ['./a', DOT],
    ['a/%2e/b', DOT],
    ['a//b', EMPTY_SEGMENT],
    ['a/', EMPTY_SEGMENT],
    ['a%2F%2Fb', ENCODED_SLASH],
    ['a\\b', BACKSLASH],
    ['a%5cb', BACKSLASH],
    ['..%5c..%5cwin.ini', BACKSLASH],
    ['a%00b', CONTROL],
    ['a\u0000b', CONTROL],
    ['a%0Ab', CONTROL],
    ['a%0d%0aSet-Cookie:x', CONTROL],
    ['a%1fb', CONTROL],
    ['a%7Fb', CONTROL],
    ['a\tb', CONTROL],
    ['//etc/passwd', ABSOLUTE],
    ['%2fetc', ENCODED_SLASH],
    ['/%2Fetc/passwd', ENCODED_SLASH],
    ['%c0%ae%c0%ae', MALFORMED],
    ['%c0%ae%c0%ae/x', MALFORMED],
    ['%', MALFORMED],
    ['a%zzb', MALFORMED],
    ['%ED%A0%80', MALFORMED],
    ['a\uD800b', 'invalid asset path: malformed UTF-8'],
    ['_cdn/x', RESERVED],
    ['/_cdn/assets/x', RESERVED],
    ['_cdn', RESERVED],
    ['%5fcdn/x', RESERVED],
    ['a'.repeat(256), LONG_SEGMENT],
    ['é'.repeat(128), LONG_SEGMENT],
    ['x/' + 'é'.repeat(128), LONG_SEGMENT],
    [PATH_1024 + 'y', LONG_PATH],
  ])('rejects %j: %s', (raw, message) => {
    const err = errorOf(() => normalizeAssetPath(raw));
    expect({ code: err.code, source: err.source, status: err.status, field: err.field, message: err.message }).toEqual({
      code: 'invalid_path',
      source: 'client',
      status: 400,
      field: 'path',
      message,
    });
  });

  it('decodes exactly once: its output is accepted as is, never decoded again', () => {
    const once = normalizeAssetPath('%252e%252e/%2525');
    expect(once).toBe('%2e%2e/%25');
    expect(validateAssetPath(once)).toBe('%2e%2e/%25');
  });
});

describe('validateAssetPath', () => {
  it.each([
    ['a/../b', DOTS],
    ['/a', ABSOLUTE],
    ['', EMPTY],
    ['_cdn/x', RESERVED],
  ])('rejects the decoded path %j', (path, message) => {
    expect(errorOf(() => validateAssetPath(path)).message).toBe(message);
  });
});

describe('assetPathToUrl', () => {
  it.each([
    ['photos/cat.jpg', 'photos/cat.jpg'],
    ['a b/c#d?.png', 'a%20b/c%23d%3F.png'],
    ['café.png', 'caf%C3%A9.png'],
    ['%2e%2e', '%252e%252e'],
    ['100%/x', '100%25/x'],
  ])('encodes %j as %j and normalises back', (path, url) => {
    expect(assetPathToUrl(path)).toBe(url);
    expect(normalizeAssetPath(assetPathToUrl(path))).toBe(path);
    expect(normalizeAssetPath('/' + assetPathToUrl(path))).toBe(path);
  });
});
