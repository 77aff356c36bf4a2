import { describe, expect, it } from 'vitest';
import { headerGetter } from '../../../src/http/headers.js';
import { conditionalHeadersFor, mergeNotModified, notModifiedApplies } from '../../../src/http/revalidate.js';

const LM = 'Thu, 01 Jan 2026 00:00:00 GMT';

describe('conditionalHeadersFor (RFC 9111 §4.3.1)', () => {
  const rows: [string, Record<string, string>, Record<string, string>][] = [
    ['§4.3.1 ETag → If-None-Match', { etag: '"v1"' }, { 'if-none-match': '"v1"' }],
    ['§4.3.1 weak ETag is sent too', { etag: 'W/"v1"' }, { 'if-none-match': 'W/"v1"' }],
    ['§4.3.1 Last-Modified → If-Modified-Since, verbatim', { 'last-modified': LM }, { 'if-modified-since': LM }],
    ['§4.3.1 both', { etag: '"v1"', 'last-modified': LM }, { 'if-none-match': '"v1"', 'if-modified-since': LM }],
    ['§4.3.1 invalid Last-Modified not sent', { 'last-modified': 'yesterday' }, {}],
    ['§4.3.1 no validators', { 'content-type': 'image/png' }, {}],
  ];
  it.each(rows)('%s', (_name, headers, expected) => {
    expect(conditionalHeadersFor(headerGetter(headers))).toEqual(expected);
  });
});

describe('notModifiedApplies (RFC 9111 §4.3.4)', () => {
  const rows: [string, Record<string, string>, Record<string, string>, boolean][] = [
    ['§4.3.4 same strong ETag', { etag: '"v1"' }, { etag: '"v1"' }, true],
    ['§4.3.4 different strong ETag', { etag: '"v1"' }, { etag: '"v2"' }, false],
    ['§4.3.4 strong 304 ETag vs weak stored', { etag: 'W/"v1"' }, { etag: '"v1"' }, false],
    ['§4.3.4 weak 304 ETag matches weakly', { etag: '"v1"' }, { etag: 'W/"v1"' }, true],
    ['§4.3.4 304 ETag but stored has none', {}, { etag: '"v1"' }, false],
    ['§4.3.4 same Last-Modified', { 'last-modified': LM }, { 'last-modified': LM }, true],
    ['§4.3.4 different Last-Modified', { 'last-modified': LM }, { 'last-modified': 'Fri, 02 Jan 2026 00:00:00 GMT' }, false],
    ['§4.3.4 no validators in the 304', { etag: '"v1"' }, { 'cache-control': 'max-age=60' }, true],
  ];
  it.each(rows)('%s', (_name, stored, nm, expected) => {
    expect(notModifiedApplies(headerGetter(stored), headerGetter(nm))).toBe(expected);
  });
});

describe('mergeNotModified (RFC 9111 §4.3.4, §3.2)', () => {
  const entries = (h: Headers): [string, string][] => [...h];

  it('§3.2 fields in the 304 replace the stored ones; others are kept', () => {
    const stored = new Headers({
      'content-type': 'image/png',
      'content-length': '1234',
      'cache-control': 'max-age=60',
      date: 'Thu, 01 Jan 2026 00:00:00 GMT',
      etag: '"v1"',
    });
    const nm = new Headers({
      'cache-control': 'max-age=600',
      date: 'Thu, 01 Jan 2026 01:00:00 GMT',
      etag: '"v1"',
    });
    expect(entries(mergeNotModified(stored, nm))).toEqual([
      ['cache-control', 'max-age=600'],
      ['content-length', '1234'],
      ['content-type', 'image/png'],
      ['date', 'Thu, 01 Jan 2026 01:00:00 GMT'],
      ['etag', '"v1"'],
    ]);
  });

  it('§3.2 Content-Length in the 304 does not replace the stored one', () => {
    const merged = mergeNotModified(new Headers({ 'content-length': '1234' }), new Headers({ 'content-length': '0' }));
    expect(merged.get('content-length')).toBe('1234');
  });

  it('§3.1 hop-by-hop fields of the 304 and those its Connection names are not stored', () => {
    const merged = mergeNotModified(
      new Headers({ 'x-a': '1' }),
      new Headers({ connection: 'x-hop', 'x-hop': 'no', 'keep-alive': 'timeout=5', 'x-b': '2' }),
    );
    expect(entries(merged)).toEqual([
      ['x-a', '1'],
      ['x-b', '2'],
    ]);
  });

  it('§3.1 hop-by-hop fields already in the stored headers are dropped', () => {
    const merged = mergeNotModified(new Headers({ 'transfer-encoding': 'chunked', connection: 'x-c', 'x-c': '1', 'x-a': '1' }), new Headers());
    expect(entries(merged)).toEqual([['x-a', '1']]);
  });

  it('§3.2 a repeated field in the 304 replaces all stored instances', () => {
    const stored = new Headers();
    stored.append('set-cookie', 'a=1');
    stored.append('set-cookie', 'b=2');
    const nm = new Headers();
    nm.append('set-cookie', 'c=3');
    expect(mergeNotModified(stored, nm).getSetCookie()).toEqual(['c=3']);
  });

  it('does not modify its inputs', () => {
    const stored = new Headers({ 'cache-control': 'max-age=60' });
    mergeNotModified(stored, new Headers({ 'cache-control': 'max-age=1' }));
    expect(stored.get('cache-control')).toBe('max-age=60');
  });
});
