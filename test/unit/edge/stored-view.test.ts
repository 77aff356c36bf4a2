import { describe, expect, it } from 'vitest';
import type { StoredMeta } from '../../../src/blob/blob-store.js';
import { effectiveCacheControl } from '../../../src/http/cache-control.js';
import { freshnessLifetime } from '../../../src/http/freshness.js';
import { clientHeaders, FieldList, headersFromPairs, OWN_LIFETIME_FIELD, policyHeaders, viewOf, withoutOwnFields } from '../../../edge/stored-view.js';

const extras = { ageSec: 3, cacheStatus: 'anycdn; hit; ttl=7', servedBy: 'p/n' };

function meta(headers: [string, string][], status = 200): StoredMeta {
  return { version: 1, key: 'k', size: 0, status, headers, requestTime: 0, responseTime: 0, storedAt: 0 };
}

describe('stored fields: what the edge decides on and what it sends on', () => {
  it('CDN-Cache-Control (RFC 9213) reaches clients; the edge-owned fields do not', () => {
    const stored = headersFromPairs([
      ['content-type', 'text/plain'],
      ['cache-control', 'max-age=10'],
      ['cdn-cache-control', 'max-age=600'],
      ['age', '40'],
      [OWN_LIFETIME_FIELD, '10'],
      ['cache-status', 'shield; hit'],
    ]);
    expect(clientHeaders(stored, extras)).toEqual({
      'content-type': 'text/plain',
      'cache-control': 'max-age=10',
      'cdn-cache-control': 'max-age=600',
      'cache-status': 'shield; hit, anycdn; hit; ttl=7',
      age: '3',
      'x-served-by': 'p/n',
    });
  });

  it("the edge's own lifetime reads as this cache's CDN-Cache-Control, replacing upstream's", () => {
    const headers = policyHeaders(headersFromPairs([['cdn-cache-control', 'must-revalidate'], ['cache-control', 'no-cache'], [OWN_LIFETIME_FIELD, '10']]));
    expect(headers.get('cdn-cache-control')).toBe('max-age=10');
    expect(headers.get('CDN-Cache-Control')).toBe('max-age=10');
    expect(headers.get('cache-control')).toBe('no-cache');
    expect(freshnessLifetime({ status: 404, headers, responseTime: 0 })).toEqual({ lifetimeMs: 10_000, source: 'cdn-cache-control' });
    expect(effectiveCacheControl(headers).cc.mustRevalidate).toBe(false);
  });

  it('without it, the stored fields are read as they are', () => {
    const stored = headersFromPairs([['cdn-cache-control', 'max-age=600'], ['cache-control', 'max-age=10']]);
    expect(policyHeaders(stored)).toBe(stored);
    const view = viewOf(meta([['cdn-cache-control', 'no-cache'], ['cache-control', 'max-age=600']]));
    expect(effectiveCacheControl(view.info.headers).cc.noCache).toBe(true);
    const negative = viewOf(meta([[OWN_LIFETIME_FIELD, '10']], 404));
    expect(freshnessLifetime(negative.info)).toEqual({ lifetimeMs: 10_000, source: 'cdn-cache-control' });
    expect(negative.clientBase).toEqual({});
  });

  it("upstream's copy of the edge's own field is never taken", () => {
    expect(withoutOwnFields([['a', '1'], [OWN_LIFETIME_FIELD, '3600'], ['Anycdn-Negative-Ttl', '3600'], ['cdn-cache-control', 'max-age=5']])).toEqual([['a', '1'], ['cdn-cache-control', 'max-age=5']]);
  });

  it('joins a repeated field as Headers does', () => {
    const fields = new FieldList([['vary', 'Accept'], ['set-cookie', 'a=1'], ['set-cookie', 'b=2']]);
    expect(fields.get('vary')).toBe('Accept');
    expect(fields.get('set-cookie')).toBe('a=1, b=2');
    expect(fields.entries()).toEqual([['set-cookie', 'a=1, b=2'], ['vary', 'Accept']]);
  });

  it('reads fields exactly as WHATWG Headers reads them', () => {
    const lists: [string, string][][] = [
      [],
      [['cache-control', 'max-age=60'], ['content-type', 'image/png'], ['etag', '"a"']],
      [['vary', 'Accept'], ['Vary', ' Accept-Encoding '], ['x-empty', ''], ['x-tab', '\tv\t'], ['x-inner', 'a  b']],
      [['set-cookie', 'a=1'], ['Cache-Control', 'no-cache'], ['set-cookie', 'b=2'], ['cache-control', 'private']],
    ];
    const names = ['cache-control', 'Cache-Control', 'VARY', 'vary', 'x-empty', 'x-tab', 'x-inner', 'set-cookie', 'etag', 'absent', 'content-typ'];
    for (const pairs of lists) {
      const headers = headersFromPairs(pairs);
      const fields = new FieldList(pairs);
      for (const name of names) {
        expect(fields.get(name), `${JSON.stringify(pairs)} ${name}`).toBe(headers.get(name));
        expect(fields.has(name)).toBe(headers.has(name));
      }
      // Iteration: each name once (set-cookie aside, which the edge never passes on), in name order.
      const withoutCookies = (entries: [string, string][]) => entries.filter(([k]) => k !== 'set-cookie');
      expect(withoutCookies([...fields])).toEqual(withoutCookies([...headers]));
    }
  });
});
