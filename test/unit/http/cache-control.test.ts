import { describe, expect, it } from 'vitest';
import {
  cacheControlProblem,
  type CacheControl,
  effectiveCacheControl,
  emptyCacheControl,
  parseCacheControl,
  parseDeltaSeconds,
  parseTargetedCacheControl,
  requestCacheControl,
} from '../../../src/http/cache-control.js';
import { headerGetter } from '../../../src/http/headers.js';

const cc = (overrides: Partial<CacheControl>): CacheControl => ({ ...emptyCacheControl(), ...overrides });

describe('parseDeltaSeconds (RFC 9111 §1.2.2)', () => {
  const rows: [string, string | undefined, number | undefined][] = [
    ['§1.2.2 digits', '60', 60],
    ['§1.2.2 zero', '0', 0],
    ['§1.2.2 leading zeros', '007', 7],
    ['§1.2.2 saturates at 2^31', '99999999999999999999', 2147483648],
    ['§1.2.2 exactly 2^31', '2147483648', 2147483648],
    ['§1.2.2 negative is invalid', '-1', undefined],
    ['§1.2.2 plus sign is invalid', '+1', undefined],
    ['§1.2.2 decimal is invalid', '1.5', undefined],
    ['§1.2.2 empty is invalid', '', undefined],
    ['§1.2.2 absent', undefined, undefined],
  ];
  it.each(rows)('%s', (_name, input, expected) => {
    expect(parseDeltaSeconds(input)).toBe(expected);
  });
});

describe('parseCacheControl (RFC 9111 §5.2)', () => {
  const rows: [string, string | null | undefined, CacheControl][] = [
    ['absent', undefined, cc({})],
    ['null', null, cc({})],
    ['empty', '', cc({})],
    ['§5.2.2.1 max-age', 'max-age=60', cc({ maxAge: 60 })],
    ['§5.2.2.10 s-maxage', 's-maxage=120', cc({ sMaxage: 120 })],
    ['§5.2 names are case-insensitive', 'Max-Age=60, PUBLIC', cc({ maxAge: 60, public: true })],
    ['§5.2 quoted delta-seconds accepted', 'max-age="60"', cc({ maxAge: 60 })],
    ['§5.2 OWS around elements and =', ' max-age = 60 ,public ', cc({ maxAge: 60, public: true })],
    ['§5.6.1 empty elements ignored', ',,max-age=60,,', cc({ maxAge: 60 })],
    ['§4.2.1 invalid max-age counts as stale (0)', 'max-age=abc', cc({ maxAge: 0 })],
    ['§4.2.1 max-age without value counts as stale (0)', 'max-age', cc({ maxAge: 0 })],
    ['§4.2.1 negative max-age counts as stale (0)', 'max-age=-5', cc({ maxAge: 0 })],
    ['§4.2.1 invalid s-maxage counts as stale (0)', 's-maxage=1.5', cc({ sMaxage: 0 })],
    ['§4.2.1 duplicate max-age: most restrictive', 'max-age=600, max-age=60', cc({ maxAge: 60 })],
    ['§4.2.1 duplicate max-age with an invalid one', 'max-age=600, max-age=x', cc({ maxAge: 0 })],
    ['§1.2.2 huge max-age saturates', 'max-age=99999999999', cc({ maxAge: 2147483648 })],
    ['§5.2.2.4 unqualified no-cache', 'no-cache', cc({ noCache: true })],
    ['§5.2.2.4 qualified no-cache', 'no-cache="Set-Cookie, X-Foo"', cc({ noCacheFields: ['set-cookie', 'x-foo'] })],
    ['§5.2.2.4 qualified no-cache, token form', 'no-cache=Set-Cookie', cc({ noCacheFields: ['set-cookie'] })],
    ['§5.2.2.4 both forms', 'no-cache, no-cache="a"', cc({ noCache: true, noCacheFields: ['a'] })],
    ['§5.2.2.7 unqualified private', 'private', cc({ private: true })],
    ['§5.2.2.7 qualified private keeps comma inside quotes', 'private="Set-Cookie,Authorization", max-age=5', cc({ privateFields: ['set-cookie', 'authorization'], maxAge: 5 })],
    ['§5.2.2.7 duplicate field names deduplicated', 'private="a", private="A"', cc({ privateFields: ['a'] })],
    ['§5.2.2.5 no-store', 'no-store', cc({ noStore: true })],
    ['§5.2.2.9 public', 'public', cc({ public: true })],
    ['§5.2.2.2 must-revalidate', 'must-revalidate', cc({ mustRevalidate: true })],
    ['§5.2.2.8 proxy-revalidate', 'proxy-revalidate', cc({ proxyRevalidate: true })],
    ['§5.2.2.3 must-understand', 'must-understand, no-store', cc({ mustUnderstand: true, noStore: true })],
    ['§5.2.2.6 no-transform', 'no-transform', cc({ noTransform: true })],
    ['RFC 8246 immutable', 'public, max-age=31536000, immutable', cc({ public: true, maxAge: 31536000, immutable: true })],
    ['RFC 5861 §3 stale-while-revalidate', 'max-age=1, stale-while-revalidate=59', cc({ maxAge: 1, staleWhileRevalidate: 59 })],
    ['RFC 5861 §4 stale-if-error', 'stale-if-error=86400', cc({ staleIfError: 86400 })],
    ['RFC 5861 invalid stale-while-revalidate dropped', 'stale-while-revalidate=soon', cc({})],
    ['RFC 5861 duplicate stale-if-error: smallest', 'stale-if-error=10, stale-if-error=5', cc({ staleIfError: 5 })],
    ['§5.2.1.3 min-fresh', 'min-fresh=20', cc({ minFresh: 20 })],
    ['§5.2.1.3 duplicate min-fresh: largest', 'min-fresh=20, min-fresh=30', cc({ minFresh: 30 })],
    ['§5.2.1.3 invalid min-fresh dropped', 'min-fresh=x', cc({})],
    ['§5.2.1.2 max-stale with value', 'max-stale=30', cc({ maxStale: 30 })],
    ['§5.2.1.2 bare max-stale is unlimited', 'max-stale', cc({ maxStale: Infinity })],
    ['§5.2.1.2 bare and valued max-stale: smallest', 'max-stale, max-stale=10', cc({ maxStale: 10 })],
    ['§5.2.1.2 invalid max-stale dropped', 'max-stale=x', cc({})],
    ['§5.2.1.7 only-if-cached', 'only-if-cached', cc({ onlyIfCached: true })],
    ['§5.2.3 unknown directives ignored', 'foo, bar="baz, qux", max-age=3', cc({ maxAge: 3 })],
    ['§5.2 element without a name skipped', '=5, max-age=3', cc({ maxAge: 3 })],
    ['§5.6.4 escaped quote inside quoted-string', 'foo="a\\",b", max-age=3', cc({ maxAge: 3 })],
  ];
  it.each(rows)('%s', (_name, input, expected) => {
    expect(parseCacheControl(input)).toEqual(expected);
  });
});

describe('parseTargetedCacheControl (RFC 9213 §2.1)', () => {
  const rows: [string, string | null | undefined, CacheControl | undefined][] = [
    ['§2.1 absent', undefined, undefined],
    ['§2.1 empty value is ignored', '', undefined],
    ['§2.1 whitespace-only value is ignored', '   ', undefined],
    ['§2.1 sf-integer max-age', 'max-age=600', cc({ maxAge: 600 })],
    ['§2.1 every delta-seconds directive', 'max-age=1, s-maxage=2, stale-while-revalidate=3, stale-if-error=4', cc({ maxAge: 1, sMaxage: 2, staleWhileRevalidate: 3, staleIfError: 4 })],
    ['§2.1 max-age=0', 'max-age=0', cc({ maxAge: 0 })],
    ['§2.1 a large Integer saturates at 2^31 (RFC 9111 §1.2.2)', 'max-age=999999999999999', cc({ maxAge: 2 ** 31 })],
    ['§2.1 boolean flags', 'no-store, public', cc({ noStore: true, public: true })],
    ['§2.1 every flag', 'must-revalidate, proxy-revalidate, must-understand, no-transform, immutable', cc({ mustRevalidate: true, proxyRevalidate: true, mustUnderstand: true, noTransform: true, immutable: true })],
    ['§2.1 ?0 means absent', 'no-store=?0, max-age=5', cc({ maxAge: 5 })],
    ['§2.1 ?1 means present', 'no-store=?1', cc({ noStore: true })],
    ['§2.1 parameters ignored', 'max-age=600;foo=bar, private;x="y"', cc({ maxAge: 600, private: true })],
    ['§2.1 private alone', 'private', cc({ private: true })],
    ['§2.1 no-cache alone', 'no-cache', cc({ noCache: true })],
    ['§2.1 sf-string field names', 'private="set-cookie"', cc({ privateFields: ['set-cookie'] })],
    ['§2.1 sf-string field names of no-cache, lower-cased', 'no-cache="Set-Cookie, X-A", max-age=9', cc({ noCacheFields: ['set-cookie', 'x-a'], maxAge: 9 })],
    ['§2.1 unknown directive only still counts (RFC 9213 §3.1 "none")', 'none', cc({})],
    ['§2.1 unknown directives take any type', 'x-a="s", x-b=1.5, x-c=(1 2), x-d=@1659578233, x-e=%"caf%c3%a9", max-age=7', cc({ maxAge: 7 })],
    ['§2.1 request-only directives mean nothing in a response', 'min-fresh="x", only-if-cached=1, max-age=7', cc({ maxAge: 7 })],
    ['§2.1 SF duplicate key: last wins', 'max-age=10, max-age=20', cc({ maxAge: 20 })],
    // Not a Dictionary: ignored, with no falling back to the Cache-Control syntax.
    ['§2.1 upper-case keys are not a Dictionary', 'Max-Age=600, Public', undefined],
    ['§2.1 a trailing comma', 'max-age=600,', undefined],
    ['§2.1 an unterminated string', 'private="set-cookie', undefined],
    ['§2.1 nothing but punctuation', '===', undefined],
    ['§2.1 a lone quote', '"', undefined],
    // A known directive with a value of the wrong type: the whole field is ignored.
    ['§2.1 max-age as a String', 'max-age="10"', undefined],
    ['§2.1 max-age as a Decimal', 'max-age=10.5', undefined],
    ['§2.1 max-age as an integral Decimal', 'max-age=10.0', undefined],
    ['§2.1 max-age negative', 'max-age=-1', undefined],
    ['§2.1 max-age as a Token', 'max-age=soon', undefined],
    ['§2.1 max-age as a Boolean', 'max-age', undefined],
    ['§2.1 max-age as ?0', 'max-age=?0', undefined],
    ['§2.1 max-age as an inner list', 'max-age=(1 2)', undefined],
    ['§2.1 max-age as a Date', 'max-age=@60', undefined],
    ['§2.1 max-age as a Display String', 'max-age=%"60"', undefined],
    ['§2.1 max-age as a Byte Sequence', 'max-age=:NjA=:', undefined],
    ['§2.1 s-maxage as a String', 's-maxage="10"', undefined],
    ['§2.1 stale-if-error negative', 'max-age=60, stale-if-error=-5', undefined],
    ['§2.1 no-store with an Integer', 'no-store=1', undefined],
    ['§2.1 public with a String', 'public="yes"', undefined],
    ['§2.1 private as a Token', 'private=set-cookie', undefined],
    ['§2.1 no-cache as an Integer', 'no-cache=1', undefined],
    ['§2.1 wrong type beside valid members: the whole field goes', 'private, max-age=10.5', undefined],
  ];
  it.each(rows)('%s: %j', (_name, input, expected) => {
    expect(parseTargetedCacheControl(input)).toEqual(expected);
  });
});

describe('effectiveCacheControl (RFC 9213 §2.2)', () => {
  const rows: [string, Record<string, string>, boolean, Partial<CacheControl>][] = [
    ['§2.2 CDN-Cache-Control replaces Cache-Control', { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=600' }, true, { maxAge: 600, noStore: false }],
    ['§3.1 "none" still replaces Cache-Control', { 'cache-control': 'no-store', 'cdn-cache-control': 'none' }, true, { noStore: false }],
    ['§2.2 empty CDN-Cache-Control falls back', { 'cache-control': 'max-age=60', 'cdn-cache-control': '' }, false, { maxAge: 60 }],
    ['§2.2 unparseable CDN-Cache-Control falls back', { 'cache-control': 'max-age=60', 'cdn-cache-control': '"' }, false, { maxAge: 60 }],
    ['§2.1 a wrongly typed CDN-Cache-Control falls back', { 'cache-control': 'max-age=60', 'cdn-cache-control': 'max-age="3600"' }, false, { maxAge: 60 }],
    ['§2.1 a Decimal lifetime falls back', { 'cache-control': 'private', 'cdn-cache-control': 'max-age=10.5' }, false, { private: true }],
    ['§2.1 classic syntax falls back', { 'cache-control': 'no-store', 'cdn-cache-control': 'Max-Age=600' }, false, { noStore: true }],
    ['§2.2 private in CDN-Cache-Control beats public Cache-Control', { 'cache-control': 'public, max-age=600', 'cdn-cache-control': 'private' }, true, { private: true }],
    ['§2.2 no-cache in CDN-Cache-Control beats Cache-Control', { 'cache-control': 'public, max-age=600', 'cdn-cache-control': 'no-cache, max-age=600' }, true, { noCache: true, maxAge: 600 }],
    ['§2.2 no CDN-Cache-Control', { 'cache-control': 'private' }, false, { private: true }],
  ];
  it.each(rows)('%s', (_name, headers, targeted, expected) => {
    const result = effectiveCacheControl(headerGetter(headers));
    expect(result.targeted).toBe(targeted);
    expect(result.cc).toEqual(cc(expected));
  });
});

describe('requestCacheControl (RFC 9111 §5.2.1, §5.4)', () => {
  const rows: [string, Record<string, string>, Partial<CacheControl>][] = [
    ['§5.2.1.4 no-cache', { 'cache-control': 'no-cache' }, { noCache: true }],
    ['§5.4 Pragma: no-cache without Cache-Control', { pragma: 'no-cache' }, { noCache: true }],
    ['§5.4 Pragma ignored when Cache-Control is present', { pragma: 'no-cache', 'cache-control': 'max-age=5' }, { maxAge: 5 }],
    ['§5.4 other Pragma directives ignored', { pragma: 'foo' }, {}],
    ['§5.4 Pragma: no-cache with an argument is not no-cache', { pragma: 'no-cache=x' }, {}],
    ['no headers', {}, {}],
  ];
  it.each(rows)('%s', (_name, headers, expected) => {
    expect(requestCacheControl(headerGetter(headers))).toEqual(cc(expected));
  });
});

describe('cacheControlProblem: a Cache-Control value to be stored as given (RFC 9111 §5.2)', () => {
  it.each([
    'public, max-age=600',
    'no-store',
    'max-age="60"',
    'public, , max-age=1',
    'private="set-cookie, x-a", max-age=0',
    'x-extension=tok, y-ext="quoted \\" inside"',
    'stale-if-error=86400, stale-while-revalidate=0',
    'MAX-AGE=5',
  ])('accepts %s', (value) => {
    expect(cacheControlProblem(value)).toBeUndefined();
  });

  it.each([
    ['max-age=abc', 'max-age needs a number of seconds, got "max-age=abc"'],
    ['max-age=-1', 'max-age needs a number of seconds, got "max-age=-1"'],
    ['max-age=1.5', 'max-age needs a number of seconds, got "max-age=1.5"'],
    ['s-maxage', 's-maxage needs a number of seconds, got "s-maxage"'],
    ['Stale-If-Error=soon', 'stale-if-error needs a number of seconds, got "Stale-If-Error=soon"'],
    ['public; max-age=60', '"public; max-age=60" is not a directive (name, or name=value)'],
    ['max age', '"max age" is not a directive (name, or name=value)'],
    ['=60', '"=60" is not a directive (name, or name=value)'],
    ['private="open', '"private=\\"open" is not a directive (name, or name=value)'],
    ['a=b=c', '"a=b=c" is not a directive (name, or name=value)'],
  ])('refuses %s', (value, problem) => {
    expect(cacheControlProblem(value)).toBe(problem);
  });
});
