import { describe, expect, it } from 'vitest';
import { isCdnError } from '../../../src/errors.js';
import { contentCandidates, imageSourcePath, siteTarget, type Candidate } from '../../../origin/site-paths.js';

/** The candidates of a raw path and query, as the origin would try them. */
function candidates(rawPath: string, rawQuery = ''): Candidate[] {
  return contentCandidates(siteTarget(rawPath), rawQuery);
}

function errorOf(fn: () => unknown): { code: string; status: number; field: string | undefined; message: string } {
  try {
    fn();
  } catch (err) {
    if (isCdnError(err)) return { code: err.code, status: err.status, field: err.field, message: err.message };
    throw err;
  }
  throw new Error('expected a CdnError');
}

describe('siteTarget', () => {
  it.each([
    ['/', { kind: 'folder', folder: '', rawPath: '/' }],
    ['/docs/', { kind: 'folder', folder: 'docs', rawPath: '/docs/' }],
    ['/a/b/', { kind: 'folder', folder: 'a/b', rawPath: '/a/b/' }],
    ['/d%C3%A9j%C3%A0/', { kind: 'folder', folder: 'déjà', rawPath: '/d%C3%A9j%C3%A0/' }],
    ['/docs', { kind: 'file', path: 'docs', rawPath: '/docs' }],
    ['/docs/index.html', { kind: 'file', path: 'docs/index.html', rawPath: '/docs/index.html' }],
    ['/a%20b', { kind: 'file', path: 'a b', rawPath: '/a%20b' }],
  ])('%s names %j', (raw, want) => {
    expect(siteTarget(raw)).toEqual(want);
  });

  // One trailing slash marks a folder; anything else that is not an asset path stays a 400.
  it.each([
    ['//', 'invalid asset path: empty segments are not allowed'],
    ['/docs//', 'invalid asset path: empty segments are not allowed'],
    ['//docs/', 'invalid asset path: empty segments are not allowed'],
    ['/docs%2F', "invalid asset path: an encoded '/' (%2F) is not allowed: write the slash itself"],
    ['/docs%2F/', "invalid asset path: an encoded '/' (%2F) is not allowed: write the slash itself"],
    ['/%5Cevil.example/', 'invalid asset path: backslashes are not allowed'],
    ['/_cdn/x/', "invalid asset path: '_cdn/' is reserved"],
    ['/a%ZZ/', 'invalid asset path: malformed percent-encoding or UTF-8'],
  ])('%s is refused: %s', (raw, message) => {
    expect(errorOf(() => siteTarget(raw))).toEqual({ code: 'invalid_path', status: 400, field: 'path', message });
  });
});

describe('contentCandidates', () => {
  it('answers the root and a folder with their index.html, and nothing else', () => {
    expect(candidates('/')).toEqual([{ action: 'serve', path: 'index.html' }]);
    expect(candidates('/', 'x=1')).toEqual([{ action: 'serve', path: 'index.html' }]);
    expect(candidates('/docs/')).toEqual([{ action: 'serve', path: 'docs/index.html' }]);
    expect(candidates('/a/b/')).toEqual([{ action: 'serve', path: 'a/b/index.html' }]);
  });

  it('tries the exact file first, then the redirect to its folder URL with the query as sent', () => {
    expect(candidates('/docs')).toEqual([
      { action: 'serve', path: 'docs' },
      { action: 'redirect', path: 'docs/index.html', location: '/docs/' },
    ]);
    expect(candidates('/docs', 'x=1')).toEqual([
      { action: 'serve', path: 'docs' },
      { action: 'redirect', path: 'docs/index.html', location: '/docs/?x=1' },
    ]);
    expect(candidates('/a/b', 'v=3&b=%20&a=1')).toEqual([
      { action: 'serve', path: 'a/b' },
      { action: 'redirect', path: 'a/b/index.html', location: '/a/b/?v=3&b=%20&a=1' },
    ]);
    // The file at an index's own URL is that file; the index of a folder named like it comes second.
    expect(candidates('/docs/index.html')).toEqual([
      { action: 'serve', path: 'docs/index.html' },
      { action: 'redirect', path: 'docs/index.html/index.html', location: '/docs/index.html/' },
    ]);
  });

  it('keeps the path as the client spelt it in the Location: the site links and the edge keys by that spelling', () => {
    expect(candidates('/d%C3%A9j%C3%A0', 'q=%C3%A9')).toEqual([
      { action: 'serve', path: 'déjà' },
      { action: 'redirect', path: 'déjà/index.html', location: '/d%C3%A9j%C3%A0/?q=%C3%A9' },
    ]);
  });

  it('never makes a Location that leaves the host', () => {
    for (const raw of ['/evil.example', '/%2Fevil.example', '/\\evil.example', '/%5Cevil.example', '//evil.example', '/.%2e/evil']) {
      let found: Candidate[];
      try {
        found = candidates(raw);
      } catch {
        continue; // refused as a path: no Location at all
      }
      for (const c of found) if (c.action === 'redirect') expect(c.location, raw).toMatch(/^\/[^/\\]/);
    }
  });

  it('has no index where the index path would be over the length limit: a 404, not a 400', () => {
    const folder = ['x', 'y', 'z', 'w'].map((c) => c.repeat(250)).join('/') + '/' + 'v'.repeat(14);
    expect(Buffer.byteLength(folder)).toBe(1018); // a valid path; with `/index.html`, 1029 bytes: over 1024
    expect(candidates(`/${folder}/`)).toEqual([]);
    expect(candidates(`/${folder}`)).toEqual([{ action: 'serve', path: folder }]);
  });
});

describe('imageSourcePath', () => {
  it('is the file of an image URL', () => {
    expect(imageSourcePath(siteTarget('/photos/cat.jpg'))).toBe('photos/cat.jpg');
    expect(imageSourcePath(siteTarget('/docs'))).toBe('docs');
  });

  it('refuses a folder URL with a 400 naming the path, rather than ignoring the parameters', () => {
    expect(errorOf(() => imageSourcePath(siteTarget('/docs/')))).toEqual({
      code: 'not_an_image',
      status: 400,
      field: 'path',
      message: "/docs/ is a folder, not an image: image parameters apply to an image file's URL",
    });
    expect(errorOf(() => imageSourcePath(siteTarget('/'))).message).toBe("/ is a folder, not an image: image parameters apply to an image file's URL");
  });
});
