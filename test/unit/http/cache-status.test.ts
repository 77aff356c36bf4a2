import { describe, expect, it } from 'vitest';
import { type CacheStatusEntry, appendCacheStatus, formatCacheStatus } from '../../../src/http/cache-status.js';

describe('formatCacheStatus (RFC 9211 §2)', () => {
  const rows: [string, CacheStatusEntry, string][] = [
    ['§2.1 hit with ttl', { cache: 'anycdn', hit: true, ttlSec: 30 }, 'anycdn; hit; ttl=30'],
    ['§2.2 miss stored', { cache: 'anycdn', fwd: 'miss', stored: true }, 'anycdn; fwd=miss; stored'],
    ['§2.3 stale revalidated with 304', { cache: 'anycdn', fwd: 'stale', fwdStatus: 304 }, 'anycdn; fwd=stale; fwd-status=304'],
    ['§2.8 detail as token', { cache: 'anycdn', fwd: 'miss', detail: 'private' }, 'anycdn; fwd=miss; detail=private'],
    ['§2.8 detail as string when not a token', { cache: 'anycdn', fwd: 'bypass', detail: 'upstream "timeout"' }, 'anycdn; fwd=bypass; detail="upstream \\"timeout\\""'],
    ['§2.4 negative ttl when stale', { cache: 'anycdn', hit: true, ttlSec: -5 }, 'anycdn; hit; ttl=-5'],
    ['§2.4 ttl truncated to an integer', { cache: 'anycdn', hit: true, ttlSec: 29.9 }, 'anycdn; hit; ttl=29'],
    ['§2.4 non-finite ttl omitted', { cache: 'anycdn', hit: true, ttlSec: Infinity }, 'anycdn; hit'],
    ['§2.1 hit=false omitted (absent Boolean is false)', { cache: 'anycdn', hit: false, fwd: 'uri-miss' }, 'anycdn; fwd=uri-miss'],
    ['§2.6 collapsed', { cache: 'anycdn', fwd: 'miss', collapsed: true }, 'anycdn; fwd=miss; collapsed'],
    ['§2.7 key always a string', { cache: 'anycdn', hit: true, key: 'cdn.example/a.jpg?w=1' }, 'anycdn; hit; key="cdn.example/a.jpg?w=1"'],
    ['§2 cache name not a token becomes a string', { cache: 'edge 1', hit: true }, '"edge 1"; hit'],
    ['§2 parameter order', { cache: 'anycdn', detail: 'd', key: 'k', collapsed: true, stored: true, ttlSec: 1, fwdStatus: 200, fwd: 'vary-miss', hit: true }, 'anycdn; hit; fwd=vary-miss; fwd-status=200; ttl=1; stored; collapsed; key="k"; detail=d'],
    ['§2 bare cache name', { cache: 'anycdn' }, 'anycdn'],
  ];
  it.each(rows)('%s', (_name, entry, expected) => {
    expect(formatCacheStatus(entry)).toBe(expected);
  });
});

describe('appendCacheStatus (RFC 9211 §2)', () => {
  const rows: [string, string | null | undefined, string][] = [
    ['§2 no upstream members', undefined, 'anycdn; hit'],
    ['§2 empty upstream value', '  ', 'anycdn; hit'],
    ['§2 appended after the upstream cache', 'shield; fwd=miss; stored', 'shield; fwd=miss; stored, anycdn; hit'],
  ];
  it.each(rows)('%s', (_name, existing, expected) => {
    expect(appendCacheStatus(existing, 'anycdn; hit')).toBe(expected);
  });
});
