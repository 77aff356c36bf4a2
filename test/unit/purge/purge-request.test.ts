import { describe, expect, it } from 'vitest';
import { httpErrorOf } from '../../../src/errors.js';
import { parsePurgeBody, type Purge } from '../../../src/purge/purge-request.js';

const LIMITS = { maxEntries: 4 };
const none: Purge = { urls: [], prefixes: [], tags: [], all: false, soft: false };

function refusal(body: string): unknown {
  try {
    parsePurgeBody(body, LIMITS);
  } catch (err) {
    const e = httpErrorOf(err);
    return { status: e.status, body: e.body };
  }
  throw new Error('expected a refusal');
}

describe('parsePurgeBody: accepted', () => {
  it.each<[string, string, Partial<Purge>]>([
    ['a path URL', '{"urls":["/photos/cat.jpg"]}', { urls: [{ path: '/photos/cat.jpg' }] }],
    ['a URL without its query', '{"urls":["/a.jpg?w=400#top"]}', { urls: [{ path: '/a.jpg' }] }],
    ['an absolute URL: host normalised, default port dropped', '{"urls":["HTTPS://CDN.Example:443/a.jpg?v=1"]}', { urls: [{ host: 'cdn.example', path: '/a.jpg' }] }],
    ['an absolute URL with another port', '{"urls":["http://cdn.example:8080/a.jpg"]}', { urls: [{ host: 'cdn.example:8080', path: '/a.jpg' }] }],
    ['an absolute URL without a path', '{"urls":["https://cdn.example"]}', { urls: [{ host: 'cdn.example', path: '/' }] }],
    ['an IPv6 host', '{"urls":["http://[::1]:8080/x"]}', { urls: [{ host: '[::1]:8080', path: '/x' }] }],
    ['dot segments resolved', '{"urls":["/a/./b/../c.jpg"]}', { urls: [{ path: '/a/c.jpg' }] }],
    ['the canonical spelling', '{"urls":["/a%40b%20c.jpg","/caf\u00e9"]}', { urls: [{ path: '/a@b%20c.jpg' }, { path: '/caf%C3%A9' }] }],
    ['duplicates once', '{"urls":["/a","/a?x=1","/%61"],"tags":["t"]}', { urls: [{ path: '/a' }], tags: ['t'] }],
    ['duplicate tags once', '{"tags":["t","u","t"]}', { tags: ['t', 'u'] }],
    ['the same path on a host and on every host: both', '{"urls":["/a","https://h/a"]}', { urls: [{ path: '/a' }, { host: 'h', path: '/a' }] }],
    ['a prefix loses its trailing slash', '{"prefixes":["/photos/"]}', { prefixes: [{ path: '/photos' }] }],
    ['the root prefix', '{"prefixes":["/"]}', { prefixes: [{ path: '/' }] }],
    ['a host prefix', '{"prefixes":["https://cdn.example/"]}', { prefixes: [{ host: 'cdn.example', path: '/' }] }],
    ['tags, with a space inside', '{"tags":["cats","/404.html","group one"]}', { tags: ['cats', '/404.html', 'group one'] }],
    ['all', '{"all":true}', { all: true }],
    ['soft', '{"tags":["x"],"soft":true,"all":false}', { tags: ['x'], soft: true }],
    ['empty lists next to all', '{"urls":[],"prefixes":[],"tags":[],"all":true,"soft":false}', { all: true }],
    ['exactly the limit', '{"urls":["/a","/b"],"prefixes":["/c"],"tags":["d"]}', { urls: [{ path: '/a' }, { path: '/b' }], prefixes: [{ path: '/c' }], tags: ['d'] }],
  ])('%s', (_name, body, expected) => {
    expect(parsePurgeBody(body, LIMITS)).toEqual({ ...none, ...expected });
  });
});

describe('parsePurgeBody: refused with a 400 naming the problem', () => {
  const row = (error: string, field: string, message: string): unknown => ({ status: 400, body: { error, message, field } });
  it.each<[string, string, unknown]>([
    ['malformed JSON', '{"urls":[', row('invalid_json', 'body', 'the body is not valid JSON; expected an object such as {"urls":["/photos/cat.jpg"]}')],
    ['an empty body', '', row('invalid_json', 'body', 'the body is not valid JSON; expected an object such as {"urls":["/photos/cat.jpg"]}')],
    ['an array', '["/a"]', row('invalid_purge', 'body', 'the body must be a JSON object such as {"urls":["/photos/cat.jpg"]}')],
    ['null', 'null', row('invalid_purge', 'body', 'the body must be a JSON object such as {"urls":["/photos/cat.jpg"]}')],
    ['an empty purge', '{}', row('empty_purge', 'body', 'nothing to purge: give urls, prefixes or tags, or "all": true')],
    ['empty lists', '{"urls":[],"tags":[],"all":false}', row('empty_purge', 'body', 'nothing to purge: give urls, prefixes or tags, or "all": true')],
    ['soft alone', '{"soft":true}', row('empty_purge', 'body', 'nothing to purge: give urls, prefixes or tags, or "all": true')],
    ['an unknown field', '{"url":["/a"]}', row('invalid_purge', 'url', 'unknown field "url"; expected urls, prefixes, tags, all, soft')],
    ['urls not a list', '{"urls":"/a"}', row('invalid_purge', 'urls', 'urls must be an array of strings')],
    ['a URL not a string', '{"urls":[42]}', row('invalid_purge', 'urls', 'urls must be an array of strings')],
    ['tags not a list', '{"tags":{"a":1}}', row('invalid_purge', 'tags', 'tags must be an array of strings')],
    ['all not a boolean', '{"all":"yes"}', row('invalid_purge', 'all', 'all must be true or false')],
    ['soft not a boolean', '{"urls":["/a"],"soft":1}', row('invalid_purge', 'soft', 'soft must be true or false')],
    ['too many entries', '{"urls":["/a","/b"],"prefixes":["/c"],"tags":["d","e"]}', row('too_many_entries', 'body', 'a purge may hold at most 4 urls, prefixes and tags together, got 5: split it')],
    ['a relative URL', '{"urls":["photos/cat.jpg"]}', row('invalid_purge', 'urls[0]', 'urls[0]: "photos/cat.jpg" is neither a path starting with / nor an http(s) URL; a url looks like /photos/cat.jpg or https://cdn.example/photos/cat.jpg')],
    ['a scheme-relative URL', '{"urls":["/a","//cdn.example/a"]}', row('invalid_purge', 'urls[1]', 'urls[1]: "//cdn.example/a" is neither a path starting with / nor an http(s) URL; a url looks like /photos/cat.jpg or https://cdn.example/photos/cat.jpg')],
    ['another scheme', '{"urls":["ftp://cdn.example/a"]}', row('invalid_purge', 'urls[0]', 'urls[0]: "ftp://cdn.example/a" is neither a path starting with / nor an http(s) URL; a url looks like /photos/cat.jpg or https://cdn.example/photos/cat.jpg')],
    ['an empty URL', '{"urls":[""]}', row('invalid_purge', 'urls[0]', 'urls[0]: "" is neither a path starting with / nor an http(s) URL; a url looks like /photos/cat.jpg or https://cdn.example/photos/cat.jpg')],
    ['an http URL without a host', '{"urls":["https:///a"]}', row('invalid_purge', 'urls[0]', 'urls[0]: "https:///a" is neither a path starting with / nor an http(s) URL; a url looks like /photos/cat.jpg or https://cdn.example/photos/cat.jpg')],
    ['a bad host', '{"prefixes":["http://a b/"]}', row('invalid_purge', 'prefixes[0]', 'prefixes[0]: "http://a b/" holds a space or control character: percent-encode it')],
    ['an unparseable host', '{"urls":["http://[zz]/a"]}', row('invalid_purge', 'urls[0]', 'urls[0]: "http://[zz]/a" is neither a path starting with / nor an http(s) URL; a url looks like /photos/cat.jpg or https://cdn.example/photos/cat.jpg')],
    ['a user name', '{"urls":["https://me:pw@cdn.example/a"]}', row('invalid_purge', 'urls[0]', 'urls[0]: "https://me:pw@cdn.example/a" holds a user name: give the host alone')],
    ['a control character', '{"urls":["/a\\nb"]}', row('invalid_purge', 'urls[0]', 'urls[0]: "/a\\nb" holds a space or control character: percent-encode it')],
    ['a prefix with a query', '{"prefixes":["/photos/?x=1"]}', row('invalid_purge', 'prefixes[0]', 'prefixes[0]: "/photos/?x=1": a prefix is a path, without a query')],
    ['a prefix that is not a path', '{"prefixes":["photos"]}', row('invalid_purge', 'prefixes[0]', 'prefixes[0]: "photos" is neither a path starting with / nor an http(s) URL; a prefix looks like /photos/ or https://cdn.example/photos/')],
    ['a URL too long', JSON.stringify({ urls: ['/' + 'a'.repeat(2048)] }), row('invalid_purge', 'urls[0]', 'urls[0]: longer than 2048 characters')],
    ['an empty tag', '{"tags":[""]}', row('invalid_purge', 'tags[0]', 'tags[0]: "" is not a tag: 1–256 printable ASCII characters, not starting or ending with a space')],
    ['a tag with a leading space', '{"tags":["ok"," x"]}', row('invalid_purge', 'tags[1]', 'tags[1]: " x" is not a tag: 1–256 printable ASCII characters, not starting or ending with a space')],
    ['a non-ASCII tag', '{"tags":["ch\u00e2t"]}', row('invalid_purge', 'tags[0]', 'tags[0]: "ch\u00e2t" is not a tag: 1–256 printable ASCII characters, not starting or ending with a space')],
    ['a tag too long', JSON.stringify({ tags: ['t'.repeat(257)] }), row('invalid_purge', 'tags[0]', `tags[0]: "${'t'.repeat(200)}" is not a tag: 1–256 printable ASCII characters, not starting or ending with a space`)],
  ])('%s', (_name, body, expected) => {
    expect(refusal(body)).toEqual(expected);
  });
});
