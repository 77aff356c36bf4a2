/**
 * What the disk store does on disk beyond the contract: the format, packing, the real-space bound,
 * checks on read and in the background, recency across restarts, lists by path and tag, the
 * discard of an older format, and a miss path without fsyncs.
 */
import { spawnSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import type { DiskBlobStoreOptions } from '../../../src/blob/disk-options.js';
import type { DiskFs } from '../../../src/blob/disk-fs.js';
import { DISK_FORMAT_VERSION, keyHash } from '../../../src/blob/disk-layout.js';
import { isCdnError } from '../../../src/errors.js';
import { commitMeta, expectBody, expectCode, pattern, put, readBody } from '../../contract/blob-store-contract.js';

/** The folder of the current format in a cache directory. */
const DATA_DIR = `v${DISK_FORMAT_VERSION}`;

const KiB = 1024;
const MiB = 1024 * KiB;
const dirs: string[] = [];
const stores: DiskBlobStore[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await fsp.rm(d, { recursive: true, force: true });
});

async function newDir(): Promise<string> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-disk-'));
  dirs.push(dir);
  return dir;
}

async function openStore(dir: string, options: Partial<DiskBlobStoreOptions> = {}): Promise<DiskBlobStore> {
  const store = await DiskBlobStore.open({ dir, maxBytes: 64 * MiB, maxEntrySize: 16 * MiB, ...options });
  stores.push(store);
  return store;
}

async function closeStore(store: DiskBlobStore): Promise<void> {
  await store.close();
  stores.splice(stores.indexOf(store), 1);
}

/** What a crash leaves: the LOCK of a process that is gone (an exited child's pid). */
async function leaveStaleLock(dir: string): Promise<void> {
  const gone = spawnSync(process.execPath, ['-e', '']).pid;
  await fsp.writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: gone, start: null }));
}

async function exists(path: string): Promise<boolean> {
  return fsp.stat(path).then(
    () => true,
    () => false,
  );
}

async function segments(dir: string): Promise<string[]> {
  return (await fsp.readdir(join(dir, DATA_DIR, 'seg'))).sort();
}

async function bodyFiles(dir: string): Promise<string[]> {
  const root = join(dir, DATA_DIR, 'files');
  const out: string[] = [];
  for (const shard of await fsp.readdir(root)) for (const name of await fsp.readdir(join(root, shard))) out.push(join(root, shard, name));
  return out.sort();
}

/** Bytes the files under `dir` occupy on disk (allocated blocks). */
async function allocatedBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await fsp.stat(join(entry.parentPath, entry.name))).blocks * 512;
  }
  return total;
}

async function putMany(store: DiskBlobStore, prefix: string, count: number, size: number, concurrency = 16): Promise<void> {
  let next = 0;
  const one = async () => {
    while (next < count) {
      const i = next++;
      await put(store, `${prefix}${i}`, pattern(size, i + 1));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
}

describe('DiskBlobStore on disk', () => {
  it('packs small bodies into a segment (header, then bytes) and gives large ones a file; tmp empty; LOCK', async () => {
    const dir = await newDir();
    const store = await openStore(dir, { blockSize: 64 * KiB, packMaxSize: 64 * KiB });
    const small = pattern(2000, 5);
    const large = pattern(100 * KiB, 6);
    await put(store, 'photos/cat.jpg?w=400', small);
    await put(store, 'videos/clip.mp4', large);
    expect(await segments(dir)).toEqual(['0000000001.seg']);
    const seg = await fsp.readFile(join(dir, DATA_DIR, 'seg', '0000000001.seg'));
    expect(seg.length).toBe(24 + 2000);
    expect(seg.subarray(0, 4).toString('latin1')).toBe('ACS2');
    expect(seg.readUInt32BE(4)).toBe(2000);
    expect(seg.subarray(8, 16).equals(keyHash('photos/cat.jpg?w=400').subarray(0, 8))).toBe(true);
    expect(seg.readUInt32BE(16)).toBe(crc32(small));
    expect(seg.readUInt32BE(20)).toBe(crc32(seg.subarray(0, 20)));
    expect(seg.subarray(24).equals(small)).toBe(true);
    const files = await bodyFiles(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`/${keyHash('videos/clip.mp4').toString('hex')}\\.[0-9a-f]{16}$`));
    expect((await fsp.readFile(files[0]!)).equals(large)).toBe(true);
    expect(await exists(join(dir, DATA_DIR, 'index.lmdb'))).toBe(true);
    expect(await fsp.readdir(join(dir, 'tmp'))).toEqual([]);
    expect(JSON.parse(await fsp.readFile(join(dir, 'LOCK'), 'utf8')).pid).toBe(process.pid);
    await closeStore(store);
    expect(await exists(join(dir, 'LOCK'))).toBe(false);
  });

  it('takes the writes of a small body in order, and refuses one issued once commit() was called, leaving it out of the body', async () => {
    const store = await openStore(await newDir());
    const body = pattern(6 * 1024, 3);
    const writer = (await store.begin('k'))!;
    // Not awaited one by one: each is taken in turn, whether held in memory or queued.
    const writes = [writer.write(body.subarray(0, 2048)), writer.write(body.subarray(2048, 4096)), writer.write(body.subarray(4096))];
    await Promise.all(writes);
    const committing = writer.commit(commitMeta('k', body.length));
    await expectCode(writer.write(Buffer.from('late')), 'blob_writer_closed');
    expect((await committing).size).toBe(body.length);
    await expectBody(store, 'k', body);
  });

  it('stores 2 KiB objects in at most 1.5 times their bytes, index included', async () => {
    const dir = await newDir();
    const store = await openStore(dir);
    await putMany(store, 'small/', 2000, 2 * KiB);
    await store.flush();
    const used = await allocatedBytes(join(dir, DATA_DIR));
    expect(used / (2000 * 2 * KiB)).toBeLessThanOrEqual(1.5);
    expect(store.stats().diskBytes).toBeGreaterThanOrEqual(2000 * (2 * KiB + 24));
  });

  it('keeps what the disk really holds within maxBytes, evicting the oldest generations whole', async () => {
    const dir = await newDir();
    const store = await openStore(dir, { maxBytes: 2 * MiB, maxEntrySize: 64 * KiB, segmentSize: 128 * KiB });
    await putMany(store, 'k/', 2000, 2 * KiB, 1); // 4 MiB through a 2 MiB cache, in order
    await store.flush();
    const stats = store.stats();
    expect(stats.diskBytes).toBeLessThanOrEqual(2 * MiB);
    expect(await allocatedBytes(join(dir, DATA_DIR))).toBeLessThanOrEqual(2 * MiB);
    expect(stats.evictions).toBeGreaterThan(1000);
    expect(stats.entries).toBe(2000 - stats.evictions);
    expect(await store.get('k/0')).toBeUndefined();
    await expectBody(store, 'k/1999', pattern(2 * KiB, 2000));
    // Evicted whole: the oldest segment files are gone, the newest remain.
    const names = await segments(dir);
    expect(names.length).toBeLessThan(2 * MiB / (128 * KiB));
    expect(names[0]).not.toBe('0000000001.seg');
  });

  it('copies nothing on a read while the disk has room, and keeps what was read when its generation is evicted, across a restart', async () => {
    const dir = await newDir();
    const first = await openStore(dir, { maxBytes: 4 * MiB, maxEntrySize: 512 * KiB, segmentSize: 256 * KiB });
    for (const k of ['a', 'b', 'c']) await put(first, k, pattern(300 * KiB, k.charCodeAt(0)));
    for (const k of ['x', 'y']) await put(first, k, pattern(10 * KiB, k.charCodeAt(0)));
    const segmentBytes = await allocatedBytes(join(dir, DATA_DIR, 'seg'));
    await expectBody(first, 'a', pattern(300 * KiB, 97));
    await expectBody(first, 'x', pattern(10 * KiB, 120));
    await first.flush();
    // A quarter of maxBytes in use: the reads are noted, nothing is moved or copied.
    expect(first.keys()).toEqual(['a', 'b', 'c', 'x', 'y']);
    expect(first.stats().moved).toBe(0);
    expect(await allocatedBytes(join(dir, DATA_DIR, 'seg'))).toBe(segmentBytes);
    await closeStore(first);
    // Room for one large object: a, read, moves to the head as its generation goes; b and c, never read, are evicted.
    const store = await openStore(dir, { maxBytes: 500 * KiB, maxEntrySize: 400 * KiB, segmentSize: 256 * KiB });
    expect(store.keys()).toEqual(['x', 'y', 'a']);
    expect(store.stats()).toMatchObject({ entries: 3, evictions: 2, moved: 1 });
    await expectBody(store, 'a', pattern(300 * KiB, 97));
    await expectBody(store, 'x', pattern(10 * KiB, 120));
    await expect.poll(async () => (await bodyFiles(dir)).length, { timeout: 5000 }).toBe(1);
  });

  it('keeps its counters in step with its records: concurrent commits and removals, then a restart', async () => {
    const dir = await newDir();
    const first = await openStore(dir);
    // Packed bodies and files of their own, committed from many event turns at once.
    await Promise.all(Array.from({ length: 120 }, (_, i) => put(first, `k${i}`, pattern(i % 10 === 0 ? 200 * KiB : 2 * KiB + i, i + 1))));
    for (let i = 0; i < 120; i += 7) await first.delete(`k${i}`);
    const before = first.stats();
    expect(before.entries).toBe(120 - 18);
    expect(first.keys().length).toBe(before.entries);
    await closeStore(first);
    const store = await openStore(dir);
    expect(store.stats()).toMatchObject({ entries: before.entries, bytes: before.bytes });
    await expectBody(store, 'k1', pattern(2 * KiB + 1, 2));
    await expectBody(store, 'k10', pattern(200 * KiB, 11));
  });

  it('lists keys under a path prefix (any host) and by tag, from the index, across a restart', async () => {
    const dir = await newDir();
    const pathOf = (key: string) => key.slice(key.indexOf('/'));
    const first = await openStore(dir, { pathOf });
    const tagged = async (key: string, tags: string[]) => {
      const w = (await first.begin(key))!;
      await w.write(pattern(100));
      await w.commit(commitMeta(key, 100, { tags }));
    };
    await tagged('a.example/img/cat.jpg', ['cats', 'img']);
    await tagged('b.example/img/dog.jpg', ['dogs', 'img']);
    await tagged('a.example/img2/x.jpg', ['cats']);
    await tagged('a.example/css/site.css', []);
    expect(first.keysUnderPath('/img/').sort()).toEqual(['a.example/img/cat.jpg', 'b.example/img/dog.jpg']);
    expect(first.keysUnderPath('/img').sort()).toEqual(['a.example/img/cat.jpg', 'a.example/img2/x.jpg', 'b.example/img/dog.jpg']);
    expect(first.keysWithTag('cats').sort()).toEqual(['a.example/img/cat.jpg', 'a.example/img2/x.jpg']);
    expect(first.keysWithTag('cat')).toEqual([]);
    expect(first.keysWithPrefix('a.example/').sort()).toEqual(['a.example/css/site.css', 'a.example/img/cat.jpg', 'a.example/img2/x.jpg']);
    await first.updateMeta('a.example/img2/x.jpg', { tags: ['dogs'] });
    await first.delete('b.example/img/dog.jpg');
    await closeStore(first);
    const store = await openStore(dir, { pathOf });
    expect(store.keysWithTag('cats')).toEqual(['a.example/img/cat.jpg']);
    expect(store.keysWithTag('dogs')).toEqual(['a.example/img2/x.jpg']);
    expect(store.keysUnderPath('/img/')).toEqual(['a.example/img/cat.jpg']);
    expect(store.keysUnderPath('/')).toHaveLength(3);
  });

  it('never serves a packed body whose bytes were altered: the read drops it, and so does the background check after a crash', async () => {
    const dir = await newDir();
    const first = await openStore(dir);
    for (const k of ['v1', 'v2', 'keep']) await put(first, k, pattern(20_000, k.length + k.charCodeAt(1)));
    await closeStore(first);
    await leaveStaleLock(dir);
    const path = join(dir, DATA_DIR, 'seg', '0000000001.seg');
    const seg = await fsp.readFile(path);
    seg[24 + 12_345] = seg[24 + 12_345]! ^ 0x01; // a body byte of the first record
    seg[20_024 + 24 + 3] = seg[20_024 + 24 + 3]! ^ 0x80; // and of the second
    await fsp.writeFile(path, seg);

    const store = await openStore(dir, { checkPauseMs: 0 });
    expect(await store.get('v1')).toBeUndefined();
    const report = await store.checked;
    expect(report.complete).toBe(true);
    expect(report.dropped).toBeGreaterThanOrEqual(1); // v2, which nothing read
    expect(store.stats()).toMatchObject({ entries: 1, corruptDropped: 2 });
    expect(store.keys()).toEqual(['keep']);
    await expectBody(store, 'keep', pattern(20_000, 4 + 101));
  });

  it('fails a stream before the first corrupt block of a body file, serving only verified bytes', async () => {
    const dir = await newDir();
    const body = pattern(3 * MiB, 2);
    const first = await openStore(dir);
    await put(first, 'victim', body);
    await closeStore(first);
    const [file] = await bodyFiles(dir);
    const badAt = 2 * MiB + 100_000; // in block 8 (256 KiB blocks)
    const fh = await fsp.open(file!, 'r+');
    await fh.write(Buffer.from([body[badAt]! ^ 0xff]), 0, 1, badAt);
    await fh.close();
    const store = await openStore(dir, { checkPauseMs: 60_000 });
    const entry = (await store.get('victim'))!;
    expect(entry.data).toBeUndefined();
    expect((await readBody(entry, { start: 0, end: 999 })).equals(body.subarray(0, 1000))).toBe(true);
    const received: Buffer[] = [];
    const error = await new Promise<unknown>((resolve) => {
      const stream = entry.open();
      stream.on('data', (c: Buffer) => received.push(c));
      stream.on('error', resolve);
      stream.on('end', () => resolve(undefined));
    });
    expect(isCdnError(error) && error.code).toBe('blob_corrupt');
    const got = Buffer.concat(received);
    expect(got.length).toBe(8 * 256 * KiB);
    expect(got.equals(body.subarray(0, got.length))).toBe(true);
    expect(await store.get('victim')).toBeUndefined();
    expect(store.stats().corruptDropped).toBe(1);
    await expect.poll(() => bodyFiles(dir), { timeout: 5000 }).toEqual([]);
  });

  it('does not walk the index at open after a clean stop; a damaged body is still never served', async () => {
    const dir = await newDir();
    const first = await openStore(dir);
    for (const k of ['v1', 'v2', 'keep']) await put(first, k, pattern(20_000, k.length + k.charCodeAt(1)));
    await closeStore(first);
    const path = join(dir, DATA_DIR, 'seg', '0000000001.seg');
    const seg = await fsp.readFile(path);
    seg[20_024 + 24 + 3] = seg[20_024 + 24 + 3]! ^ 0x80; // a body byte of v2
    await fsp.writeFile(path, seg);

    const store = await openStore(dir, { checkPauseMs: 0 });
    expect(await store.checked).toEqual({ ran: false, checked: 0, dropped: 0, orphanFiles: 0, complete: false });
    expect(store.stats()).toMatchObject({ entries: 3, corruptDropped: 0 }); // nothing read v2 yet
    expect(await store.get('v2')).toBeUndefined();
    expect(store.stats()).toMatchObject({ entries: 2, corruptDropped: 1 });
    await expectBody(store, 'keep', pattern(20_000, 4 + 101));
    await closeStore(store);

    // A crash (the LOCK left behind) is what the check is for.
    await leaveStaleLock(dir);
    const after = await openStore(dir, { checkPauseMs: 0 });
    expect(await after.checked).toEqual({ ran: true, checked: 2, dropped: 0, orphanFiles: 0, complete: true });
  });

  it('drops entries whose bytes are missing, and deletes body files nothing names, in the background after a crash', async () => {
    const dir = await newDir();
    const first = await openStore(dir);
    await put(first, 'big', pattern(200 * KiB, 1));
    await put(first, 'truncated', pattern(200 * KiB, 2));
    await put(first, 'small', pattern(1000, 3));
    await closeStore(first);
    const [a, b] = await bodyFiles(dir);
    const truncated = (await fsp.readFile(a!)).equals(pattern(200 * KiB, 2)) ? a! : b!;
    await fsp.truncate(truncated, 1000);
    const orphan = join(dir, DATA_DIR, 'files', 'ab', `ab${'0'.repeat(62)}.0123456789abcdef`);
    await fsp.mkdir(join(dir, DATA_DIR, 'files', 'ab'), { recursive: true });
    await fsp.writeFile(orphan, 'left by a crash between the rename and the index commit');
    const old = new Date(Date.now() - 60_000);
    await fsp.utimes(orphan, old, old);
    await fsp.writeFile(join(dir, 'tmp-leftover'), ''); // not the store's: left alone
    await fsp.writeFile(join(dir, 'tmp', 'x.body.part'), pattern(5000));
    await leaveStaleLock(dir);

    const store = await openStore(dir, { checkPauseMs: 0 });
    expect(await fsp.readdir(join(dir, 'tmp'))).toEqual([]);
    expect(await store.checked).toEqual({ ran: true, checked: 3, dropped: 1, orphanFiles: 1, complete: true });
    expect(store.keys().sort()).toEqual(['big', 'small']);
    expect(await exists(orphan)).toBe(false);
    expect(await exists(join(dir, 'tmp-leftover'))).toBe(true);
    await expectBody(store, 'big', pattern(200 * KiB, 1));
  });

  it('discards cache folders of formats 1 and 2 at open, saying so, and works at once', async () => {
    const dir = await newDir();
    await fsp.mkdir(join(dir, 'v1', 'ab'), { recursive: true });
    await fsp.writeFile(join(dir, 'v1', 'ab', `ab${'0'.repeat(62)}.meta`), '{"format":"anycdn-blob","version":1}');
    await fsp.mkdir(join(dir, 'v2', 'seg'), { recursive: true });
    await fsp.writeFile(join(dir, 'v2', 'index.lmdb'), 'an index of msgpack records');
    const store = await openStore(dir);
    expect(store.openReport.discarded).toEqual([join(dir, 'v1'), join(dir, 'v2')]);
    await put(store, 'k', pattern(100));
    await expectBody(store, 'k', pattern(100));
    await expect.poll(async () => (await fsp.readdir(dir)).sort(), { timeout: 5000 }).toEqual(['LOCK', 'tmp', DATA_DIR]);
  });

  it('stores objects without an fsync per object', async () => {
    const dir = await newDir();
    let syncs = 0;
    const counting = (fh: FileHandle): FileHandle =>
      new Proxy(fh, {
        get(target, prop) {
          if (prop === 'sync' || prop === 'datasync') syncs += 1;
          const value = Reflect.get(target, prop) as unknown;
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    const fsOps: Partial<DiskFs> = { open: (async (path: string, flags?: string) => counting(await fsp.open(path, flags))) as DiskFs['open'] };
    const store = await openStore(dir, { fsOps, syncIntervalMs: 60_000 });
    syncs = 0; // the LOCK file's, at open
    await putMany(store, 'k/', 500, 2 * KiB);
    await put(store, 'large', pattern(300 * KiB, 9));
    expect(syncs).toBe(0);
    await store.flush(); // the periodic sync: one datasync for the one segment written
    expect(syncs).toBe(1);
  });

  it('keeps a stream opened before an overwrite on the old bytes; a later open fails with blob_gone', async () => {
    const dir = await newDir();
    const store = await openStore(dir);
    const v1 = pattern(2 * MiB, 1);
    await put(store, 'k', v1);
    const entry = (await store.get('k'))!;
    const early = entry.open();
    const first = await new Promise<Buffer>((resolve) => early.once('data', resolve));
    early.pause();
    await put(store, 'k', pattern(2 * MiB, 2));
    await expect.poll(() => bodyFiles(dir).then((f) => f.length), { timeout: 5000 }).toBe(1);
    const rest: Buffer[] = [first];
    for await (const c of early) rest.push(c as Buffer);
    expect(Buffer.concat(rest).equals(v1)).toBe(true);
    await expectCode(readBody(entry), 'blob_gone');
    await expectBody(store, 'k', pattern(2 * MiB, 2));
  });

  it('refuses a directory held by a live process and takes over a stale lock', async () => {
    const dir = await newDir();
    const store = await openStore(dir);
    await expectCode(DiskBlobStore.open({ dir, maxBytes: MiB }), 'blob_store_locked');
    await closeStore(store);
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    await fsp.writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: dead, start: null }));
    await closeStore(await openStore(dir));
    await fsp.writeFile(join(dir, 'LOCK'), '');
    await openStore(dir);
  });

  it('refuses options without bounds, naming them', async () => {
    const dir = await newDir();
    const fieldOf = (p: Promise<unknown>) => p.then(() => 'opened', (e: unknown) => (isCdnError(e) ? e.field : String(e)));
    expect(await fieldOf(DiskBlobStore.open({ dir } as DiskBlobStoreOptions))).toBe('maxBytes');
    expect(await fieldOf(DiskBlobStore.open({ dir, maxBytes: 10, maxEntrySize: 11 }))).toBe('maxEntrySize');
    expect(await fieldOf(DiskBlobStore.open({ dir: '', maxBytes: 10 }))).toBe('dir');
    expect(await fieldOf(DiskBlobStore.open({ dir, maxBytes: MiB, packMaxSize: 512 * KiB }))).toBe('packMaxSize');
    expect(await fieldOf(DiskBlobStore.open({ dir, maxBytes: MiB, seqBlock: 0 }))).toBe('seqBlock');
    await fsp.writeFile(join(dir, 'a-file'), '');
    await expectCode(DiskBlobStore.open({ dir: join(dir, 'a-file', 'cache'), maxBytes: 10 }), 'blob_store_unavailable');
  });

  it('keeps commitMeta honest: a body larger than announced is refused while writing', async () => {
    const store = await openStore(await newDir());
    const writer = (await store.begin('k', 100))!;
    await expectCode(writer.write(pattern(101)), 'blob_size_mismatch');
    expect(store.stats()).toMatchObject({ entries: 0, openWriters: 0, storeErrors: 0 });
    await expectCode(writer.commit(commitMeta('k', 101)), 'blob_writer_closed');
  });
});
