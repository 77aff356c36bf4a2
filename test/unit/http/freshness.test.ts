import { describe, expect, it } from 'vitest';
import {
  type FreshnessLifetime,
  type FreshnessOptions,
  currentAge,
  freshnessLifetime,
  isFresh,
  parseAge,
  staleness,
  storedAge,
} from '../../../src/http/freshness.js';
import { headerGetter, httpDate } from '../../../src/http/headers.js';

const NOW = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const OPTIONS: FreshnessOptions = { heuristicFraction: 0.1, heuristicMaxMs: DAY };
const DATE = httpDate(NOW);

type Row = [name: string, status: number, headers: Record<string, string>, expected: FreshnessLifetime];

describe('freshnessLifetime (RFC 9111 §4.2.1, RFC 9213 §2.2)', () => {
  const rows: Row[] = [
    ['§4.2.1 max-age', 200, { 'cache-control': 'max-age=60' }, { lifetimeMs: 60_000, source: 'max-age' }],
    ['§4.2.1 s-maxage wins over max-age at a shared cache', 200, { 'cache-control': 'max-age=60, s-maxage=120' }, { lifetimeMs: 120_000, source: 's-maxage' }],
    ['§4.2.1 max-age wins over Expires', 200, { 'cache-control': 'max-age=60', date: DATE, expires: httpDate(NOW + HOUR) }, { lifetimeMs: 60_000, source: 'max-age' }],
    ['§4.2.1 max-age=0', 200, { 'cache-control': 'max-age=0' }, { lifetimeMs: 0, source: 'max-age' }],
    ['§4.2.1 invalid max-age is stale', 200, { 'cache-control': 'max-age=soon', 'last-modified': httpDate(NOW - 10 * DAY) }, { lifetimeMs: 0, source: 'max-age' }],
    ['§4.2.1 Expires − Date', 200, { date: DATE, expires: httpDate(NOW + HOUR) }, { lifetimeMs: HOUR, source: 'expires' }],
    ['§4.2.1 Expires without Date uses response_time', 200, { expires: httpDate(NOW + HOUR) }, { lifetimeMs: HOUR, source: 'expires' }],
    ['§4.2.1 Expires in the past', 200, { date: DATE, expires: httpDate(NOW - HOUR) }, { lifetimeMs: 0, source: 'expires' }],
    ['§5.3 invalid Expires (0) is already expired', 200, { date: DATE, expires: '0', 'last-modified': httpDate(NOW - DAY) }, { lifetimeMs: 0, source: 'expires' }],
    ['§4.2.1 two Expires lines are invalid → expired', 200, { date: DATE, expires: `${httpDate(NOW + HOUR)}, ${httpDate(NOW + HOUR)}` }, { lifetimeMs: 0, source: 'expires' }],
    ['§4.2.2 heuristic 10% of Date − Last-Modified', 200, { date: DATE, 'last-modified': httpDate(NOW - 10 * HOUR) }, { lifetimeMs: HOUR, source: 'heuristic' }],
    ['§4.2.2 heuristic capped', 200, { date: DATE, 'last-modified': httpDate(NOW - 365 * DAY) }, { lifetimeMs: DAY, source: 'heuristic' }],
    ['§4.2.2 heuristic without Date uses response_time', 200, { 'last-modified': httpDate(NOW - 10 * HOUR) }, { lifetimeMs: HOUR, source: 'heuristic' }],
    ['§4.2.2 Last-Modified in the future → 0', 200, { date: DATE, 'last-modified': httpDate(NOW + HOUR) }, { lifetimeMs: 0, source: 'heuristic' }],
    ['§4.2.2 heuristic for 404 (RFC 9110 §15.1)', 404, { date: DATE, 'last-modified': httpDate(NOW - 10 * HOUR) }, { lifetimeMs: HOUR, source: 'heuristic' }],
    ['§4.2.2 heuristic for 301', 301, { date: DATE, 'last-modified': httpDate(NOW - 10 * HOUR) }, { lifetimeMs: HOUR, source: 'heuristic' }],
    ['§4.2.2 no heuristic for 302', 302, { date: DATE, 'last-modified': httpDate(NOW - 10 * HOUR) }, { lifetimeMs: 0, source: 'none' }],
    ['§4.2.2 no heuristic for 500', 500, { date: DATE, 'last-modified': httpDate(NOW - 10 * HOUR) }, { lifetimeMs: 0, source: 'none' }],
    ['§4.2.2 public makes 302 heuristically cacheable', 302, { 'cache-control': 'public', date: DATE, 'last-modified': httpDate(NOW - 10 * HOUR) }, { lifetimeMs: HOUR, source: 'heuristic' }],
    ['§4.2.2 no Last-Modified: never invented', 200, { date: DATE }, { lifetimeMs: 0, source: 'none' }],
    ['§4.2.2 public without Last-Modified: never invented', 200, { 'cache-control': 'public', date: DATE }, { lifetimeMs: 0, source: 'none' }],
    ['§4.2.2 invalid Last-Modified: never invented', 200, { 'last-modified': 'yesterday' }, { lifetimeMs: 0, source: 'none' }],
    ['no headers at all', 200, {}, { lifetimeMs: 0, source: 'none' }],
    ['RFC 9213 §2.2 CDN-Cache-Control max-age wins over everything', 200, { 'cdn-cache-control': 'max-age=600', 'cache-control': 's-maxage=5', expires: httpDate(NOW + DAY) }, { lifetimeMs: 600_000, source: 'cdn-cache-control' }],
    ['RFC 9213 §2.2 CDN-Cache-Control s-maxage wins over its max-age', 200, { 'cdn-cache-control': 'max-age=600, s-maxage=900' }, { lifetimeMs: 900_000, source: 'cdn-cache-control' }],
    ['RFC 9213 §2.2 Expires ignored under CDN-Cache-Control', 200, { 'cdn-cache-control': 'public', date: DATE, expires: httpDate(NOW + DAY) }, { lifetimeMs: 0, source: 'none' }],
    ['RFC 9213 §2.2 heuristic still applies under CDN-Cache-Control', 200, { 'cdn-cache-control': 'public', date: DATE, 'last-modified': httpDate(NOW - 10 * HOUR) }, { lifetimeMs: HOUR, source: 'heuristic' }],
    ['RFC 9213 §2.1 empty CDN-Cache-Control falls back to Cache-Control', 200, { 'cdn-cache-control': '', 'cache-control': 'max-age=60' }, { lifetimeMs: 60_000, source: 'max-age' }],
    ['RFC 9213 §2.1 a Decimal CDN-Cache-Control lifetime falls back to Cache-Control', 200, { 'cdn-cache-control': 'max-age=600.5', 'cache-control': 'max-age=60' }, { lifetimeMs: 60_000, source: 'max-age' }],
    ['RFC 9213 §2.1 a String CDN-Cache-Control lifetime falls back to Expires', 200, { 'cdn-cache-control': 'max-age="600"', date: DATE, expires: httpDate(NOW + HOUR) }, { lifetimeMs: HOUR, source: 'expires' }],
    ['RFC 9213 §2.1 an unparseable CDN-Cache-Control falls back', 200, { 'cdn-cache-control': 'Max-Age=600', 'cache-control': 'max-age=60' }, { lifetimeMs: 60_000, source: 'max-age' }],
    ['RFC 9213 §2.2 CDN-Cache-Control no-cache: Cache-Control and Expires give no lifetime', 200, { 'cdn-cache-control': 'no-cache', 'cache-control': 'max-age=60', date: DATE, expires: httpDate(NOW + HOUR) }, { lifetimeMs: 0, source: 'none' }],
  ];
  it.each(rows)('%s', (_name, status, headers, expected) => {
    expect(freshnessLifetime({ status, headers: headerGetter(headers), responseTime: NOW }, OPTIONS)).toEqual(expected);
  });
});

describe('currentAge (RFC 9111 §4.2.3)', () => {
  const rows: [string, Parameters<typeof currentAge>[0], number, number][] = [
    ['§4.2.3 just received, no Date or Age', { requestTime: NOW, responseTime: NOW }, NOW, 0],
    ['§4.2.3 resident time', { requestTime: NOW, responseTime: NOW }, NOW + 5000, 5000],
    ['§4.2.3 response delay is added to Age', { requestTime: NOW - 2000, responseTime: NOW, ageHeaderSec: 10 }, NOW, 12_000],
    ['§4.2.3 response delay alone counts', { requestTime: NOW - 2000, responseTime: NOW }, NOW, 2000],
    ['§4.2.3 apparent age from an old Date', { requestTime: NOW, responseTime: NOW, dateMs: NOW - 30_000 }, NOW, 30_000],
    ['§4.2.3 corrected Age larger than apparent age', { requestTime: NOW, responseTime: NOW, dateMs: NOW - 30_000, ageHeaderSec: 60 }, NOW, 60_000],
    ['§4.2.3 apparent age larger than corrected Age', { requestTime: NOW, responseTime: NOW, dateMs: NOW - 90_000, ageHeaderSec: 60 }, NOW + 1000, 91_000],
    ['§4.2.3 Date in the future: apparent age 0', { requestTime: NOW, responseTime: NOW, dateMs: NOW + 60_000 }, NOW, 0],
    ['§4.2.3 clock before response_time: no negative resident time', { requestTime: NOW, responseTime: NOW }, NOW - 5000, 0],
  ];
  it.each(rows)('%s', (_name, info, now, expected) => {
    expect(currentAge(info, now)).toBe(expected);
  });

  it('§4.2.3 storedAge reads Date and Age from the stored headers', () => {
    const headers = headerGetter({ date: httpDate(NOW - 10_000), age: '30' });
    expect(storedAge({ status: 200, headers, requestTime: NOW - 1000, responseTime: NOW }, NOW + 5000)).toBe(36_000);
  });

  it('§5.1 storedAge counts the first of several Age values', () => {
    const info = (age: string) => ({ status: 200, headers: headerGetter({ age }), requestTime: NOW, responseTime: NOW });
    expect(storedAge(info('7200, 0'), NOW)).toBe(7_200_000);
    expect(storedAge(info('0, 7200'), NOW)).toBe(0);
    // Two Age lines, as a header record holds them (joined in received order).
    expect(storedAge({ status: 200, headers: headerGetter({ age: ['7200', '0'] }), requestTime: NOW, responseTime: NOW }, NOW)).toBe(7_200_000);
    const lines = new Headers([['age', '7200'], ['age', '0']]);
    expect(storedAge({ status: 200, headers: lines, requestTime: NOW, responseTime: NOW }, NOW)).toBe(7_200_000);
  });

  it('§5.1 an Age at or above 2^31 is stale under the longest lifetime', () => {
    const headers = headerGetter({ age: '9999999999', 'cache-control': 'max-age=2147483648' });
    const res = { status: 200, headers, requestTime: NOW, responseTime: NOW };
    expect(storedAge(res, NOW)).toBe(2 ** 31 * 1000);
    expect(isFresh(freshnessLifetime(res, OPTIONS).lifetimeMs, storedAge(res, NOW))).toBe(false);
  });

  it('§5.1 storedAge ignores an invalid Age', () => {
    const headers = headerGetter({ age: '-3' });
    expect(storedAge({ status: 200, headers, requestTime: NOW, responseTime: NOW }, NOW + 5000)).toBe(5000);
  });
});

describe('parseAge (RFC 9111 §5.1)', () => {
  const rows: [string | null | undefined, number | undefined][] = [
    ['60', 60],
    [' 60 ', 60],
    ['0', 0],
    ['-1', undefined],
    ['1.5', undefined],
    ['abc', undefined],
    ['-7200', undefined],
    ['7200.0', undefined],
    ['', undefined],
    ['  ', undefined],
    ['1e3', undefined],
    // A list, or several lines joined in received order: the first member counts.
    ['60, 60', 60],
    ['7200, 0', 7200],
    ['0, 7200', 0],
    ['7200,0', 7200],
    [', 7200', 7200],
    ['abc, 7200', undefined],
    ['-7200, 0', undefined],
    // Parameters are not part of the number.
    ['7200;foo=bar', 7200],
    ['7200 ; foo=bar, 0', 7200],
    [';foo=bar', undefined],
    // At or above 2^31: 2^31 (RFC 9111 §1.2.2), stale under any lifetime.
    ['2147483647', 2147483647],
    ['2147483648', 2147483648],
    ['2147483649', 2147483648],
    ['99999999999999999999999999', 2147483648],
    [null, undefined],
    [undefined, undefined],
  ];
  it.each(rows)('§5.1 %j → %s', (input, expected) => {
    expect(parseAge(input)).toBe(expected);
  });
});

describe('isFresh and staleness (RFC 9111 §4.2)', () => {
  const rows: [string, number, number, boolean, number][] = [
    ['§4.2 age below lifetime', 60_000, 59_999, true, 0],
    ['§4.2 age equal to lifetime is stale', 60_000, 60_000, false, 0],
    ['§4.2 age above lifetime', 60_000, 90_000, false, 30_000],
    ['§4.2 zero lifetime', 0, 0, false, 0],
  ];
  it.each(rows)('%s', (_name, lifetime, age, fresh, stale) => {
    expect(isFresh(lifetime, age)).toBe(fresh);
    expect(staleness(lifetime, age)).toBe(stale);
  });
});
