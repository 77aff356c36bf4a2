/**
 * The AssetStore contract: one suite every backend runs (memory in test/unit/store, filesystem in
 * test/integration/store). It pins exact bytes, exact metadata, sniffed types, ranges, replace and
 * delete, the maxBytes limit (413, old version intact) and variants keyed by source hash.
 * `makeStore` must give a fresh, empty store using its default clock.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AssetMeta, AssetStore } from '../../origin/store/asset-store.js';
import { CdnError } from '../../src/errors.js';
import { pseudoRandomBytes as xorshiftBytes } from '../support/pseudo-random.js';

export type MakeAssetStore = () => Promise<{ store: AssetStore; cleanup: () => Promise<void> }>;

const MAX = 16 * 1024 * 1024;
const T = 1_700_000_123_456;
const T_SECONDS = 1_700_000_123_000;

export const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
export const ALL_BYTES_SHA = '40aff2e9d2d8922e47afd4648e6967497158785fbd1da870e7110266bf944880';
const EMPTY_SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const CSS = Buffer.from('body { color: red; }\n');
const CSS_SHA = '9767e91e9d4b0334e59a1d389e9801bc6a2c5c4a5500a3c2c7915687965b2c16';
const V1 = Buffer.from('version one\n');
const V1_SHA = 'dbcdb1f658e3f2220d1c09474ff99a91b2b19a0bf81e6cde1a3814d5bc35c6d9';
const V2 = Buffer.from('version two, longer\n');
const V2_SHA = 'ef9a1e40cca329a5df259547dfd70c843e9a508270771089b33ea8addf023b3b';
/** PNG signature and IHDR of a 1×1 RGBA image. */
export const PNG_HEAD = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');
/** JPEG SOI and JFIF APP0. */
export const JPEG_HEAD = Buffer.from('ffd8ffe000104a46494600010100000100010000', 'hex');
const SVG = Buffer.from('\ufeff<?xml version="1.0"?>\n<!-- logo -->\n<svg xmlns="http://www.w3.org/2000/svg"/>\n');
const VARIANT_DATA = Buffer.from('RIFF\x24\x00\x00\x00WEBPVP8 fake variant bytes', 'latin1');
const VARIANT_SHA = '090bc175eaaf649d678088d2e659b896345425c71bdbf7c2d7029cfc2a1f1e1f';
const WEBP_INFO = { contentType: 'image/webp', width: 400, height: 300 };

/** An upload body yielding the given chunks. */
export async function* bodyOf(...chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield chunk;
}

/** An upload body yielding `first`, then failing as a dropped client connection would. */
export async function* failingBody(first: Uint8Array): AsyncGenerator<Uint8Array> {
  yield first;
  throw new Error('socket hang up');
}

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export async function expectCdnError(
  promise: Promise<unknown>,
  expected: { code: string; status: number; source: CdnError['source'] },
): Promise<CdnError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CdnError);
  const cdnError = err as CdnError;
  expect({ code: cdnError.code, status: cdnError.status, source: cdnError.source }).toEqual(expected);
  return cdnError;
}

/** Deterministic pseudo-random bytes, so large-file tests are reproducible. */
export function pseudoRandomBytes(length: number, seed = 0x2545f491): Buffer {
  return xorshiftBytes(length, seed);
}

function chunksOf(data: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) chunks.push(data.subarray(at, at + size));
  return chunks;
}

function etag(sha: string): string {
  return `"${sha.slice(0, 32)}"`;
}

export function assetStoreContract(name: string, makeStore: MakeAssetStore): void {
  describe(`AssetStore contract: ${name}`, () => {
    let store: AssetStore;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
    });
    afterEach(async () => {
      await cleanup();
    });

    async function expectContent(path: string, data: Buffer, meta: AssetMeta): Promise<void> {
      expect(await store.head(path)).toEqual(meta);
      const whole = await store.readBuffer(path);
      expect(whole?.meta).toEqual(meta);
      expect(whole?.data.equals(data)).toBe(true);
      expect((await store.readVersion(meta))?.equals(data)).toBe(true);
      const streamed = await store.read(path);
      expect(streamed?.meta).toEqual(meta);
      expect((await collect(streamed!.body)).equals(data)).toBe(true);
    }

    describe('put and read', () => {
      it('stores all 256 byte values byte-exact with exact metadata', async () => {
        const meta = await store.put('bin/all-bytes.bin', bodyOf(ALL_BYTES.subarray(0, 100), ALL_BYTES.subarray(100)), { maxBytes: MAX, now: T });
        expect(meta).toEqual({
          version: 1,
          path: 'bin/all-bytes.bin',
          contentType: 'application/octet-stream',
          size: 256,
          sha256: ALL_BYTES_SHA,
          etag: '"40aff2e9d2d8922e47afd4648e696749"',
          lastModified: T_SECONDS,
          tags: [],
        });
        expect('cacheControl' in meta).toBe(false);
        await expectContent('bin/all-bytes.bin', ALL_BYTES, meta);
      });

      it('stores a 0-byte file', async () => {
        const meta = await store.put('empty.txt', bodyOf(), { maxBytes: MAX, now: T });
        expect(meta).toMatchObject({ size: 0, sha256: EMPTY_SHA, etag: etag(EMPTY_SHA), contentType: 'text/plain; charset=utf-8' });
        await expectContent('empty.txt', Buffer.alloc(0), meta);
      });

      it('stores a 3 MiB file byte-exact, whatever the chunking', async () => {
        const data = pseudoRandomBytes(3 * 1024 * 1024);
        const meta = await store.put('big/random.bin', bodyOf(...chunksOf(data, 65_537)), { maxBytes: MAX, now: T });
        expect(meta.size).toBe(3 * 1024 * 1024);
        expect(meta.sha256).toBe(createHash('sha256').update(data).digest('hex'));
        await expectContent('big/random.bin', data, meta);
      });

      it('keeps the known hash, ETag, clock time, Cache-Control and tags', async () => {
        const tags = ['css', 'site'];
        const meta = await store.put('css/site.css', bodyOf(CSS), { maxBytes: MAX, now: T, cacheControl: 'public, max-age=31536000, immutable', tags });
        tags.push('mutated after put');
        const expected = {
          version: 1,
          path: 'css/site.css',
          contentType: 'text/css; charset=utf-8',
          size: CSS.length,
          sha256: CSS_SHA,
          etag: '"9767e91e9d4b0334e59a1d389e9801bc"',
          lastModified: T_SECONDS,
          cacheControl: 'public, max-age=31536000, immutable',
          tags: ['css', 'site'],
        };
        expect(meta).toEqual(expected);
        expect(await store.head('css/site.css')).toEqual(expected);
      });

      it('takes the time from the store clock in whole seconds when `now` is not given', async () => {
        const before = Date.now();
        const meta = await store.put('clock.txt', bodyOf(V1), { maxBytes: MAX });
        expect(meta.lastModified % 1000).toBe(0);
        expect(meta.lastModified).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
        expect(meta.lastModified).toBeLessThanOrEqual(Date.now());
      });

      it.each([
        ['img/pixel.png', PNG_HEAD, 'image/png'],
        ['img/photo.jpg', JPEG_HEAD, 'image/jpeg'],
        ['img/logo.svg', SVG, 'image/svg+xml'],
        ['css/a.css', CSS, 'text/css; charset=utf-8'],
        ['fake.jpg', Buffer.from('just some text\n'), 'text/plain; charset=utf-8'],
        ['misnamed.txt', PNG_HEAD, 'image/png'],
      ])('sniffs %s as %s', async (path, bytes, contentType) => {
        const meta = await store.put(path, bodyOf(bytes), { maxBytes: MAX });
        expect(meta.contentType).toBe(contentType);
        expect((await store.head(path))?.contentType).toBe(contentType);
      });
    });

    describe('ranges', () => {
      it.each([
        ['first byte', 0, 0],
        ['last byte', 255, 255],
        ['middle', 100, 199],
        ['whole', 0, 255],
      ])('reads only the %s', async (_label, start, end) => {
        const meta = await store.put('bin/all-bytes.bin', bodyOf(ALL_BYTES), { maxBytes: MAX });
        const result = await store.read('bin/all-bytes.bin', { start, end });
        expect(result?.meta).toEqual(meta);
        expect(await collect(result!.body)).toEqual(ALL_BYTES.subarray(start, end + 1));
      });

      it('refuses an unsatisfiable range with 416', async () => {
        await store.put('bin/all-bytes.bin', bodyOf(ALL_BYTES), { maxBytes: MAX });
        await expectCdnError(store.read('bin/all-bytes.bin', { start: 10, end: 256 }), { code: 'range_not_satisfiable', status: 416, source: 'client' });
      });
    });

    describe('replace and delete', () => {
      it('replacing changes the ETag and the content', async () => {
        const first = await store.put('doc.txt', bodyOf(V1), { maxBytes: MAX, now: T });
        const second = await store.put('doc.txt', bodyOf(V2), { maxBytes: MAX, now: T + 5000 });
        expect(first.etag).toBe(etag(V1_SHA));
        expect(second).toMatchObject({ sha256: V2_SHA, etag: etag(V2_SHA), size: V2.length, lastModified: T_SECONDS + 5000 });
        await expectContent('doc.txt', V2, second);
      });

      it('the same bytes again keep the ETag and take the new time', async () => {
        await store.put('doc.txt', bodyOf(V1), { maxBytes: MAX, now: T });
        const again = await store.put('doc.txt', bodyOf(V1), { maxBytes: MAX, now: T + 60_000 });
        expect(again).toMatchObject({ etag: etag(V1_SHA), lastModified: T_SECONDS + 60_000 });
        await expectContent('doc.txt', V1, again);
      });

      it('keepUnchanged: the same bytes, Cache-Control and tags keep the current version as it is', async () => {
        const first = await store.put('doc.txt', bodyOf(V1), { maxBytes: MAX, now: T, cacheControl: 'max-age=60', tags: ['a', 'b'] });
        const again = await store.put('doc.txt', bodyOf(V1), { maxBytes: MAX, now: T + 60_000, cacheControl: 'max-age=60', tags: ['a', 'b'], keepUnchanged: true });
        expect(again).toEqual(first);
        await expectContent('doc.txt', V1, first);
      });

      it.each([
        ['other bytes', V2, 'max-age=60', ['a', 'b']],
        ['another Cache-Control', V1, 'max-age=61', ['a', 'b']],
        ['no Cache-Control', V1, undefined, ['a', 'b']],
        ['other tags', V1, 'max-age=60', ['a']],
        ['the tags in another order', V1, 'max-age=60', ['b', 'a']],
      ])('keepUnchanged: %s make a new version', async (_name, bytes, cacheControl, tags) => {
        await store.put('doc.txt', bodyOf(V1), { maxBytes: MAX, now: T, cacheControl: 'max-age=60', tags: ['a', 'b'] });
        const next = await store.put('doc.txt', bodyOf(bytes), { maxBytes: MAX, now: T + 60_000, cacheControl, tags, keepUnchanged: true });
        expect(next.lastModified).toBe(T_SECONDS + 60_000);
        expect(next.tags).toEqual(tags);
        expect(next.cacheControl).toBe(cacheControl);
        await expectContent('doc.txt', bytes, next);
      });

      it('keepUnchanged still runs the precondition', async () => {
        await store.put('doc.txt', bodyOf(V1), { maxBytes: MAX });
        const refuse = (): void => {
          throw new CdnError('precondition_failed', 'client', 'no', { status: 412 });
        };
        await expectCdnError(store.put('doc.txt', bodyOf(V1), { maxBytes: MAX, keepUnchanged: true, precondition: refuse }), { code: 'precondition_failed', status: 412, source: 'client' });
      });

      it('a reader opened before a replace still gets the old bytes', async () => {
        await store.put('doc.txt', bodyOf(V1), { maxBytes: MAX });
        const opened = await store.read('doc.txt');
        await store.put('doc.txt', bodyOf(V2), { maxBytes: MAX });
        expect((await collect(opened!.body)).equals(V1)).toBe(true);
      });

      it('delete returns the metadata, then the path is absent', async () => {
        const meta = await store.put('dir/a.txt', bodyOf(V1), { maxBytes: MAX, now: T });
        const sibling = await store.put('dir/b.txt', bodyOf(V2), { maxBytes: MAX, now: T });
        expect(await store.delete('dir/a.txt')).toEqual(meta);
        expect(await store.head('dir/a.txt')).toBeUndefined();
        expect(await store.read('dir/a.txt')).toBeUndefined();
        expect(await store.readBuffer('dir/a.txt')).toBeUndefined();
        expect(await store.delete('dir/a.txt')).toBeUndefined();
        await expectContent('dir/b.txt', V2, sibling);
      });

      it('readVersion gives the bytes of the version a metadata describes, never another version\'s', async () => {
        const first = await store.put('doc.txt', bodyOf(V1), { maxBytes: MAX });
        const second = await store.put('doc.txt', bodyOf(V2), { maxBytes: MAX });
        expect((await store.readVersion(second))?.equals(V2)).toBe(true);
        // A backend may keep a replaced or deleted version's bytes (content-addressed) or drop them.
        const replaced = await store.readVersion(first);
        expect(replaced === undefined || replaced.equals(V1)).toBe(true);
        await store.delete('doc.txt');
        const deleted = await store.readVersion(second);
        expect(deleted === undefined || deleted.equals(V2)).toBe(true);
        expect(await store.readVersion({ ...second, path: 'never/stored.txt', sha256: EMPTY_SHA, etag: etag(EMPTY_SHA), size: 0 })).toBeUndefined();
      });

      it('the same bytes under two paths: deleting one leaves the other', async () => {
        await store.put('one.txt', bodyOf(V1), { maxBytes: MAX });
        const two = await store.put('two.txt', bodyOf(V1), { maxBytes: MAX });
        await store.delete('one.txt');
        await expectContent('two.txt', V1, two);
      });

      it('a missing path is undefined, not an error', async () => {
        expect(await store.head('nope/missing.png')).toBeUndefined();
        expect(await store.read('nope/missing.png')).toBeUndefined();
        expect(await store.read('nope/missing.png', { start: 0, end: 0 })).toBeUndefined();
        expect(await store.readBuffer('nope/missing.png')).toBeUndefined();
        expect(await store.delete('nope/missing.png')).toBeUndefined();
      });

      it.each(['../x', 'a//b', 'a/./b', '_cdn/x', '/abs', 'a\\b', 'a\u0000b', ''])('refuses the invalid path %j', async (path) => {
        await expectCdnError(store.head(path), { code: 'invalid_path', status: 400, source: 'client' });
        await expectCdnError(store.put(path, bodyOf(V1), { maxBytes: MAX }), { code: 'invalid_path', status: 400, source: 'client' });
      });
    });

    describe('list', () => {
      const PATHS = ['a-b', 'a/b', 'a/b/c', 'a', 'b.json/x', 'b.json', 'b/\u00e9.txt', 'b/z.txt', 'b/\u{1F600}.png', 'photos/cat.jpg', 'photos/2024/dog.jpg', 'photoshop.psd'];
      /** Path order: segment by segment, by code point; a path before what is under it. */
      const ORDER = ['a', 'a/b', 'a/b/c', 'a-b', 'b/z.txt', 'b/\u00e9.txt', 'b/\u{1F600}.png', 'b.json', 'b.json/x', 'photos/2024/dog.jpg', 'photos/cat.jpg', 'photoshop.psd'];

      async function putAll(): Promise<void> {
        for (const [i, path] of PATHS.entries()) await store.put(path, bodyOf(Buffer.from(`file ${i}\n`)), { maxBytes: MAX, now: T, tags: [`t${i}`] });
      }

      async function all(options: { prefix?: string; after?: string }, limit: number): Promise<string[][]> {
        const pages: string[][] = [];
        let after = options.after;
        for (let i = 0; i < 50; i++) {
          const page = await store.list({ ...options, after, limit });
          pages.push(page.assets.map((a) => a.path));
          if (page.next === undefined) return pages;
          expect(page.next).toBe(page.assets.at(-1)!.path);
          after = page.next;
        }
        throw new Error('listing did not end');
      }

      it('lists every asset in path order with its metadata', async () => {
        await putAll();
        const listing = await store.list({ limit: 100 });
        expect(listing.next).toBeUndefined();
        expect(listing.assets.map((a) => a.path)).toEqual(ORDER);
        expect(listing.assets[0]).toEqual(await store.head('a'));
        expect(listing.assets[0]!.tags).toEqual(['t3']);
      });

      it('pages through with after and limit, the last page saying no more', async () => {
        await putAll();
        expect(await all({}, 5)).toEqual([ORDER.slice(0, 5), ORDER.slice(5, 10), ORDER.slice(10)]);
        expect(await all({}, 6)).toEqual([ORDER.slice(0, 6), ORDER.slice(6)]);
        expect((await store.list({ limit: 12 })).next).toBeUndefined();
        expect(await all({ after: 'b.json' }, 100)).toEqual([ORDER.slice(8)]);
        expect(await all({ after: 'a/b/b' }, 100)).toEqual([ORDER.slice(2)]);
        expect(await all({ after: 'zzz' }, 100)).toEqual([[]]);
      });

      it('lists only what starts with the prefix', async () => {
        await putAll();
        expect(await all({ prefix: 'photos/' }, 1)).toEqual([['photos/2024/dog.jpg'], ['photos/cat.jpg']]);
        expect(await all({ prefix: 'photo' }, 100)).toEqual([['photos/2024/dog.jpg', 'photos/cat.jpg', 'photoshop.psd']]);
        expect(await all({ prefix: 'a/' }, 100)).toEqual([['a/b', 'a/b/c']]);
        expect(await all({ prefix: 'a/b' }, 100)).toEqual([['a/b', 'a/b/c']]);
        expect(await all({ prefix: 'b/', after: 'b/z.txt' }, 100)).toEqual([['b/\u00e9.txt', 'b/\u{1F600}.png']]);
        expect(await all({ prefix: 'nothing/' }, 100)).toEqual([[]]);
      });

      it('leaves out deleted assets, and an empty store lists nothing', async () => {
        expect(await store.list({ limit: 10 })).toEqual({ assets: [], next: undefined });
        await putAll();
        await store.delete('a/b');
        await store.delete('photos/cat.jpg');
        expect((await store.list({ limit: 100 })).assets.map((a) => a.path)).toEqual(ORDER.filter((p) => p !== 'a/b' && p !== 'photos/cat.jpg'));
      });
    });

    describe('maxBytes', () => {
      it('refuses a larger body with 413 and keeps the previous version', async () => {
        const v1 = await store.put('limited.bin', bodyOf(V1), { maxBytes: V1.length });
        await expectCdnError(store.put('limited.bin', bodyOf(V2), { maxBytes: V1.length }), { code: 'payload_too_large', status: 413, source: 'client' });
        await expectContent('limited.bin', V1, v1);
      });

      it('stores nothing for a new path over the limit', async () => {
        await expectCdnError(store.put('new.bin', bodyOf(ALL_BYTES), { maxBytes: 255 }), { code: 'payload_too_large', status: 413, source: 'client' });
        expect(await store.head('new.bin')).toBeUndefined();
      });

      it('stops reading the body as soon as it passes the limit', async () => {
        let pulled = 0;
        let closed = false;
        async function* body(): AsyncGenerator<Uint8Array> {
          try {
            for (;;) {
              pulled++;
              yield Buffer.alloc(8, 1);
            }
          } finally {
            closed = true;
          }
        }
        await expectCdnError(store.put('endless.bin', body(), { maxBytes: 20 }), { code: 'payload_too_large', status: 413, source: 'client' });
        expect(pulled).toBe(3);
        expect(closed).toBe(true);
      });

      it('a body that fails mid-way keeps the previous version', async () => {
        const v1 = await store.put('flaky.txt', bodyOf(V1), { maxBytes: MAX });
        await expectCdnError(store.put('flaky.txt', failingBody(V2), { maxBytes: MAX }), { code: 'body_read_failed', status: 400, source: 'client' });
        await expectContent('flaky.txt', V1, v1);
      });
    });

    describe('variants', () => {
      it('round-trips a variant with exact metadata', async () => {
        const source = await store.put('img/pixel.png', bodyOf(PNG_HEAD), { maxBytes: MAX });
        const meta = await store.putVariant(source.sha256, 'fmt=webp&w=400', VARIANT_DATA, WEBP_INFO);
        expect(meta).toEqual({
          version: 1,
          sourceSha256: source.sha256,
          variant: 'fmt=webp&w=400',
          contentType: 'image/webp',
          size: VARIANT_DATA.length,
          sha256: VARIANT_SHA,
          etag: etag(VARIANT_SHA),
          width: 400,
          height: 300,
          createdAt: expect.any(Number),
        });
        expect(meta.createdAt % 1000).toBe(0);
        const got = await store.getVariant(source.sha256, 'fmt=webp&w=400');
        expect(got?.meta).toEqual(meta);
        expect(got?.data.equals(VARIANT_DATA)).toBe(true);
      });

      it('keys variants by source hash and exact name', async () => {
        const a = await store.put('a.png', bodyOf(PNG_HEAD), { maxBytes: MAX });
        const b = await store.put('b.jpg', bodyOf(JPEG_HEAD), { maxBytes: MAX });
        const names = ['fmt=webp&w=400', 'fmt=webp&w=40', 'fmt=avif&w=400', '..', 'x.json', 'a/b'];
        for (const [i, variant] of names.entries()) {
          await store.putVariant(a.sha256, variant, Buffer.from(`a ${i}`), WEBP_INFO);
        }
        await store.putVariant(b.sha256, 'fmt=webp&w=400', Buffer.from('b 0'), WEBP_INFO);
        for (const [i, variant] of names.entries()) {
          expect((await store.getVariant(a.sha256, variant))?.data.toString()).toBe(`a ${i}`);
        }
        expect((await store.getVariant(b.sha256, 'fmt=webp&w=400'))?.data.toString()).toBe('b 0');
        expect(await store.getVariant(b.sha256, 'fmt=webp&w=40')).toBeUndefined();
        expect(await store.getVariant(V1_SHA, 'fmt=webp&w=400')).toBeUndefined();
      });

      it('a second putVariant of the same key replaces it', async () => {
        const source = await store.put('a.png', bodyOf(PNG_HEAD), { maxBytes: MAX });
        await store.putVariant(source.sha256, 'fmt=png', Buffer.from('first'), WEBP_INFO);
        await store.putVariant(source.sha256, 'fmt=png', Buffer.from('second'), WEBP_INFO);
        expect((await store.getVariant(source.sha256, 'fmt=png'))?.data.toString()).toBe('second');
      });

      it('replacing the source makes the old variants unreachable', async () => {
        const old = await store.put('img/photo.jpg', bodyOf(JPEG_HEAD), { maxBytes: MAX });
        await store.putVariant(old.sha256, 'fmt=webp&w=400', VARIANT_DATA, WEBP_INFO);
        const replaced = await store.put('img/photo.jpg', bodyOf(PNG_HEAD), { maxBytes: MAX });
        expect(await store.getVariant(old.sha256, 'fmt=webp&w=400')).toBeUndefined();
        expect(await store.getVariant(replaced.sha256, 'fmt=webp&w=400')).toBeUndefined();
      });

      it('deleting the source makes its variants unreachable', async () => {
        const source = await store.put('img/photo.jpg', bodyOf(JPEG_HEAD), { maxBytes: MAX });
        await store.putVariant(source.sha256, 'fmt=webp&w=400', VARIANT_DATA, WEBP_INFO);
        await store.delete('img/photo.jpg');
        expect(await store.getVariant(source.sha256, 'fmt=webp&w=400')).toBeUndefined();
      });
    });
  });
}
