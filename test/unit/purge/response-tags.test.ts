import { describe, expect, it } from 'vitest';
import { parseSfList } from '../../../src/http/structured-fields.js';
import { cacheGroups, MAX_RESPONSE_TAGS, responseTags, surrogateKeys } from '../../../src/purge/response-tags.js';

const fields = (record: Record<string, string>) => new Headers(record);

describe('parseSfList (RFC 9651 §4.2.1)', () => {
  it.each([
    ['strings', '"a", "b c"', [{ type: 'string', value: 'a' }, { type: 'string', value: 'b c' }]],
    ['mixed members, parameters dropped', '"a";p=1, tok, 7, (1 "x")', [
      { type: 'string', value: 'a' },
      { type: 'token', value: 'tok' },
      { type: 'integer', value: 7 },
      { type: 'inner-list', value: [{ type: 'integer', value: 1 }, { type: 'string', value: 'x' }] },
    ]],
    ['OWS around commas, leading SP', ' "a" ,\t"b"', [{ type: 'string', value: 'a' }, { type: 'string', value: 'b' }]],
    ['an empty field is an empty list', '', []],
  ])('%s', (_name, input, expected) => {
    expect(parseSfList(input)).toEqual(expected);
  });

  it.each([
    ['trailing comma', '"a",'],
    ['missing comma', '"a" "b"'],
    ['unterminated string', '"a'],
    ['non-ASCII in a string', '"é"'],
    ['empty member', '"a",,"b"'],
  ])('%s → undefined', (_name, input) => {
    expect(parseSfList(input)).toBeUndefined();
  });
});

describe('response tags', () => {
  it.each([
    ['Surrogate-Key, space-separated', { 'surrogate-key': '/photos/cat.jpg  cats gallery' }, ['/photos/cat.jpg', 'cats', 'gallery']],
    ['Surrogate-Key split over fields (combined with a comma)', { 'surrogate-key': 'a b, c' }, ['a', 'b', 'c']],
    ['RFC 9875 Cache-Groups strings', { 'cache-groups': '"scripts", "group one"' }, ['scripts', 'group one']],
    ['both, each tag once, Surrogate-Key first', { 'surrogate-key': 'x shared', 'cache-groups': '"shared", "y"' }, ['x', 'shared', 'y']],
    ['Cache-Groups members that are not Strings are ignored', { 'cache-groups': 'token, "kept", 3, ("in")' }, ['kept']],
    ['Cache-Groups parameters are ignored', { 'cache-groups': '"a";future=1' }, ['a']],
    ['a Cache-Groups field that does not parse is ignored whole', { 'cache-groups': '"a", "b' }, undefined],
    ['an escaped backslash in a group is read', { 'cache-groups': '"ok", "tab\\\\"' }, ['ok', 'tab\\']],
    ['nothing', {}, undefined],
    ['empty fields', { 'surrogate-key': '  ', 'cache-groups': '' }, undefined],
  ])('%s', (_name, record, expected) => {
    expect(responseTags(fields(record as Record<string, string>))).toEqual(expected);
  });

  it('keeps only tags the purge API could name (1–256 printable ASCII)', () => {
    const long = 'x'.repeat(257);
    expect(responseTags(fields({ 'surrogate-key': `ok ${long} caf\u00e9`, 'cache-groups': '" lead", "trail "' }))).toEqual(['ok']);
  });

  it(`keeps at most ${MAX_RESPONSE_TAGS} tags`, () => {
    const many = Array.from({ length: MAX_RESPONSE_TAGS + 10 }, (_, i) => `t${i}`);
    const tags = responseTags(fields({ 'surrogate-key': many.join(' ') }))!;
    expect(tags).toHaveLength(MAX_RESPONSE_TAGS);
    expect(tags.at(-1)).toBe(`t${MAX_RESPONSE_TAGS - 1}`);
  });

  it('reads the fields alone', () => {
    expect(surrogateKeys(null)).toEqual([]);
    expect(cacheGroups(null)).toEqual([]);
    expect(cacheGroups('"a" , "b"')).toEqual(['a', 'b']);
  });
});
