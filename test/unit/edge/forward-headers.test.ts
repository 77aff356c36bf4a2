import { describe, expect, it } from 'vitest';
import { forwardRequestHeaders, relayResponseHeaders } from '../../../edge/forward-headers.js';

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

  it('forwards a field of no meaning to the edge like any other end-to-end field (anycdn-worker is no longer its own)', () => {
    const out = forwardRequestHeaders(new Headers({ host: 'cdn.example', 'anycdn-worker': 'x', 'x-custom': 'y' }), { dropConditions: true, clientIp: undefined, via: 'anycdn-ams-1' });
    expect(out['anycdn-worker']).toBe('x');
    expect(out['x-custom']).toBe('y');
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
