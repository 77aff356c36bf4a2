import { describe, expect, it } from 'vitest';
import {
  type SfBareItem,
  isSfToken,
  parseSfDictionary,
  serializeSfString,
  serializeSfTokenOrString,
} from '../../../src/http/structured-fields.js';

describe('parseSfDictionary (RFC 8941 §4.2.2)', () => {
  const ok: [string, string, [string, SfBareItem][]][] = [
    ['§4.2.2 bare key is Boolean true', 'a', [['a', { type: 'boolean', value: true }]]],
    ['§4.2.4 integer', 'a=1', [['a', { type: 'integer', value: 1 }]]],
    ['§4.2.4 negative integer', 'a=-42', [['a', { type: 'integer', value: -42 }]]],
    ['§4.2.4 decimal', 'a=1.25', [['a', { type: 'decimal', value: 1.25 }]]],
    ['§4.2.5 string with escapes', 'a="x\\"y\\\\z"', [['a', { type: 'string', value: 'x"y\\z' }]]],
    ['§4.2.6 token', 'a=foo/bar:1', [['a', { type: 'token', value: 'foo/bar:1' }]]],
    ['§4.2.8 booleans', 'a=?0, b=?1', [['a', { type: 'boolean', value: false }], ['b', { type: 'boolean', value: true }]]],
    ['§4.2.7 byte sequence', 'a=:aGk=:', [['a', { type: 'binary', value: 'aGk=' }]]],
    ['§4.2.1.2 inner list', 'a=(1 "x")', [['a', { type: 'inner-list', value: [{ type: 'integer', value: 1 }, { type: 'string', value: 'x' }] }]]],
    ['§4.2.3.2 parameters parsed and dropped', 'a=1;q=2;r, b;s="t"', [['a', { type: 'integer', value: 1 }], ['b', { type: 'boolean', value: true }]]],
    ['§4.2.2 duplicate key: last value', 'a=1, a=2', [['a', { type: 'integer', value: 2 }]]],
    ['§4.2.2 OWS around commas, leading SP', ' a=1 ,\tb=2', [['a', { type: 'integer', value: 1 }], ['b', { type: 'integer', value: 2 }]]],
    ['§4.2.3.3 key characters', '*k_e-y.1=1', [['*k_e-y.1', { type: 'integer', value: 1 }]]],
    ['§4.2.2 empty string is an empty dictionary', '', []],
    ['RFC 9651 §4.2.9 date', 'a=@1659578233, b=1', [['a', { type: 'date', value: 1659578233 }], ['b', { type: 'integer', value: 1 }]]],
    ['RFC 9651 §4.2.9 negative date with parameters', 'a=@-1;p', [['a', { type: 'date', value: -1 }]]],
    ['RFC 9651 §4.2.10 display string', 'a=%"f%c3%bc%c3%bc \\ ok"', [['a', { type: 'display-string', value: 'füü \\ ok' }]]],
    ['RFC 9651 §4.2.10 empty display string', 'a=%""', [['a', { type: 'display-string', value: '' }]]],
    ['§4.2.4 integral decimal stays a decimal', 'a=10.0', [['a', { type: 'decimal', value: 10 }]]],
  ];
  it.each(ok)('%s', (_name, input, expected) => {
    expect([...parseSfDictionary(input)!]).toEqual(expected);
  });

  const bad: [string, string][] = [
    ['§4.2.3.3 upper-case key', 'A=1'],
    ['§4.2.2 trailing comma', 'a=1,'],
    ['§4.2.2 missing comma', 'a=1 b=2'],
    ['§4.2.4 integer with 16 digits', 'a=1234567890123456'],
    ['§4.2.4 decimal with 4 fraction digits', 'a=1.2345'],
    ['§4.2.4 decimal without fraction digits', 'a=1.'],
    ['§4.2.4 bare minus', 'a=-'],
    ['§4.2.5 unterminated string', 'a="x'],
    ['§4.2.5 bad escape', 'a="\\n"'],
    ['§4.2.5 non-ASCII in string', 'a="é"'],
    ['§4.2.8 bad boolean', 'a=?2'],
    ['§4.2.7 bad base64', 'a=:%%:'],
    ['§4.2.3.1 empty value', 'a='],
    ['§4.2.2 trailing garbage', 'a=1 ;'],
    ['RFC 9651 §4.2.9 decimal date', 'a=@1.5'],
    ['RFC 9651 §4.2.9 date without digits', 'a=@'],
    ['RFC 9651 §4.2.10 upper-case hex', 'a=%"%C3%BC"'],
    ['RFC 9651 §4.2.10 bad UTF-8', 'a=%"%c3"'],
    ['RFC 9651 §4.2.10 unterminated', 'a=%"abc'],
    ['RFC 9651 §4.2.10 % without quote', 'a=%abc'],
    ['RFC 9651 §4.2.10 truncated escape', 'a=%"%c"'],
  ];
  it.each(bad)('%s → undefined', (_name, input) => {
    expect(parseSfDictionary(input)).toBeUndefined();
  });
});

describe('sf serialisation (RFC 8941 §4.1)', () => {
  const tokens: [string, boolean][] = [
    ['private', true],
    ['no-freshness', true],
    ['*x', true],
    ['a/b:c', true],
    ['1abc', false],
    ['', false],
    ['has space', false],
    ['quote"', false],
  ];
  it.each(tokens)('§3.3.4 isSfToken(%j) = %s', (s, expected) => {
    expect(isSfToken(s)).toBe(expected);
  });

  const strings: [string, string, string][] = [
    ['§4.1.6 plain', 'abc', '"abc"'],
    ['§4.1.6 escapes quote and backslash', 'a"b\\c', '"a\\"b\\\\c"'],
    ['§4.1.6 non-printable replaced', 'a\nb\u00e9', '"a?b?"'],
  ];
  it.each(strings)('%s', (_name, s, expected) => {
    expect(serializeSfString(s)).toBe(expected);
  });

  it('token or string', () => {
    expect(serializeSfTokenOrString('private')).toBe('private');
    expect(serializeSfTokenOrString('upstream timeout')).toBe('"upstream timeout"');
  });
});
