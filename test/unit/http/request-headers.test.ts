import { describe, expect, it } from 'vitest';
import { nodeRequestHeaders } from '../../../src/http/request-headers.js';

describe('nodeRequestHeaders', () => {
  // As Node's IncomingMessage.headers holds them: names lower-cased, most repeated fields joined, a few (set-cookie) as lists.
  const raw = { host: 'cdn.example', accept: 'image/webp', 'set-cookie': ['a=1', 'b=2'], 'x-empty': '', 'x-absent': undefined };

  it('reads fields by any case of their name', () => {
    const headers = nodeRequestHeaders(raw);
    expect(headers.get('Host')).toBe('cdn.example');
    expect(headers.get('ACCEPT')).toBe('image/webp');
    expect(headers.get('set-cookie')).toBe('a=1, b=2');
    expect(headers.get('x-empty')).toBe('');
    expect(headers.get('x-absent')).toBeNull();
    expect(headers.get('range')).toBeNull();
    expect(headers.has('X-Empty')).toBe(true);
    expect(headers.has('x-absent')).toBe(false);
    expect(headers.has('range')).toBe(false);
  });

  it('iterates every present field once, in received order, as often as asked', () => {
    const headers = nodeRequestHeaders(raw);
    const want = [
      ['host', 'cdn.example'],
      ['accept', 'image/webp'],
      ['set-cookie', 'a=1, b=2'],
      ['x-empty', ''],
    ];
    expect([...headers]).toEqual(want);
    expect([...headers]).toEqual(want);
    expect([...nodeRequestHeaders({})]).toEqual([]);
  });
});
