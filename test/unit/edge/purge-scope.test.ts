import { describe, expect, it } from 'vitest';
import { CODING_SEPARATOR, VARY_SEPARATOR } from '../../../edge/cache-keys.js';
import { flightMatcher, keyMatcher, withFolderUrls } from '../../../edge/purge/purge-scope.js';
import type { Purge } from '../../../src/purge/purge-request.js';

const purge = (p: Partial<Purge>): Purge => ({ urls: [], prefixes: [], tags: [], all: false, soft: false, ...p });

describe('folder URLs of an index.html purge', () => {
  it.each([
    [[{ path: '/docs/index.html' }], [{ path: '/docs/index.html' }, { path: '/docs/' }, { path: '/docs' }]],
    [[{ path: '/index.html' }], [{ path: '/index.html' }, { path: '/' }]],
    [[{ host: 'cdn.example', path: '/a/b/index.html' }], [{ host: 'cdn.example', path: '/a/b/index.html' }, { host: 'cdn.example', path: '/a/b/' }, { host: 'cdn.example', path: '/a/b' }]],
    [[{ path: '/docs/index.html' }, { path: '/docs/' }], [{ path: '/docs/index.html' }, { path: '/docs/' }, { path: '/docs' }]],
    [[{ path: '/docs/myindex.html' }], [{ path: '/docs/myindex.html' }]],
    [[{ path: '/index.htm' }], [{ path: '/index.htm' }]],
  ])('%j → %j', (urls, expected) => {
    expect(withFolderUrls(purge({ urls })).urls).toEqual(expected);
  });

  it('leaves prefixes and tags as they are', () => {
    const p = purge({ urls: [{ path: '/x/index.html' }], prefixes: [{ path: '/y' }], tags: ['t'], soft: true });
    expect(withFolderUrls(p)).toEqual({ ...p, urls: [{ path: '/x/index.html' }, { path: '/x/' }, { path: '/x' }] });
  });
});

describe('what a purge takes, read from stored keys', () => {
  it.each([
    ['every query of the URL', { urls: [{ path: '/a.jpg' }] }, 'cdn.example/a.jpg?fmt=auto&w=400', true],
    ['its Vary variants', { urls: [{ path: '/a.jpg' }] }, `cdn.example/a.jpg?w=400${VARY_SEPARATOR}accept=avif`, true],
    ['its compressed copies', { urls: [{ path: '/s.css' }] }, `h/s.css${CODING_SEPARATOR}br`, true],
    ['not a longer path', { urls: [{ path: '/a.jpg' }] }, 'h/a.jpg.bak', false],
    ['another spelling of the path', { urls: [{ path: '/a@b.jpg' }] }, 'h/a%40b.jpg', true],
    ['a host URL on its host', { urls: [{ host: 'cdn.example', path: '/a.jpg' }] }, 'cdn.example/a.jpg', true],
    ['a host URL not on another', { urls: [{ host: 'cdn.example', path: '/a.jpg' }] }, 'img.example/a.jpg', false],
    ['a prefix by segments', { prefixes: [{ path: '/photos' }] }, 'h/photos/x.jpg', true],
    ['a prefix not past a segment', { prefixes: [{ path: '/photos' }] }, 'h/photoshop.png', false],
    ['tags are not read from keys', { tags: ['t'] }, 'h/a.jpg', false],
  ])('%s', (_name, p, key, expected) => {
    expect(keyMatcher(purge(p as Partial<Purge>))(key)).toBe(expected);
  });
});

describe('what a purge takes of the fetches under way', () => {
  it.each([
    ['all takes every fetch', { all: true }, 'h/x', undefined, true],
    ['a URL takes its fetch', { urls: [{ path: '/x' }] }, 'h/x?v=1', undefined, true],
    ['a URL leaves other fetches', { urls: [{ path: '/x' }] }, 'h/y', undefined, false],
    ['a tag takes a fetch whose fields are not in yet', { tags: ['t'] }, 'h/y', undefined, true],
    ['a tag takes a fetch whose response carries it', { tags: ['t'] }, 'h/y', [['surrogate-key', 'a t']], true],
    ['a tag takes a fetch whose Cache-Groups carries it', { tags: ['g 1'] }, 'h/y', [['cache-groups', '"g 1"']], true],
    ['a tag leaves a fetch whose response does not carry it', { tags: ['t'] }, 'h/y', [['surrogate-key', 'a b']], false],
  ])('%s', (_name, p, key, fields, expected) => {
    expect(flightMatcher(purge(p as Partial<Purge>))(key, fields as [string, string][] | undefined)).toBe(expected);
  });
});
