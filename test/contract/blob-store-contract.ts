/**
 * The one contract every BlobStore implementation (memory, disk, tiered) must pass. Each test
 * builds a fresh store through `make`, with the byte limits it needs, and asserts exact bytes,
 * metadata and stats. With `reopen`, persistence is checked too.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlobEntry, BlobStore, ByteRange, CommitMeta } from '../../src/blob/blob-store.js';
import { isCdnError } from '../../src/errors.js';
import { pseudoRandomBytes } from '../support/pseudo-random.js';

export interface ContractLimits {
  maxBytes: number;
  maxEntrySize: number;
}

export interface BlobStoreFixture {
  store: BlobStore;
  /** Close the current store and open a new one over the same storage. */
  reopen?: () => Promise<BlobStore>;
  /** Close whatever is open and remove the storage. */
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;
const DEFAULT_LIMITS: ContractLimits = { maxBytes: 32 * MiB, maxEntrySize: 8 * MiB };

/** Deterministic pseudo-random bytes, so failures are reproducible. */
export function pattern(size: number, seed = 1): Buffer {
  return pseudoRandomBytes(size, seed);
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function commitMeta(key: string, size: number, extra: Partial<CommitMeta> = {}): CommitMeta {
  return {
    key,
    size,
    status: 200,
    headers: [
      ['content-type', 'image/jpeg'],
      ['etag', '"abc123"'],
      ['cache-control', 'public, max-age=3600'],
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ],
    requestTime: 1_700_000_000_000,
    responseTime: 1_700_000_000_250,
    storedAt: 1_700_000_000_300,
    tags: ['photos', 'cat'],
    ...extra,
  };
}

/** begin → write in `chunkSize` pieces → commit. */
export async function put(store: BlobStore, key: string, data: Buffer, options: { chunkSize?: number; announce?: boolean } = {}) {
  const writer = await store.begin(key, options.announce === false ? undefined : data.length);
  if (writer === undefined) throw new Error(`store refused ${key}`);
  const step = options.chunkSize ?? 64 * 1024;
  for (let off = 0; off < data.length; off += step) await writer.write(data.subarray(off, off + step));
  return writer.commit(commitMeta(key, data.length));
}

export async function readBody(entry: BlobEntry, range?: ByteRange): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of entry.open(range)) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** The body via open() and, when the store gives it, via data — both must be exact. */
export async function expectBody(store: BlobStore, key: string, expected: Buffer): Promise<BlobEntry> {
  const entry = await store.get(key);
  expect(entry, `entry ${key}`).toBeDefined();
  expect(entry!.meta.size).toBe(expected.length);
  if (entry!.data !== undefined) expect(entry!.data.equals(expected)).toBe(true);
  expect((await readBody(entry!)).equals(expected)).toBe(true);
  return entry!;
}

export async function expectCode(promise: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    expect(isCdnError(err) ? err.code : err).toBe(code);
    return;
  }
  throw new Error(`expected a CdnError ${code}, nothing was thrown`);
}

export function blobStoreContract(name: string, make: (limits: ContractLimits) => Promise<BlobStoreFixture>): void {
  describe(`${name}: BlobStore contract`, () => {
    let fixture: BlobStoreFixture | undefined;
    afterEach(async () => {
      await fixture?.cleanup();
      fixture = undefined;
    });
    const open = async (limits: ContractLimits = DEFAULT_LIMITS): Promise<BlobStore> => {
      fixture = await make(limits);
      return fixture.store;
    };

    it('stores an empty body', async () => {
      const store = await open();
      const meta = await put(store, 'empty', Buffer.alloc(0));
      expect(meta.size).toBe(0);
      expect(meta.sha256).toBe(sha256(Buffer.alloc(0)));
      await expectBody(store, 'empty', Buffer.alloc(0));
    });

    it('is byte-exact for every byte value', async () => {
      const store = await open();
      const all = Buffer.alloc(256 * 3 + 7, 0).map((_, i) => i % 256);
      await put(store, 'bytes', Buffer.from(all), { chunkSize: 100 });
      const entry = await expectBody(store, 'bytes', Buffer.from(all));
      expect(entry.meta.sha256).toBe(sha256(all));
    });

    it('stores a 3 MiB body written in uneven chunks, unannounced', async () => {
      const store = await open();
      const body = pattern(3 * MiB, 7);
      await put(store, 'big', body, { chunkSize: 100_003, announce: false });
      const entry = await expectBody(store, 'big', body);
      expect(entry.meta.sha256).toBe(sha256(body));
    });

    it('serves inclusive byte ranges exactly and rejects ranges outside the body', async () => {
      const store = await open();
      const body = pattern(3 * MiB, 3);
      const small = pattern(1000, 4);
      await put(store, 'big', body);
      await put(store, 'small', small);
      const big = (await store.get('big'))!;
      const cuts: [number, number][] = [[0, 0], [0, 99], [262_143, 262_144], [1_000_000, 2_500_000], [3 * MiB - 1, 3 * MiB - 1], [0, 3 * MiB - 1]];
      for (const [start, end] of cuts) {
        expect((await readBody(big, { start, end })).equals(body.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
      }
      const s = (await store.get('small'))!;
      expect((await readBody(s, { start: 10, end: 19 })).equals(small.subarray(10, 20))).toBe(true);
      await expectCode(() => big.open({ start: 0, end: 3 * MiB }), 'blob_range_invalid');
      await expectCode(() => s.open({ start: 5, end: 4 }), 'blob_range_invalid');
      await expectCode(() => s.open({ start: -1, end: 4 }), 'blob_range_invalid');
    });

    it('round-trips metadata exactly and fills version and sha256', async () => {
      const store = await open();
      const body = pattern(5000, 9);
      const input = commitMeta('meta/key?w=400&fmt=webp', body.length, { status: 203, tags: [] });
      const writer = (await store.begin(input.key))!;
      await writer.write(body);
      const stored = await writer.commit(input);
      const expected = { ...input, version: 1, sha256: sha256(body) };
      expect(stored).toEqual(expected);
      const entry = (await store.get(input.key))!;
      expect(entry.meta).toEqual(expected);
      try {
        entry.meta.headers.push(['x-mutated', '1']);
        entry.meta.status = 500;
      } catch {
        // frozen: fine
      }
      expect((await store.get(input.key))!.meta).toEqual(expected);
    });

    it('leaves nothing after abort, and a closed writer refuses more', async () => {
      const store = await open();
      const writer = (await store.begin('aborted'))!;
      await writer.write(pattern(10_000));
      await writer.abort();
      await writer.abort();
      expect(await store.get('aborted')).toBeUndefined();
      expect([...store.keys()]).toEqual([]);
      expect(store.stats()).toMatchObject({ entries: 0, bytes: 0 });
      await expectCode(writer.write(pattern(10)), 'blob_writer_closed');
      await expectCode(writer.commit(commitMeta('aborted', 10_000)), 'blob_writer_closed');
    });

    it('keeps an uncommitted write invisible, the old version served until commit', async () => {
      const store = await open();
      const v1 = pattern(2000, 1);
      const v2 = pattern(3000, 2);
      await put(store, 'k', v1);
      const writer = (await store.begin('k'))!;
      await writer.write(v2);
      await expectBody(store, 'k', v1);
      expect(await store.get('new')).toBeUndefined();
      const fresh = (await store.begin('new'))!;
      await fresh.write(v2);
      expect(await store.get('new')).toBeUndefined();
      expect([...store.keys()]).toEqual(['k']);
      await writer.commit(commitMeta('k', v2.length));
      await expectBody(store, 'k', v2);
      await fresh.abort();
    });

    it('replaces on overwrite and accounts bytes for the current version only', async () => {
      const store = await open();
      const small = pattern(1000, 1);
      await put(store, 'k', small);
      const bytesSmall = store.stats().bytes;
      await put(store, 'k', pattern(500_000, 2));
      expect(store.stats().bytes).toBeGreaterThanOrEqual(bytesSmall + 499_000);
      await put(store, 'k', small);
      expect(store.stats()).toMatchObject({ entries: 1, bytes: bytesSmall });
      await expectBody(store, 'k', small);
    });

    it('deletes', async () => {
      const store = await open();
      await put(store, 'a', pattern(100));
      await put(store, 'b', pattern(200, 5));
      expect(await store.delete('a')).toBe(true);
      expect(await store.delete('a')).toBe(false);
      expect(await store.get('a')).toBeUndefined();
      expect([...store.keys()]).toEqual(['b']);
      expect(store.stats().entries).toBe(1);
      await expectBody(store, 'b', pattern(200, 5));
    });

    it('refreshes metadata in place, keeping the body and its hash', async () => {
      const store = await open();
      const body = pattern(300_000, 11);
      await put(store, 'k', body);
      const changed = await store.updateMeta('k', { headers: [['etag', '"new"']], responseTime: 1_800_000_000_000, storedAt: 1_800_000_000_001, tags: ['x'] });
      expect(changed).toBe(true);
      const entry = await expectBody(store, 'k', body);
      expect(entry.meta).toEqual({ ...commitMeta('k', body.length), version: 1, sha256: sha256(body), headers: [['etag', '"new"']], responseTime: 1_800_000_000_000, storedAt: 1_800_000_000_001, tags: ['x'] });
      expect(await store.updateMeta('missing', { status: 204 })).toBe(false);
      expect(await store.get('missing')).toBeUndefined();
    });

    it('marks an object stale and clears the mark (a soft purge, then a refresh)', async () => {
      const store = await open();
      const body = pattern(1000, 12);
      await put(store, 'soft', body);
      expect(await store.updateMeta('soft', { invalidated: true })).toBe(true);
      expect((await expectBody(store, 'soft', body)).meta.invalidated).toBe(true);
      expect(await store.updateMeta('soft', { storedAt: 1_800_000_000_002, invalidated: false })).toBe(true);
      const meta = (await expectBody(store, 'soft', body)).meta;
      expect(meta.storedAt).toBe(1_800_000_000_002);
      expect('invalidated' in meta).toBe(false);
    });

    it('lists keys by path and by tag as objects come, change and go', async () => {
      const store = await open();
      expect(store.keysUnderPath, 'keysUnderPath').toBeDefined();
      expect(store.keysWithTag, 'keysWithTag').toBeDefined();
      const under = (prefix: string) => store.keysUnderPath!(prefix).sort();
      const tagged = (tag: string) => store.keysWithTag!(tag).sort();
      for (const key of ['/img/a', '/img/b', '/imgx', '/css/s']) {
        const writer = (await store.begin(key))!;
        await writer.write(Buffer.from(key));
        await writer.commit(commitMeta(key, key.length, { tags: key.startsWith('/img') ? ['img', `k${key}`] : ['css'] }));
      }
      expect(under('/img/')).toEqual(['/img/a', '/img/b']);
      expect(under('/img')).toEqual(['/img/a', '/img/b', '/imgx']);
      expect(tagged('img')).toEqual(['/img/a', '/img/b', '/imgx']);
      expect(tagged('k/img/a')).toEqual(['/img/a']);
      await store.updateMeta('/img/a', { tags: ['other'] });
      expect(tagged('img')).toEqual(['/img/b', '/imgx']);
      expect(tagged('other')).toEqual(['/img/a']);
      await store.delete('/img/b');
      expect(under('/img/')).toEqual(['/img/a']);
      expect(tagged('img')).toEqual(['/imgx']);
      await put(store, '/imgx', Buffer.from('replaced, no tags'));
      expect(tagged('img')).toEqual([]);
      expect(under('/')).toEqual(['/css/s', '/img/a', '/imgx']);
    });

    it('evicts the least recently used entries, a get counting as a use, and stays within maxBytes', async () => {
      const store = await open({ maxBytes: MiB, maxEntrySize: 512 * 1024 });
      const bodies = { a: pattern(300 * 1024, 1), b: pattern(300 * 1024, 2), c: pattern(300 * 1024, 3), d: pattern(300 * 1024, 4) };
      await put(store, 'a', bodies.a);
      await put(store, 'b', bodies.b);
      await put(store, 'c', bodies.c);
      expect(store.stats().evictions).toBe(0);
      await expectBody(store, 'a', bodies.a);
      await put(store, 'd', bodies.d);
      expect(await store.get('b')).toBeUndefined();
      expect(store.stats()).toMatchObject({ entries: 3, evictions: 1 });
      expect(store.stats().bytes).toBeLessThanOrEqual(MiB);
      expect(new Set(store.keys())).toEqual(new Set(['a', 'c', 'd']));
      for (const k of ['a', 'c', 'd'] as const) await expectBody(store, k, bodies[k]);
    });

    it('refuses objects larger than maxEntrySize, announced or not', async () => {
      const store = await open({ maxBytes: MiB, maxEntrySize: 100_000 });
      expect(await store.begin('huge', 100_001)).toBeUndefined();
      const writer = (await store.begin('huge'))!;
      await writer.write(pattern(60_000));
      await expectCode(writer.write(pattern(60_000)), 'blob_too_large');
      await expectCode(writer.commit(commitMeta('huge', 120_000)), 'blob_writer_closed');
      expect(await store.get('huge')).toBeUndefined();
      expect(store.stats()).toMatchObject({ entries: 0, bytes: 0 });
      await put(store, 'fits', pattern(90_000));
      await expectBody(store, 'fits', pattern(90_000));
    });

    it('lists committed keys, any string being a key', async () => {
      const store = await open();
      const odd = `/photos/${'ü'.repeat(500)}/../\0\n?w=1&x=${'%'.repeat(1500)}`;
      await put(store, odd, pattern(10));
      await put(store, 'plain', pattern(20));
      const pending = (await store.begin('pending'))!;
      await pending.write(pattern(5));
      expect(new Set(store.keys())).toEqual(new Set([odd, 'plain']));
      expect((await expectBody(store, odd, pattern(10))).meta.key).toBe(odd);
      await pending.abort();
    });

    it('checks the commit against what was written', async () => {
      const store = await open();
      const w1 = (await store.begin('k'))!;
      await w1.write(pattern(100));
      await expectCode(w1.commit(commitMeta('k', 99)), 'blob_size_mismatch');
      const w2 = (await store.begin('k'))!;
      await w2.write(pattern(100));
      await expectCode(w2.commit(commitMeta('k', 100, { sha256: 'f'.repeat(64) })), 'blob_checksum_mismatch');
      const w3 = (await store.begin('k'))!;
      await w3.write(pattern(100));
      await expectCode(w3.commit(commitMeta('other', 100)), 'blob_key_mismatch');
      expect(await store.get('k')).toBeUndefined();
      expect(store.stats().entries).toBe(0);
      const w4 = (await store.begin('k', 100))!;
      await w4.write(pattern(100));
      await w4.commit(commitMeta('k', 100, { sha256: sha256(pattern(100)) }));
      await expectBody(store, 'k', pattern(100));
    });

    it('stores a body unhashed when begun with hash: false, byte-exact, small or streamed', async () => {
      const store = await open();
      const small = pattern(5000, 31);
      const big = pattern(3 * MiB, 32);
      const w1 = (await store.begin('small', small.length, { hash: false }))!;
      await w1.write(small);
      // Without a hash there is nothing to check a given one against: it is not kept either.
      const stored = await w1.commit(commitMeta('small', small.length, { sha256: 'f'.repeat(64) }));
      expect(stored).toEqual({ ...commitMeta('small', small.length), version: 1 });
      expect('sha256' in stored).toBe(false);
      const w2 = (await store.begin('big', undefined, { hash: false }))!;
      for (let off = 0; off < big.length; off += 100_003) await w2.write(big.subarray(off, off + 100_003));
      expect((await w2.commit(commitMeta('big', big.length))).sha256).toBeUndefined();
      expect((await expectBody(store, 'small', small)).meta).toEqual(stored);
      expect((await expectBody(store, 'big', big)).meta.sha256).toBeUndefined();
      // The default still hashes, for the same key replaced.
      expect((await put(store, 'small', small)).sha256).toBe(sha256(small));
      expect((await store.get('small'))!.meta.sha256).toBe(sha256(small));
      if (fixture?.reopen === undefined) return;
      const again = await fixture.reopen();
      expect((await expectBody(again, 'big', big)).meta.sha256).toBeUndefined();
      expect((await expectBody(again, 'small', small)).meta.sha256).toBe(sha256(small));
    });

    it('lets the last of two concurrent writers of a key win', async () => {
      const store = await open();
      const w1 = (await store.begin('k'))!;
      const w2 = (await store.begin('k'))!;
      await Promise.all([w1.write(pattern(4000, 1)), w2.write(pattern(7000, 2))]);
      await w2.commit(commitMeta('k', 7000));
      await w1.commit(commitMeta('k', 4000));
      await expectBody(store, 'k', pattern(4000, 1));
      expect(store.stats().entries).toBe(1);
    });

    it('refuses use after close', async () => {
      const store = await open();
      await put(store, 'k', pattern(10));
      const writer = (await store.begin('open-writer'))!;
      await writer.write(pattern(10));
      await store.close();
      await expectCode(store.get('k'), 'blob_store_closed');
      await expectCode(store.begin('x'), 'blob_store_closed');
      await expectCode(writer.commit(commitMeta('open-writer', 10)), 'blob_writer_closed');
    });

    it('keeps entries byte-exact across a reopen (when persistent)', async (ctx) => {
      const store = await open();
      if (fixture?.reopen === undefined) return ctx.skip();
      const big = pattern(3 * MiB, 21);
      await put(store, 'big', big);
      await put(store, 'small', pattern(777, 22));
      await put(store, 'empty', Buffer.alloc(0));
      await put(store, 'gone', pattern(10));
      await store.delete('gone');
      await store.updateMeta('small', { status: 206, tags: ['t'] });
      const before = (await store.get('small'))!.meta;
      const bytes = store.stats().bytes;
      const again = await fixture.reopen();
      expect(new Set(again.keys())).toEqual(new Set(['big', 'small', 'empty']));
      expect(again.stats()).toMatchObject({ entries: 3, bytes });
      await expectBody(again, 'big', big);
      expect((await expectBody(again, 'small', pattern(777, 22))).meta).toEqual(before);
      await expectBody(again, 'empty', Buffer.alloc(0));
      expect(await again.get('gone')).toBeUndefined();
    });
  });
}
