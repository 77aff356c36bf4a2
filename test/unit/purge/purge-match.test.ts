import { describe, expect, it } from 'vitest';
import { purgeMatcher, isUnder } from '../../../src/purge/purge-match.js';
import type { Purge } from '../../../src/purge/purge-request.js';

const none: Purge = { urls: [], prefixes: [], tags: [], all: false, soft: false };

type Row = [name: string, purge: Partial<Purge>, host: string, target: string, tags: string[], expected: boolean];

describe('purgeMatcher', () => {
  const rows: Row[] = [
    ['a URL takes the path', { urls: [{ path: '/a.jpg' }] }, 'cdn.example', '/a.jpg', [], true],
    ['a URL takes every query of the path', { urls: [{ path: '/a.jpg' }] }, 'cdn.example', '/a.jpg?w=400&fmt=webp', [], true],
    ['a URL takes a cache buster', { urls: [{ path: '/a.jpg' }] }, 'cdn.example', '/a.jpg?v=3', [], true],
    ['a URL does not take another path', { urls: [{ path: '/a.jpg' }] }, 'cdn.example', '/a.jpg.bak', [], false],
    ['a URL does not take what is under it', { urls: [{ path: '/docs' }] }, 'cdn.example', '/docs/', [], false],
    ['a path URL takes every host', { urls: [{ path: '/a.jpg' }] }, 'other.example:8443', '/a.jpg', [], true],
    ['a host URL takes its host', { urls: [{ host: 'cdn.example', path: '/a.jpg' }] }, 'cdn.example', '/a.jpg?w=1', [], true],
    ['a host URL leaves other hosts', { urls: [{ host: 'cdn.example', path: '/a.jpg' }] }, 'img.example', '/a.jpg', [], false],
    ['another spelling of the path is taken', { urls: [{ path: '/a@b.jpg' }] }, 'h', '/a%40b.jpg', [], true],
    ['an encoded non-ASCII path is taken', { urls: [{ path: '/caf%C3%A9' }] }, 'h', '/caf%c3%a9?x', [], true],
    ['a prefix takes what is under it', { prefixes: [{ path: '/photos' }] }, 'h', '/photos/2024/cat.jpg?w=9', [], true],
    ['a prefix takes the path itself', { prefixes: [{ path: '/photos' }] }, 'h', '/photos', [], true],
    ['a prefix takes the folder URL', { prefixes: [{ path: '/photos' }] }, 'h', '/photos/', [], true],
    ['a prefix stops at a segment boundary', { prefixes: [{ path: '/photos' }] }, 'h', '/photoshop.png', [], false],
    ['the prefix / takes everything', { prefixes: [{ path: '/' }] }, 'h', '/any/thing?x=1', [], true],
    ['a host prefix leaves other hosts', { prefixes: [{ host: 'a.example', path: '/' }] }, 'b.example', '/x', [], false],
    ['a host prefix takes its host', { prefixes: [{ host: 'a.example', path: '/x' }] }, 'a.example', '/x/y', [], true],
    ['a tag takes objects that carry it', { tags: ['cats'] }, 'h', '/x', ['gallery', 'cats'], true],
    ['tags are case-sensitive', { tags: ['cats'] }, 'h', '/x', ['Cats'], false],
    ['a tag with a space (Cache-Groups) matches exactly', { tags: ['group one'] }, 'h', '/x', ['group one'], true],
    ['no tag in common', { tags: ['cats'] }, 'h', '/x', ['dogs'], false],
    ['all takes everything', { all: true }, 'h', '/x', [], true],
    ['an empty purge takes nothing', {}, 'h', '/x', ['cats'], false],
  ];
  it.each(rows)('%s', (_name, purge, host, target, tags, expected) => {
    expect(purgeMatcher({ ...none, ...purge })({ host, target, tags })).toBe(expected);
  });
});

describe('isUnder', () => {
  it.each([
    ['/a/b', '/a', true],
    ['/a', '/a', true],
    ['/ab', '/a', false],
    ['/', '/', true],
    ['/a', '/', true],
    ['/a', '/a/b', false],
  ])('%s under %s: %s', (path, prefix, expected) => {
    expect(isUnder(path, prefix)).toBe(expected);
  });
});
