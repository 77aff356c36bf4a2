import { describe, expect, it } from 'vitest';
import { HOP_BY_HOP_FIELDS, connectionOptions, isHopByHop, stripHopByHop } from '../../../src/http/hop-by-hop.js';

describe('hop-by-hop fields (RFC 9110 §7.6.1)', () => {
  it('§7.6.1 lists the connection-specific fields', () => {
    expect([...HOP_BY_HOP_FIELDS].sort()).toEqual([
      'connection',
      'keep-alive',
      'proxy-authenticate',
      'proxy-authorization',
      'proxy-connection',
      'te',
      'trailer',
      'transfer-encoding',
      'upgrade',
    ]);
  });

  const rows: [string, string, string | null, boolean][] = [
    ['§7.6.1 Transfer-Encoding', 'Transfer-Encoding', null, true],
    ['§7.6.1 Keep-Alive', 'keep-alive', null, true],
    ['§7.6.1 end-to-end field', 'Cache-Control', null, false],
    ['§7.6.1 field named by Connection', 'X-Hop', 'close, X-Hop', true],
    ['§7.6.1 field not named by Connection', 'X-Other', 'close, X-Hop', false],
  ];
  it.each(rows)('%s', (_name, field, connection, expected) => {
    expect(isHopByHop(field, connection)).toBe(expected);
  });

  it('§7.6.1 connectionOptions lower-cases and skips empty elements', () => {
    expect(connectionOptions(' Keep-Alive, ,X-Foo ')).toEqual(['keep-alive', 'x-foo']);
    expect(connectionOptions(null)).toEqual([]);
  });

  it('§7.6.1 stripHopByHop removes listed and Connection-named fields', () => {
    const h = new Headers({
      connection: 'keep-alive, x-secret',
      'keep-alive': 'timeout=5',
      'x-secret': 's',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      te: 'trailers',
      trailer: 'x-t',
      'proxy-authorization': 'Basic x',
      'proxy-authenticate': 'Basic',
      'proxy-connection': 'keep-alive',
      'content-type': 'image/png',
      etag: '"a"',
    });
    expect([...stripHopByHop(h)]).toEqual([
      ['content-type', 'image/png'],
      ['etag', '"a"'],
    ]);
    expect(h.get('connection')).toBe('keep-alive, x-secret');
  });
});
