import { describe, expect, it } from 'vitest';
import { headerGetter } from '../../../src/http/headers.js';
import { acceptEncodingClass, varyFields, varySecondaryKey } from '../../../src/http/vary.js';

describe('varyFields (RFC 9110 §12.5.5)', () => {
  const rows: [string, Record<string, string | string[]>, string[] | '*'][] = [
    ['no Vary', {}, []],
    ['§12.5.5 one field, lower-cased', { vary: 'Accept' }, ['accept']],
    ['§12.5.5 sorted and deduplicated', { vary: 'Origin, accept, ACCEPT' }, ['accept', 'origin']],
    ['§5.3 several lines combine', { vary: ['Accept', 'Accept-Encoding'] }, ['accept', 'accept-encoding']],
    ['§5.6.1 empty elements ignored', { vary: ', Accept ,,' }, ['accept']],
    ['§12.5.5 * anywhere', { vary: 'Accept, *' }, '*'],
    ['§12.5.5 * alone', { vary: '*' }, '*'],
    ['empty value', { vary: '' }, []],
  ];
  it.each(rows)('%s', (_name, headers, expected) => {
    expect(varyFields(headerGetter(headers))).toEqual(expected);
  });
});

describe('acceptEncodingClass (RFC 9110 §12.5.3)', () => {
  const rows: [string, string | undefined, 'br' | 'gzip' | 'identity'][] = [
    ['absent', undefined, 'identity'],
    ['empty', '', 'identity'],
    ['browser', 'gzip, deflate, br, zstd', 'br'],
    ['gzip only', 'gzip', 'gzip'],
    ['x-gzip alias', 'x-gzip', 'gzip'],
    ['case-insensitive', 'GZIP, BR', 'br'],
    ['br refused with q=0', 'br;q=0, gzip', 'gzip'],
    ['q with spaces', 'br ; q=0 , gzip;q=0.5', 'gzip'],
    ['all refused', 'br;q=0, gzip;q=0', 'identity'],
    ['wildcard', '*', 'br'],
    ['wildcard but br refused', '*, br;q=0', 'gzip'],
    ['wildcard refused', '*;q=0', 'identity'],
    ['identity only', 'identity', 'identity'],
    ['q=0.000 refuses', 'br;q=0.000', 'identity'],
    ['repeated coding: the refusal wins', 'br, br;q=0', 'identity'],
  ];
  it.each(rows)('§12.5.3 %s', (_name, value, expected) => {
    expect(acceptEncodingClass(value)).toBe(expected);
  });
});

describe('varySecondaryKey (RFC 9111 §4.1)', () => {
  const AVIF = 'image/avif,image/webp,image/apng,image/*,*/*;q=0.8';
  const rows: [string, string[], Record<string, string>, string][] = [
    ['no fields', [], { accept: AVIF }, ''],
    ['§4.1 Accept normalised to the accept class', ['accept'], { accept: AVIF }, 'accept=avif'],
    ['§4.1 Accept webp', ['accept'], { accept: 'image/webp,*/*' }, 'accept=webp'],
    ['§4.1 absent Accept is class other', ['accept'], {}, 'accept=other'],
    ['§4.1 Accept-Encoding normalised', ['accept-encoding'], { 'accept-encoding': 'gzip, deflate, br' }, 'accept-encoding=br'],
    ['§4.1 other field: whitespace collapsed and trimmed', ['origin'], { origin: '  https://a.example  ' }, 'origin=https%3A%2F%2Fa.example'],
    ['§4.1 other field: inner whitespace collapsed', ['x-thing'], { 'x-thing': 'a   b\t c' }, 'x-thing=a%20b%20c'],
    ['§4.1 absent field differs from empty', ['origin'], {}, 'origin'],
    ['§4.1 empty field', ['origin'], { origin: '' }, 'origin='],
    ['§4.1 several fields in the given order', ['accept', 'origin'], { accept: 'image/webp', origin: 'x' }, 'accept=webp&origin=x'],
    ['§4.1 field names are case-insensitive', ['Accept'], { accept: 'image/webp' }, 'accept=webp'],
  ];
  it.each(rows)('%s', (_name, fields, headers, expected) => {
    expect(varySecondaryKey(fields, headerGetter(headers))).toBe(expected);
  });

  it('§4.1 two browsers with different Accept strings of the same class share a key', () => {
    const chrome = varySecondaryKey(['accept'], headerGetter({ accept: AVIF }));
    const firefox = varySecondaryKey(['accept'], headerGetter({ accept: 'image/avif,image/webp,*/*' }));
    expect(chrome).toBe(firefox);
  });

  it('custom normalisers replace the defaults', () => {
    const key = varySecondaryKey(['accept', 'x-device'], headerGetter({ accept: AVIF, 'x-device': 'Mobile' }), {
      accept: () => 'any',
      'x-device': (v) => v?.toLowerCase(),
    });
    expect(key).toBe('accept=any&x-device=mobile');
  });
});
