import { describe, expect, it } from 'vitest';
import { assetChangePurge } from '../../../origin/purge/asset-purge.js';

describe('assetChangePurge', () => {
  it.each<[string, string[], string[]]>([
    ['photos/cat.jpg', ['/photos/cat.jpg'], []],
    ['docs/index.html', ['/docs/index.html', '/docs/', '/docs'], []],
    ['a/b/index.html', ['/a/b/index.html', '/a/b/', '/a/b'], []],
    ['index.html', ['/index.html', '/'], []],
    ['404.html', ['/404.html'], ['anycdn:404']],
    ['docs/404.html', ['/docs/404.html'], []],
    ['docs/index.htm', ['/docs/index.htm'], []],
    ['notindex.html', ['/notindex.html'], []],
    ['caf\u00e9 menu/a@b.jpg', ['/caf%C3%A9%20menu/a@b.jpg'], []],
    ['d\u00e9j\u00e0/index.html', ['/d%C3%A9j%C3%A0/index.html', '/d%C3%A9j%C3%A0/', '/d%C3%A9j%C3%A0'], []],
  ])('%s', (path, urls, tags) => {
    expect(assetChangePurge(path)).toEqual({ urls: urls.map((u) => ({ path: u })), prefixes: [], tags, all: false, soft: false });
  });
});
