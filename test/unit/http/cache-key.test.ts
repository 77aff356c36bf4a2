import { describe, expect, it } from 'vitest';
import { cacheKey, normalizeHost, normalizePath } from '../../../src/http/cache-key.js';

const q = (s: string) => new URLSearchParams(s);

describe('cacheKey (RFC 9111 §2)', () => {
  const rows: [string, string, string, string, string][] = [
    ['no query', 'cdn.example', '/a.jpg', '', 'cdn.example/a.jpg'],
    ['RFC 3986 §3.2.2 host lower-cased', 'CDN.Example', '/a.jpg', '', 'cdn.example/a.jpg'],
    ['RFC 3986 §6.2.3 default port 443 removed', 'cdn.example:443', '/a.jpg', '', 'cdn.example/a.jpg'],
    ['RFC 3986 §6.2.3 default port 80 removed', 'cdn.example:80', '/a.jpg', '', 'cdn.example/a.jpg'],
    ['RFC 3986 §6.2.3 empty port removed', 'cdn.example:', '/a.jpg', '', 'cdn.example/a.jpg'],
    ['other port kept', 'cdn.example:8080', '/a.jpg', '', 'cdn.example:8080/a.jpg'],
    ['IPv6 literal with default port', '[::1]:443', '/a', '', '[::1]/a'],
    ['IPv6 literal with port', '[::1]:8080', '/a', '', '[::1]:8080/a'],
    ['trailing dot removed', 'cdn.example.', '/a', '', 'cdn.example/a'],
    ['query sorted by key', 'h', '/a', 'w=400&fmt=auto', 'h/a?fmt=auto&w=400'],
    ['repeated keys keep their order', 'h', '/a', 'x=2&x=1', 'h/a?x=2&x=1'],
    ['repeated keys keep their order among others', 'h', '/a', 'x=1&b=0&x=2', 'h/a?b=0&x=1&x=2'],
    ['space encoded as %20, + decoded', 'h', '/a', 'n=a+b&m=c%20d', 'h/a?m=c%20d&n=a%20b'],
    ['percent-encoding normalised', 'h', '/a', 'k=%41', 'h/a?k=A'],
    ['reserved characters encoded', 'h', '/a', 'k=%26%3D', 'h/a?k=%26%3D'],
    ['empty value kept', 'h', '/a', 'k=', 'h/a?k='],
    ['RFC 3986 §6.2.2.1 path escapes upper-cased', 'h', '/a%2fb', '', 'h/a%2Fb'],
    ['RFC 3986 §6.2.2.2 unreserved escapes decoded', 'h', '/%7euser/%41.jpg', '', 'h/~user/A.jpg'],
    ['leading slash added', 'h', 'a.jpg', '', 'h/a.jpg'],
  ];
  it.each(rows)('%s', (_name, host, path, query, expected) => {
    expect(cacheKey(host, path, q(query))).toBe(expected);
  });

  it('the query normaliser runs before sorting and does not touch the caller’s params', () => {
    const params = q('w=0400&fmt=auto&q=80');
    const key = cacheKey('h', '/a.jpg', params, (p) => {
      p.delete('q');
      p.set('w', '400');
      return p;
    });
    expect(key).toBe('h/a.jpg?fmt=auto&w=400');
    expect(params.toString()).toBe('w=0400&fmt=auto&q=80');
  });

  it('a throwing normaliser propagates (invalid image parameter)', () => {
    expect(() =>
      cacheKey('h', '/a', q('w=-1'), () => {
        throw new Error('w');
      }),
    ).toThrow('w');
  });
});

describe('normalizeHost / normalizePath', () => {
  it('RFC 3986 §6.2.2 examples', () => {
    expect(normalizeHost(' Example.COM:443 ')).toBe('example.com');
    expect(normalizePath('/a%c3%a9')).toBe('/a%C3%A9');
  });
});
