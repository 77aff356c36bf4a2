import { describe, expect, it } from 'vitest';
import { headerGetter, httpDate } from '../../../src/http/headers.js';
import { type Storability, storability } from '../../../src/http/storable.js';

const NOW = Date.UTC(2026, 0, 1);
const DATE = httpDate(NOW);
const LM = httpDate(NOW - 86_400_000);
const OK: Storability = { store: true, omitFields: [] };
const no = (reason: string): Storability => ({ store: false, reason } as Storability);

type Row = [name: string, method: string, reqHeaders: Record<string, string>, status: number, resHeaders: Record<string, string>, expected: Storability];

describe('storability (RFC 9111 §3)', () => {
  const rows: Row[] = [
    ['§3 200 with max-age', 'GET', {}, 200, { 'cache-control': 'max-age=60' }, OK],
    ['§3 method: HEAD is not stored', 'HEAD', {}, 200, { 'cache-control': 'max-age=60' }, no('method')],
    ['§3 method: POST is not stored', 'POST', {}, 200, { 'cache-control': 'max-age=60' }, no('method')],
    ['§3 partial: 206 is not stored', 'GET', {}, 206, { 'cache-control': 'max-age=60' }, no('partial')],
    ['§3 status: 304 is not a response to store', 'GET', {}, 304, { 'cache-control': 'max-age=60' }, no('status')],
    ['§3 status: 500 is not stored', 'GET', {}, 500, { 'cache-control': 'max-age=60' }, no('status')],
    ['§3 status: 100 is not final', 'GET', {}, 100, {}, no('status')],
    ['§3 status: unknown 299', 'GET', {}, 299, { 'cache-control': 'max-age=60' }, no('status')],
    ['§5.2.2.3 must-understand with unknown status', 'GET', {}, 299, { 'cache-control': 'must-understand, no-store, max-age=60' }, no('status')],
    ['§5.2.2.3 must-understand overrides no-store for an understood status', 'GET', {}, 200, { 'cache-control': 'must-understand, no-store, max-age=60' }, OK],
    ['§5.2.2.5 response no-store', 'GET', {}, 200, { 'cache-control': 'no-store, max-age=60' }, no('no-store')],
    ['§5.2.1.5 request no-store', 'GET', { 'cache-control': 'no-store' }, 200, { 'cache-control': 'max-age=60' }, no('no-store')],
    ['§5.2.2.7 unqualified private', 'GET', {}, 200, { 'cache-control': 'private, max-age=60' }, no('private')],
    ['§5.2.2.7 qualified private stores without the fields', 'GET', {}, 200, { 'cache-control': 'private="x-user", max-age=60' }, { store: true, omitFields: ['x-user'] }],
    ['§3.5 Authorization without permission', 'GET', { authorization: 'Bearer x' }, 200, { 'cache-control': 'max-age=60' }, no('authorization')],
    ['§3.5 Authorization with public', 'GET', { authorization: 'Bearer x' }, 200, { 'cache-control': 'public, max-age=60' }, OK],
    ['§3.5 Authorization with s-maxage', 'GET', { authorization: 'Bearer x' }, 200, { 'cache-control': 's-maxage=60' }, OK],
    ['§3.5 Authorization with must-revalidate', 'GET', { authorization: 'Bearer x' }, 200, { 'cache-control': 'must-revalidate, max-age=60' }, OK],
    ['§4.1 Vary: * is never reusable', 'GET', {}, 200, { 'cache-control': 'max-age=60', vary: 'Accept, *' }, no('vary-star')],
    ['§4.1 Vary: Accept is fine', 'GET', {}, 200, { 'cache-control': 'max-age=60', vary: 'Accept' }, OK],
    ['set-cookie not stored by default', 'GET', {}, 200, { 'cache-control': 'max-age=60', 'set-cookie': 'a=b' }, no('set-cookie')],
    ['§5.2.2.7 private="set-cookie" stores without the cookie', 'GET', {}, 200, { 'cache-control': 'private="Set-Cookie", max-age=60', 'set-cookie': 'a=b' }, { store: true, omitFields: ['set-cookie'] }],
    ['§3 no-freshness: no explicit freshness, no validator', 'GET', {}, 200, {}, no('no-freshness')],
    ['§3 heuristically cacheable 200 with Last-Modified', 'GET', {}, 200, { 'last-modified': LM }, OK],
    ['§3 heuristically cacheable 404 with ETag', 'GET', {}, 404, { etag: '"a"' }, OK],
    ['§3 302 without explicit freshness is not storable', 'GET', {}, 302, { etag: '"a"' }, no('no-freshness')],
    ['§3 302 with max-age', 'GET', {}, 302, { 'cache-control': 'max-age=60' }, OK],
    ['§3 302 with public and a validator', 'GET', {}, 302, { 'cache-control': 'public', etag: '"a"' }, OK],
    ['§4.2.1 max-age=0 without validator: never reusable', 'GET', {}, 200, { 'cache-control': 'max-age=0' }, no('no-freshness')],
    ['§4.2.1 max-age=0 with ETag: stored and revalidated', 'GET', {}, 200, { 'cache-control': 'max-age=0', etag: '"a"' }, OK],
    ['§5.2.2.4 no-cache with ETag: stored and always revalidated', 'GET', {}, 200, { 'cache-control': 'no-cache', etag: '"a"' }, OK],
    ['§5.2.2.4 no-cache without validator: never reusable', 'GET', {}, 200, { 'cache-control': 'no-cache' }, no('no-freshness')],
    ['§5.3 Expires in the future', 'GET', {}, 200, { date: DATE, expires: httpDate(NOW + 60_000) }, OK],
    ['§5.3 invalid Expires without validator', 'GET', {}, 200, { date: DATE, expires: '0' }, no('no-freshness')],
    ['§5.3 Expires without Date counts as positive', 'GET', {}, 200, { expires: httpDate(NOW + 60_000) }, OK],
    ['RFC 9213 §2.2 CDN-Cache-Control overrides Cache-Control: no-store', 'GET', {}, 200, { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=600' }, OK],
    ['RFC 9213 §2.2 CDN-Cache-Control private', 'GET', {}, 200, { 'cache-control': 'public, max-age=60', 'cdn-cache-control': 'private' }, no('private')],
    ['RFC 9213 §2.2 CDN-Cache-Control no-store', 'GET', {}, 200, { 'cache-control': 'max-age=60', 'cdn-cache-control': 'no-store' }, no('no-store')],
    ['RFC 9213 §2.2 CDN-Cache-Control private over public, max-age and Expires', 'GET', {}, 200, { 'cache-control': 'public, max-age=600', date: DATE, expires: httpDate(NOW + 60_000), etag: '"a"', 'cdn-cache-control': 'private' }, no('private')],
    ['RFC 9213 §2.2 CDN-Cache-Control private with its own max-age', 'GET', {}, 200, { 'cache-control': 'public, max-age=600', 'cdn-cache-control': 'private, max-age=600' }, no('private')],
    ['RFC 9213 §2.2 CDN-Cache-Control no-store over Expires', 'GET', {}, 200, { date: DATE, expires: httpDate(NOW + 60_000), etag: '"a"', 'cdn-cache-control': 'no-store' }, no('no-store')],
    ['RFC 9213 §2.2 CDN-Cache-Control no-cache with a validator: stored, revalidated', 'GET', {}, 200, { 'cache-control': 'public, max-age=600', date: DATE, expires: httpDate(NOW + 60_000), etag: '"a"', 'cdn-cache-control': 'no-cache' }, OK],
    ['RFC 9213 §2.2 CDN-Cache-Control no-cache without a validator: never reusable', 'GET', {}, 200, { 'cache-control': 'public, max-age=600', date: DATE, expires: httpDate(NOW + 60_000), 'cdn-cache-control': 'no-cache' }, no('no-freshness')],
    ['RFC 9213 §2.2 CDN-Cache-Control lifetime stores what Cache-Control calls private', 'GET', {}, 200, { 'cache-control': 'private', 'cdn-cache-control': 'max-age=600' }, OK],
    ['RFC 9213 §2.2 CDN-Cache-Control private="set-cookie" stores without the cookie', 'GET', {}, 200, { 'cache-control': 'no-store', 'cdn-cache-control': 'private="set-cookie", max-age=60', 'set-cookie': 'a=b' }, { store: true, omitFields: ['set-cookie'] }],
    ['RFC 9213 §2.1 a wrongly typed CDN-Cache-Control: Cache-Control no-store governs', 'GET', {}, 200, { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age="600"' }, no('no-store')],
    ['RFC 9213 §2.1 a Decimal CDN-Cache-Control lifetime: Cache-Control private governs', 'GET', {}, 200, { 'cache-control': 'private', 'cdn-cache-control': 'max-age=10.5' }, no('private')],
    ['RFC 9213 §2.1 a negative CDN-Cache-Control lifetime: Cache-Control governs', 'GET', {}, 200, { 'cache-control': 'max-age=60', 'cdn-cache-control': 'max-age=-600' }, OK],
    ['RFC 9213 §2.1 an unparseable CDN-Cache-Control: no lifetime, not stored', 'GET', {}, 200, { 'cdn-cache-control': 'Max-Age=600' }, no('no-freshness')],
  ];
  it.each(rows)('%s', (_name, method, reqHeaders, status, resHeaders, expected) => {
    const result = storability(
      { method, headers: headerGetter(reqHeaders) },
      { status, headers: headerGetter(resHeaders) },
      { storeSetCookie: false },
    );
    expect(result).toEqual(expected);
  });

  it('§5.2.1.5 request no-store ignored when request directives are not honoured', () => {
    const result = storability(
      { method: 'GET', headers: headerGetter({ 'cache-control': 'no-store' }) },
      { status: 200, headers: headerGetter({ 'cache-control': 'max-age=60' }) },
      { storeSetCookie: false, honorRequestCacheControl: false },
    );
    expect(result).toEqual(OK);
  });

  it('storeSetCookie: true stores a response with Set-Cookie', () => {
    const result = storability(
      { method: 'GET', headers: headerGetter({}) },
      { status: 200, headers: headerGetter({ 'cache-control': 'max-age=60', 'set-cookie': 'a=b' }) },
      { storeSetCookie: true },
    );
    expect(result).toEqual(OK);
  });

  it('§5.3 Expires already past at receipt, without validator', () => {
    const result = storability(
      { method: 'GET', headers: headerGetter({}) },
      { status: 200, headers: headerGetter({ expires: httpDate(NOW - 1000) }), responseTime: NOW },
      { storeSetCookie: false },
    );
    expect(result).toEqual(no('no-freshness'));
  });
});
