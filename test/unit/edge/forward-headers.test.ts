import { describe, expect, it } from 'vitest';
import { formatShieldLog, forwardRequestHeaders, parseShieldLog, relayResponseHeaders } from '../../../edge/forward-headers.js';

describe('request headers sent upstream', () => {
  const client = new Headers({
    host: 'cdn.example',
    accept: 'image/webp',
    cookie: 'a=1',
    connection: 'keep-alive, x-private-hop',
    'x-private-hop': 'secret',
    'keep-alive': 'timeout=5',
    'if-none-match': '"abc"',
    range: 'bytes=0-1',
    'x-forwarded-for': '203.0.113.9',
    'x-forwarded-host': 'evil.example',
    via: '1.1 proxy-a',
    expect: '100-continue',
    te: 'trailers',
  });

  it('drops hop-by-hop fields and the client conditions on a cache fill, adds Via and X-Forwarded-*', () => {
    expect(forwardRequestHeaders(client, { dropConditions: true, clientIp: '192.0.2.7', via: 'anycdn-ams-1' })).toEqual({
      accept: 'image/webp',
      cookie: 'a=1',
      'x-forwarded-for': '203.0.113.9, 192.0.2.7',
      'x-forwarded-host': 'cdn.example',
      via: '1.1 proxy-a, 1.1 anycdn-ams-1',
    });
  });

  it('names the host the key was made from in X-Forwarded-Host: an absolute-form target’s authority over Host', () => {
    expect(forwardRequestHeaders(client, { dropConditions: true, clientIp: undefined, via: undefined, host: 'abs.example' })['x-forwarded-host']).toBe('abs.example');
  });

  it('keeps the client conditions when passing a request through', () => {
    const out = forwardRequestHeaders(client, { dropConditions: false, clientIp: undefined, via: 'anycdn-ams-1' });
    expect(out['if-none-match']).toBe('"abc"');
    expect(out['range']).toBe('bytes=0-1');
    expect(out['x-forwarded-for']).toBe('203.0.113.9');
  });

  it('relays response headers without hop-by-hop fields or the edge\'s own, with CDN-Cache-Control (RFC 9213)', () => {
    const h = relayResponseHeaders([
      ['content-type', 'text/plain'],
      ['connection', 'x-hop'],
      ['x-hop', '1'],
      ['transfer-encoding', 'chunked'],
      ['cdn-cache-control', 'private'],
      ['cdn-cache-control', 'max-age=60'],
      ['anycdn-negative-ttl', '10'],
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ]);
    // Set-Cookie stays a list: its values may contain commas, so it is never joined.
    expect(h).toEqual({ 'content-type': 'text/plain', 'cdn-cache-control': 'private, max-age=60', 'set-cookie': ['a=1', 'b=2'] });
  });
});

describe("the shield's account for its workers' access log", () => {
  it('round-trips an outcome alone, and an outcome with upstream status and time', () => {
    expect(formatShieldLog('hit', undefined)).toBe('hit');
    expect(formatShieldLog('miss', { status: 200, ms: 12.34567 })).toBe('miss 200 12.346');
    expect(parseShieldLog('hit')).toEqual({ outcome: 'hit' });
    expect(parseShieldLog('miss 200 12.346')).toEqual({ outcome: 'miss', upstream: { status: 200, ms: 12.346 } });
    expect(parseShieldLog(formatShieldLog('stale-error', { status: 503, ms: 7 }))).toEqual({ outcome: 'stale-error', upstream: { status: 503, ms: 7 } });
  });

  it.each([
    ['', { outcome: 'other' }],
    ['MISS 200 1', { outcome: 'other', upstream: { status: 200, ms: 1 } }],
    ['miss" 200 1', { outcome: 'other', upstream: { status: 200, ms: 1 } }],
    ['miss 2000 1', { outcome: 'miss' }],
    ['miss 200 -1', { outcome: 'miss' }],
    ['miss 200', { outcome: 'miss' }],
    [`${'a'.repeat(40)} 200 1`, { outcome: 'other', upstream: { status: 200, ms: 1 } }],
  ])('reads %j as %j: never a word that is not one into a log line', (value, expected) => {
    expect(parseShieldLog(value)).toEqual(expected);
  });
});
