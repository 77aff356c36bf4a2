import { describe, expect, it } from 'vitest';
import type { StoredMeta } from '../../../src/blob/blob-store.js';
import type { EdgeCompression } from '../../../edge/compression.js';
import { requestUrl } from '../../../edge/app.js';
import { imageQueryNormalizer, primaryKey } from '../../../edge/cache-keys.js';
import { fastFields, fastFieldsOf, FastHits, firstPrimaryKey, sameMeta } from '../../../edge/fast-hit.js';
import { readHead } from '../../../src/serve/quick-head.js';

const T0 = Date.UTC(2026, 11, 7, 8, 0, 0);

function meta(over: Partial<StoredMeta> = {}): StoredMeta {
  return {
    version: 1,
    key: 'cdn.example/a.png',
    size: 3,
    status: 200,
    headers: [
      ['content-type', 'image/png'],
      ['cache-control', 'max-age=600'],
      ['etag', '"a1"'],
    ],
    requestTime: T0,
    responseTime: T0,
    storedAt: T0,
    sha256: 'ab'.repeat(32),
    tags: ['t1'],
    ...over,
  };
}

describe('sameMeta', () => {
  it('holds for equal copies (a disk index decodes the same record again) and fails on any field', () => {
    expect(sameMeta(meta(), meta())).toBe(true);
    expect(sameMeta(meta({ tags: undefined }), meta({ tags: undefined }))).toBe(true);
    const changed: Partial<StoredMeta>[] = [
      { key: 'cdn.example/b.png' },
      { size: 4 },
      { status: 203 },
      { version: 2 },
      { sha256: 'cd'.repeat(32) },
      { storedAt: T0 + 1 },
      { requestTime: T0 - 1 },
      { responseTime: T0 + 1 },
      { invalidated: true },
      { headers: [['content-type', 'image/png'], ['cache-control', 'max-age=601'], ['etag', '"a1"']] },
      { headers: [['content-type', 'image/png'], ['cache-control', 'max-age=600']] },
      { headers: [['content-type', 'image/png'], ['Cache-Control', 'max-age=600'], ['etag', '"a1"']] },
      { tags: ['t2'] },
      { tags: undefined },
    ];
    for (const c of changed) {
      expect(sameMeta(meta(), meta(c))).toBe(false);
      expect(sameMeta(meta(c), meta())).toBe(false);
    }
  });
});

describe('FastHits', () => {
  const hits = () =>
    new FastHits({
      servedBy: 'pop/node',
      cacheName: 'anycdn',
      now: () => T0 + 5_000,
      compression: { appliesTo: () => false } as unknown as EdgeCompression,
      reuseOf: (m) => ({ lifetimeMs: Number(/max-age=(\d+)/.exec(m.headers.find(([n]) => n === 'cache-control')![1])![1]) * 1000, reusable: true }),
      memoryBytes: { add() {} },
    });
  const answer = (f: FastHits, m: StoredMeta) => f.answer({ meta: m, data: Buffer.from('abc') }, 'GET', undefined, false, 0)!.reply;

  it('answers an equal metadata object met again under its key with the same header record (from its second hit lately on), and a changed one anew', () => {
    const f = hits();
    const once = answer(f, meta());
    expect(once.headers).toMatchObject({ 'content-type': 'image/png', etag: '"a1"', age: '5', 'cache-status': 'anycdn; hit; ttl=595', 'content-length': '3' });
    // A key hit once lately is not kept by key (most of a million objects' hits are first hits).
    const first = answer(f, meta());
    expect(first.headers).not.toBe(once.headers);
    expect(first.headers).toEqual(once.headers);
    // A new object saying the same: the template, and so the response head, is reused.
    expect(answer(f, meta()).headers).toBe(first.headers);
    // A refresh (new fields, new storedAt): a new template says so.
    const refreshed = answer(f, meta({ storedAt: T0 + 1000, headers: [['content-type', 'image/png'], ['cache-control', 'max-age=60'], ['etag', '"a2"']] }));
    expect(refreshed.headers).not.toBe(first.headers);
    expect(refreshed.headers).toMatchObject({ etag: '"a2"', 'cache-status': 'anycdn; hit; ttl=55' });
  });
});

describe('fastFieldsOf', () => {
  const front = (fields: string) => readHead(Buffer.from(`GET /a.png HTTP/1.1\r\n${fields}\r\n`, 'latin1'), 0)!.request;
  it.each([
    ['Host alone', 'Host: cdn.example\r\n', { host: 'cdn.example', ifNoneMatch: undefined }],
    ['a browser head', 'Host: cdn.example\r\nUser-Agent: Mozilla/5.0\r\nAccept: image/avif,*/*\r\nAccept-Encoding: gzip, br\r\nReferer: https://a.example/\r\nSec-Fetch-Dest: image\r\n', { host: 'cdn.example', ifNoneMatch: undefined }],
    ['If-None-Match', 'host: cdn.example\r\nif-none-match: "x"\r\n', { host: 'cdn.example', ifNoneMatch: '"x"' }],
    ['Cache-Control', 'Host: cdn.example\r\nCache-Control: no-cache\r\n', undefined],
    ['Pragma in capitals', 'Host: cdn.example\r\nPRAGMA: no-cache\r\n', undefined],
    ['Range', 'Host: cdn.example\r\nRange: bytes=0-1\r\n', undefined],
    ['Authorization', 'Host: cdn.example\r\nAuthorization: Bearer x\r\n', undefined],
    ['If-Modified-Since', 'Host: cdn.example\r\nIf-Modified-Since: Mon, 07 Dec 2026 08:00:00 GMT\r\n', undefined],
    ['If-Match', 'Host: cdn.example\r\nIf-Match: "x"\r\n', undefined],
    ['If-Unmodified-Since', 'Host: cdn.example\r\nIf-Unmodified-Since: Mon, 07 Dec 2026 08:00:00 GMT\r\n', undefined],
    ['If-Range', 'Host: cdn.example\r\nIf-Range: "x"\r\n', undefined],
  ])('answers for a request the quick front read as fastFields does from its field list: %s', (_what, fields, expected) => {
    const req = front(fields);
    expect(fastFieldsOf(req)).toEqual(expected);
    expect(fastFields(req.rawHeaders)).toEqual(expected);
  });

  it('reads a request without field() (Node\'s, an HTTP/2 stream) from its field list', () => {
    expect(fastFieldsOf({ rawHeaders: ['Host', 'a', 'If-None-Match', '"x"'], headers: {} })).toEqual({ host: 'a', ifNoneMatch: '"x"' });
    expect(fastFieldsOf({ rawHeaders: ['Host', 'a', 'Range', 'bytes=0-1'], headers: {} })).toBeUndefined();
  });
});

describe('firstPrimaryKey', () => {
  const normalize = imageQueryNormalizer({ maxOutputDimension: 4096 });

  it('makes the key the full path makes (requestUrl, then primaryKey) for a URL not seen yet', () => {
    const cases: [string, string][] = [
      ['cdn.example', '/a/b.png'],
      ['CDN.Example:8080', '/a/%7e/../b.png'],
      ['cdn.example', '/img.jpg?w=400&fmt=webp'],
      ['cdn.example', '/img.jpg?fmt=webp&w=400'],
      ['cdn.example', '/file.js?v=3+4'],
      ['[::1]:8080', '//double/slash'],
      ['', '/no-host'],
      // Plain paths (no URL parsed): trailing dot, default port, an upper-case host.
      ['CDN.example.:443', '/cpu/1-0/12-2048.bin'],
      ['cdn.example:80', "/a-b_c~d!$&'()*+,;=:@/e.txt"],
      ['cdn.example', '/'],
    ];
    for (const [host, target] of cases) {
      expect(firstPrimaryKey(host, target, normalize)).toBe(primaryKey(host, requestUrl(target, host === '' ? undefined : host), normalize));
    }
  });

  it('leaves to the full path what it answers with a 400, and absolute-form targets', () => {
    expect(firstPrimaryKey('cdn.example', '/img.jpg?w=abc', normalize)).toBeUndefined();
    expect(firstPrimaryKey('h/p', '/q', normalize)).toBeUndefined();
    expect(firstPrimaryKey('u@h', '/q', normalize)).toBeUndefined();
    expect(firstPrimaryKey('cdn.example', 'http://cdn.example/a', normalize)).toBeUndefined();
  });
});
