import { describe, expect, it } from 'vitest';
import { canonicalPath, pathWithoutQuery } from '../../../src/purge/purge-path.js';

describe('canonicalPath', () => {
  it.each([
    ['/photos/cat.jpg', '/photos/cat.jpg'],
    ['/', '/'],
    // RFC 3986 §3.3 pchar stays as it is
    ["/a-b_c.d~e!f$g&h'i(j)k*l+m,n;o=p:q@r", "/a-b_c.d~e!f$g&h'i(j)k*l+m,n;o=p:q@r"],
    // escapes of pchar are decoded: both spellings of one file are one purge path
    ['/a%40b.jpg', '/a@b.jpg'],
    ['/a%7eb', '/a~b'],
    ['/%41%42%43', '/ABC'],
    // what must be escaped is escaped, with upper-case hex
    ['/a b', '/a%20b'],
    ['/a%20b', '/a%20b'],
    ['/caf\u00e9', '/caf%C3%A9'],
    ['/caf%c3%a9', '/caf%C3%A9'],
    ['/\u{1F600}.png', '/%F0%9F%98%80.png'],
    ['/a"b<c>', '/a%22b%3Cc%3E'],
    ['/a%3fb', '/a%3Fb'],
    ['/a%23b', '/a%23b'],
    // %2F and %25 stay escaped (upper-cased), and do not join the neighbouring escapes
    ['/a%2fb', '/a%2Fb'],
    ['/a%25b', '/a%25b'],
    ['/a%2541', '/a%2541'],
    ['/%40%2F%40', '/@%2F@'],
    // a stray % is escaped; bytes that are not UTF-8 stay escaped
    ['/100%', '/100%25'],
    ['/a%zz', '/a%25zz'],
    ['/a%ff', '/a%FF'],
    ['/a%c3', '/a%C3'],
    // a lone surrogate becomes U+FFFD
    ['/a\ud800b', '/a%EF%BF%BDb'],
  ])('%s → %s', (path, expected) => {
    expect(canonicalPath(path)).toBe(expected);
    expect(canonicalPath(expected)).toBe(expected);
  });
});

describe('pathWithoutQuery', () => {
  it.each([
    ['/a.jpg?w=400', '/a.jpg'],
    ['/a.jpg', '/a.jpg'],
    ['/a.jpg#x', '/a.jpg'],
    ['/?', '/'],
  ])('%s → %s', (target, path) => {
    expect(pathWithoutQuery(target)).toBe(path);
  });
});
