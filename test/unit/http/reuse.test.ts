import { describe, expect, it } from 'vitest';
import type { StoredResponseInfo } from '../../../src/http/freshness.js';
import { headerGetter, httpDate } from '../../../src/http/headers.js';
import {
  DEFAULT_REUSE_OPTIONS,
  type ReuseDecision,
  type ReuseOptions,
  reuseDecision,
  staleIfErrorAllowed,
} from '../../../src/http/reuse.js';

const T0 = Date.UTC(2026, 0, 1); // when the response was stored
const S = 1000;
const GRACE = 24 * 3600 * S;
const OPTIONS: ReuseOptions = { ...DEFAULT_REUSE_OPTIONS };

function stored(headers: Record<string, string>, status = 200): StoredResponseInfo {
  return { status, headers: headerGetter({ date: httpDate(T0), ...headers }), requestTime: T0, responseTime: T0 };
}

type Expect = { kind: ReuseDecision['kind']; reason?: string; ttlMs?: number; staleIfErrorUntil?: number | undefined };
type Row = [name: string, reqHeaders: Record<string, string>, resHeaders: Record<string, string>, nowOffsetMs: number, expected: Expect];

describe('reuseDecision (RFC 9111 §4)', () => {
  const rows: Row[] = [
    // Freshness
    ['§4.2 fresh within max-age', {}, { 'cache-control': 'max-age=60' }, 30 * S, { kind: 'fresh', ttlMs: 30 * S, staleIfErrorUntil: T0 + 60 * S + GRACE }],
    ['§4.2 stale at exactly max-age', {}, { 'cache-control': 'max-age=60' }, 60 * S, { kind: 'revalidate', reason: 'stale', ttlMs: 0 }],
    ['§4.2 stale after max-age', {}, { 'cache-control': 'max-age=60' }, 61 * S, { kind: 'revalidate', reason: 'stale', ttlMs: -1 * S }],
    ['§4.2.3 Age header counts', {}, { 'cache-control': 'max-age=60', age: '50' }, 11 * S, { kind: 'revalidate', reason: 'stale', ttlMs: -1 * S }],
    ['§5.1 Age with several values: the first counts', {}, { 'cache-control': 'max-age=3600', age: '7200, 0' }, 0, { kind: 'revalidate', reason: 'stale', ttlMs: -3600 * S }],
    ['§5.1 Age with several values: a first 0 is fresh', {}, { 'cache-control': 'max-age=3600', age: '0, 7200' }, 0, { kind: 'fresh', ttlMs: 3600 * S }],
    ['§5.1 Age with parameters counts as its number', {}, { 'cache-control': 'max-age=3600', age: '7200;foo=bar' }, 0, { kind: 'revalidate', reason: 'stale', ttlMs: -3600 * S }],
    ['§5.1 an invalid Age is ignored', {}, { 'cache-control': 'max-age=3600', age: '7200.0' }, 0, { kind: 'fresh', ttlMs: 3600 * S }],
    ['§4.2.2 no freshness information → revalidate', {}, { etag: '"a"' }, 0, { kind: 'revalidate', reason: 'stale', ttlMs: 0 }],

    // Response directives
    ['§5.2.2.4 response no-cache: revalidate even when fresh', {}, { 'cache-control': 'no-cache, max-age=60' }, 1 * S, { kind: 'revalidate', reason: 'no-cache', staleIfErrorUntil: undefined }],
    ['§5.2.2.4 qualified no-cache treated as unqualified', {}, { 'cache-control': 'no-cache="x-a", max-age=60' }, 1 * S, { kind: 'revalidate', reason: 'no-cache' }],
    ['§5.2.2.2 must-revalidate: no stale-while-revalidate', {}, { 'cache-control': 'max-age=1, must-revalidate, stale-while-revalidate=60' }, 2 * S, { kind: 'revalidate', reason: 'stale', staleIfErrorUntil: undefined }],
    ['§5.2.2.8 proxy-revalidate: no stale at all', {}, { 'cache-control': 'max-age=1, proxy-revalidate, stale-if-error=60' }, 2 * S, { kind: 'revalidate', reason: 'stale', staleIfErrorUntil: undefined }],
    ['RFC 5861 §3 within stale-while-revalidate', {}, { 'cache-control': 'max-age=1, stale-while-revalidate=59' }, 60 * S, { kind: 'stale-while-revalidate', ttlMs: -59 * S }],
    ['RFC 5861 §3 beyond stale-while-revalidate', {}, { 'cache-control': 'max-age=1, stale-while-revalidate=59' }, 61 * S, { kind: 'revalidate', reason: 'stale' }],
    ['RFC 5861 §4 stale-if-error window from the directive', {}, { 'cache-control': 'max-age=10, stale-if-error=300' }, 20 * S, { kind: 'revalidate', reason: 'stale', staleIfErrorUntil: T0 + 310 * S }],
    ['§5.2.2.10 s-maxage implies proxy-revalidate: no grace', {}, { 'cache-control': 's-maxage=10' }, 20 * S, { kind: 'revalidate', reason: 'stale', staleIfErrorUntil: undefined }],
    ['§5.2.2.10 s-maxage with explicit stale-while-revalidate', {}, { 'cache-control': 's-maxage=10, stale-while-revalidate=30' }, 20 * S, { kind: 'stale-while-revalidate', staleIfErrorUntil: undefined }],
    ['§5.2.2.10 s-maxage with explicit stale-if-error', {}, { 'cache-control': 's-maxage=10, stale-if-error=30' }, 20 * S, { kind: 'revalidate', reason: 'stale', staleIfErrorUntil: T0 + 40 * S }],
    ['RFC 9213 CDN-Cache-Control directives govern reuse', {}, { 'cache-control': 'no-cache', 'cdn-cache-control': 'max-age=60' }, 1 * S, { kind: 'fresh', ttlMs: 59 * S }],
    ['RFC 9213 CDN-Cache-Control no-cache over max-age and Expires', {}, { 'cache-control': 'max-age=600', expires: httpDate(T0 + 600 * S), 'cdn-cache-control': 'no-cache' }, 1 * S, { kind: 'revalidate', reason: 'no-cache', staleIfErrorUntil: undefined }],
    ['RFC 9213 CDN-Cache-Control no-cache beside its own max-age', {}, { 'cache-control': 'max-age=600', 'cdn-cache-control': 'max-age=600, no-cache' }, 1 * S, { kind: 'revalidate', reason: 'no-cache' }],
    ['RFC 9213 CDN-Cache-Control qualified no-cache', {}, { 'cache-control': 'max-age=600', 'cdn-cache-control': 'max-age=600, no-cache="x-a"' }, 1 * S, { kind: 'revalidate', reason: 'no-cache' }],
    ['RFC 9213 CDN-Cache-Control longer than Cache-Control', {}, { 'cache-control': 'max-age=60', 'cdn-cache-control': 'max-age=600' }, 61 * S, { kind: 'fresh', ttlMs: 539 * S }],
    ['RFC 9213 CDN-Cache-Control shorter than Cache-Control', {}, { 'cache-control': 'max-age=600', 'cdn-cache-control': 'max-age=60' }, 61 * S, { kind: 'revalidate', reason: 'stale' }],
    ['RFC 9213 §2.1 a String lifetime is ignored: Cache-Control governs', {}, { 'cache-control': 'max-age=60', 'cdn-cache-control': 'max-age="600"' }, 61 * S, { kind: 'revalidate', reason: 'stale', ttlMs: -1 * S }],
    ['RFC 9213 §2.1 an integral Decimal lifetime is ignored', {}, { 'cache-control': 'max-age=60', 'cdn-cache-control': 'max-age=600.0' }, 30 * S, { kind: 'fresh', ttlMs: 30 * S }],
    ['RFC 9213 §2.1 an invalid no-cache is ignored with its field', {}, { 'cache-control': 'max-age=60', 'cdn-cache-control': 'no-cache=1' }, 30 * S, { kind: 'fresh', ttlMs: 30 * S }],

    // Request directives (§5.2.1)
    ['§5.2.1.4 request no-cache', { 'cache-control': 'no-cache' }, { 'cache-control': 'max-age=60' }, 1 * S, { kind: 'revalidate', reason: 'request', staleIfErrorUntil: T0 + 60 * S + GRACE }],
    ['§5.4 request Pragma: no-cache', { pragma: 'no-cache' }, { 'cache-control': 'max-age=60' }, 1 * S, { kind: 'revalidate', reason: 'request' }],
    ['§5.2.1.1 request max-age=0', { 'cache-control': 'max-age=0' }, { 'cache-control': 'max-age=60' }, 1 * S, { kind: 'revalidate', reason: 'request' }],
    ['§5.2.1.1 request max-age satisfied', { 'cache-control': 'max-age=10' }, { 'cache-control': 'max-age=60' }, 10 * S, { kind: 'fresh' }],
    ['§5.2.1.1 request max-age exceeded', { 'cache-control': 'max-age=10' }, { 'cache-control': 'max-age=60' }, 11 * S, { kind: 'revalidate', reason: 'request' }],
    ['§5.2.1.1 request max-age exceeded on a stale response', { 'cache-control': 'max-age=10' }, { 'cache-control': 'max-age=5, stale-while-revalidate=60' }, 11 * S, { kind: 'revalidate', reason: 'stale' }],
    ['§5.2.1.3 min-fresh satisfied', { 'cache-control': 'min-fresh=30' }, { 'cache-control': 'max-age=60' }, 30 * S, { kind: 'fresh' }],
    ['§5.2.1.3 min-fresh not satisfied', { 'cache-control': 'min-fresh=30' }, { 'cache-control': 'max-age=60' }, 31 * S, { kind: 'revalidate', reason: 'request' }],
    ['§5.2.1.2 max-stale allows stale', { 'cache-control': 'max-stale=30' }, { 'cache-control': 'max-age=60' }, 90 * S, { kind: 'stale-while-revalidate' }],
    ['§5.2.1.2 max-stale exceeded', { 'cache-control': 'max-stale=30' }, { 'cache-control': 'max-age=60' }, 91 * S, { kind: 'revalidate', reason: 'stale' }],
    ['§5.2.1.2 bare max-stale allows any staleness', { 'cache-control': 'max-stale' }, { 'cache-control': 'max-age=60' }, 1e9, { kind: 'stale-while-revalidate' }],
    ['§5.2.2.2 must-revalidate overrides max-stale', { 'cache-control': 'max-stale' }, { 'cache-control': 'max-age=60, must-revalidate' }, 90 * S, { kind: 'revalidate', reason: 'stale' }],
    ['§5.2.2.10 s-maxage overrides max-stale', { 'cache-control': 'max-stale' }, { 'cache-control': 's-maxage=60' }, 90 * S, { kind: 'revalidate', reason: 'stale' }],
    ['§5.2.1.7 only-if-cached with a fresh copy', { 'cache-control': 'only-if-cached' }, { 'cache-control': 'max-age=60' }, 1 * S, { kind: 'fresh' }],
    ['§5.2.1.7 only-if-cached with a stale copy → 504', { 'cache-control': 'only-if-cached' }, { 'cache-control': 'max-age=60' }, 61 * S, { kind: 'only-if-cached-miss' }],
    ['§5.2.1.7 only-if-cached within stale-while-revalidate', { 'cache-control': 'only-if-cached' }, { 'cache-control': 'max-age=1, stale-while-revalidate=60' }, 30 * S, { kind: 'stale-while-revalidate' }],

    // §3.5 Authorization and methods
    ['§3.5 Authorization without permission → bypass', { authorization: 'Basic eA==' }, { 'cache-control': 'max-age=60' }, 1 * S, { kind: 'bypass', reason: 'authorization' }],
    ['§3.5 Authorization with public', { authorization: 'Basic eA==' }, { 'cache-control': 'public, max-age=60' }, 1 * S, { kind: 'fresh' }],
    ['§3.5 Authorization with s-maxage', { authorization: 'Basic eA==' }, { 'cache-control': 's-maxage=60' }, 1 * S, { kind: 'fresh' }],
    ['§3.5 Authorization with must-revalidate', { authorization: 'Basic eA==' }, { 'cache-control': 'max-age=60, must-revalidate' }, 1 * S, { kind: 'fresh' }],
  ];
  it.each(rows)('%s', (_name, reqHeaders, resHeaders, offset, expected) => {
    const decision = reuseDecision({ method: 'GET', headers: headerGetter(reqHeaders) }, stored(resHeaders), T0 + offset, OPTIONS);
    expect(decision).toMatchObject(expected);
    if ('staleIfErrorUntil' in expected) {
      expect(decision).toHaveProperty('staleIfErrorUntil', expected.staleIfErrorUntil);
    }
  });

  it('§4 HEAD reuses a stored GET', () => {
    const d = reuseDecision({ method: 'HEAD', headers: headerGetter({}) }, stored({ 'cache-control': 'max-age=60' }), T0, OPTIONS);
    expect(d.kind).toBe('fresh');
  });

  it('§4 POST bypasses', () => {
    const d = reuseDecision({ method: 'POST', headers: headerGetter({}) }, stored({ 'cache-control': 'max-age=60' }), T0, OPTIONS);
    expect(d).toEqual({ kind: 'bypass', reason: 'method' });
  });

  it('reports age, ttl and source exactly', () => {
    const d = reuseDecision({ method: 'GET', headers: headerGetter({}) }, stored({ 'cache-control': 's-maxage=100' }), T0 + 40 * S, OPTIONS);
    expect(d).toEqual({ kind: 'fresh', ageMs: 40 * S, ttlMs: 60 * S, source: 's-maxage', staleIfErrorUntil: undefined });
  });
});

describe('reuseDecision options', () => {
  it('honorRequestCacheControl: false ignores request no-cache (shield protection)', () => {
    const d = reuseDecision(
      { method: 'GET', headers: headerGetter({ 'cache-control': 'no-cache' }) },
      stored({ 'cache-control': 'max-age=60' }),
      T0 + S,
      { ...OPTIONS, honorRequestCacheControl: false },
    );
    expect(d.kind).toBe('fresh');
  });

  it('honorRequestCacheControl: false ignores only-if-cached', () => {
    const d = reuseDecision(
      { method: 'GET', headers: headerGetter({ 'cache-control': 'only-if-cached' }) },
      stored({ 'cache-control': 'max-age=60' }),
      T0 + 61 * S,
      { ...OPTIONS, honorRequestCacheControl: false },
    );
    expect(d).toMatchObject({ kind: 'revalidate', reason: 'stale' });
  });

  it('staleWhileRevalidateMs applies when the response has no directive', () => {
    const opts = { ...OPTIONS, staleWhileRevalidateMs: 30 * S };
    const req = { method: 'GET', headers: headerGetter({}) };
    expect(reuseDecision(req, stored({ 'cache-control': 'max-age=60' }), T0 + 90 * S, opts).kind).toBe('stale-while-revalidate');
    expect(reuseDecision(req, stored({ 'cache-control': 'max-age=60' }), T0 + 91 * S, opts).kind).toBe('revalidate');
  });

  it('a stale-while-revalidate directive wins over the configured window', () => {
    const opts = { ...OPTIONS, staleWhileRevalidateMs: 3600 * S };
    const req = { method: 'GET', headers: headerGetter({}) };
    const res = stored({ 'cache-control': 'max-age=60, stale-while-revalidate=10' });
    expect(reuseDecision(req, res, T0 + 71 * S, opts).kind).toBe('revalidate');
  });

  it('graceMs sets the stale-if-error window', () => {
    const d = reuseDecision(
      { method: 'GET', headers: headerGetter({}) },
      stored({ 'cache-control': 'max-age=60' }),
      T0 + 100 * S,
      { ...OPTIONS, graceMs: 50 * S },
    );
    expect(d).toMatchObject({ kind: 'revalidate', staleIfErrorUntil: T0 + 110 * S });
    expect(staleIfErrorAllowed(d, T0 + 110 * S)).toBe(true);
    expect(staleIfErrorAllowed(d, T0 + 110 * S + 1)).toBe(false);
  });

  it('staleIfErrorAllowed is false for bypass and forbidden stale', () => {
    expect(staleIfErrorAllowed({ kind: 'bypass', reason: 'method' }, T0)).toBe(false);
    const d = reuseDecision({ method: 'GET', headers: headerGetter({}) }, stored({ 'cache-control': 'max-age=1, must-revalidate' }), T0 + 2 * S, OPTIONS);
    expect(staleIfErrorAllowed(d, T0 + 2 * S)).toBe(false);
  });

  it('heuristic options flow into freshness', () => {
    const res = stored({ 'last-modified': httpDate(T0 - 1000 * S) });
    const d = reuseDecision({ method: 'GET', headers: headerGetter({}) }, res, T0 + 50 * S, { ...OPTIONS, heuristicFraction: 0.1 });
    expect(d).toMatchObject({ kind: 'fresh', ttlMs: 50 * S, source: 'heuristic' });
  });
});
