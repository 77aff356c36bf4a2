/**
 * What the tiered store adds to the contract: which objects live in memory, that memory never
 * outlives the disk copy, and that a promotion racing a commit cannot bring an old version back.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DiskFs } from '../../../src/blob/disk-fs.js';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { DISK_FORMAT_VERSION, keyHash } from '../../../src/blob/disk-layout.js';
import { MemoryBlobStore } from '../../../src/blob/memory-blob-store.js';
import { TieredBlobStore } from '../../../src/blob/tiered-blob-store.js';
import type { DiskBlobWriter } from '../../../src/blob/disk-writer.js';
import { commitMeta, expectBody, pattern, put } from '../../contract/blob-store-contract.js';

/** The folder of the current format in a cache directory. */
const DATA_DIR = `v${DISK_FORMAT_VERSION}`;

const KiB = 1024;
const MiB = 1024 * KiB;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openTiered(options: { diskMaxBytes?: number; fsOps?: Partial<DiskFs>; admitAtCommit?: 'always' | 'seen' } = {}) {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-tier-'));
  const disk = await DiskBlobStore.open({ dir, maxBytes: options.diskMaxBytes ?? 64 * MiB, maxEntrySize: MiB, fsOps: options.fsOps });
  const memory = new MemoryBlobStore({ maxBytes: 8 * MiB, maxEntrySize: 2 * MiB });
  const store = new TieredBlobStore({ memory, disk, memoryMaxEntrySize: 100 * KiB, admitAtCommit: options.admitAtCommit });
  cleanups.push(async () => {
    await store.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });
  return { dir, disk, memory, store };
}

async function bodyFileOf(dir: string, key: string): Promise<string> {
  const hash = keyHash(key).toString('hex');
  const shard = join(dir, DATA_DIR, 'files', hash.slice(0, 2));
  return join(shard, (await fsp.readdir(shard)).find((n) => n.startsWith(hash))!);
}

describe('TieredBlobStore', () => {
  it('puts small objects into memory at commit and serves them from there', async () => {
    const { dir, memory, store } = await openTiered();
    await put(store, 'small', pattern(80 * KiB, 1));
    expect(memory.peek('small')?.data?.equals(pattern(80 * KiB, 1))).toBe(true);
    await fsp.unlink(await bodyFileOf(dir, 'small')); // only memory can answer now
    await expectBody(store, 'small', pattern(80 * KiB, 1));
  });

  it('keeps a body written in one chunk in memory as that chunk, and one written in several as one copy', async () => {
    const { memory, store } = await openTiered();
    const one = pattern(2 * KiB, 5);
    await put(store, 'one', one);
    const kept = memory.peek('one')!.data!;
    expect([kept.buffer, kept.byteOffset, kept.length]).toEqual([one.buffer, one.byteOffset, one.length]);
    await put(store, 'two', pattern(50 * KiB, 6), { chunkSize: 16 * KiB });
    expect(memory.peek('two')?.data?.equals(pattern(50 * KiB, 6))).toBe(true);
  });

  it('keeps a packed body written in several chunks in memory as the very bytes the disk packed, a body file as a copy of its own', async () => {
    const { memory, store } = await openTiered();
    const body = pattern(50 * KiB, 7);
    const writer = (await store.begin('packed', body.length))!;
    for (let off = 0; off < body.length; off += 16 * KiB) await writer.write(body.subarray(off, off + 16 * KiB));
    await writer.commit(commitMeta('packed', body.length));
    const packed = (writer as unknown as { disk: DiskBlobWriter }).disk.packedBody;
    expect(packed?.equals(body)).toBe(true);
    expect(memory.peek('packed')!.data).toBe(packed); // one concatenation, not two
    await expectBody(store, 'packed', body);
    const large = pattern(80 * KiB, 8); // above packMaxSize: a body file
    const fileWriter = (await store.begin('file', large.length))!;
    for (let off = 0; off < large.length; off += 16 * KiB) await fileWriter.write(large.subarray(off, off + 16 * KiB));
    await fileWriter.commit(commitMeta('file', large.length));
    expect((fileWriter as unknown as { disk: DiskBlobWriter }).disk.packedBody).toBeUndefined();
    expect(memory.peek('file')?.data?.equals(large)).toBe(true);
  });

  it('tells the writer a new version is readable before its commit resolves: get() finds it then, and memory no longer holds the old one', async () => {
    const { memory, store } = await openTiered();
    await put(store, 'k', pattern(20 * KiB, 1));
    expect(memory.peek('k')).toBeDefined();
    const next = pattern(30 * KiB, 2);
    const writer = (await store.begin('k', next.length))!;
    await writer.write(next);
    let committed = false;
    let atReadable: { committed: boolean; inMemory: boolean; read: Promise<unknown> } | undefined;
    await writer.commit(commitMeta('k', next.length), {
      onReadable: () => {
        atReadable = { committed, inMemory: memory.peek('k') !== undefined, read: expectBody(store, 'k', next) };
      },
    });
    committed = true;
    expect(atReadable).toMatchObject({ committed: false, inMemory: false });
    await atReadable!.read;
  });

  it('keeps no memory copy of a version read while readable whose index write is then refused', async () => {
    const { disk, memory, store } = await openTiered();
    const body = pattern(20 * KiB, 6);
    // The index refuses the record once its batch runs, as when the owner evicted the generation meanwhile.
    const index = (disk as unknown as { index: { put: (...args: unknown[]) => Promise<{ applied: boolean }> } }).index;
    const realPut = index.put.bind(index);
    index.put = (...args: unknown[]) => realPut(...args).then(() => ({ applied: false }));
    const writer = (await store.begin('k', body.length))!;
    await writer.write(body);
    let reads: Promise<unknown> | undefined;
    const commit = writer.commit(commitMeta('k', body.length), {
      // Two reads in the window: the second takes the version into memory (promoted on a second hit).
      onReadable: () => (reads = expectBody(store, 'k', body).then(() => expectBody(store, 'k', body))),
    });
    await expect(commit).rejects.toThrow(/evicted/);
    await reads;
    expect(memory.peek('k')).toBeUndefined();
  });

  it('has the disk writer let go of a packed body once the disk has it, unless the memory tier keeps those bytes', async () => {
    const { disk, store } = await openTiered({ admitAtCommit: 'seen' });
    const body = pattern(40 * KiB, 3);
    const plain = (await disk.begin('plain', body.length))!;
    await plain.write(body);
    await plain.commit(commitMeta('plain', body.length));
    expect(plain.packedBody).toBeUndefined();
    // A key seen before is kept in memory at commit, as the very bytes the disk packed.
    await put(store, 'seen', body);
    await expectBody(store, 'seen', body);
    const again = (await store.begin('seen', body.length))!;
    await again.write(body);
    await again.commit(commitMeta('seen', body.length));
    expect((again as unknown as { disk: DiskBlobWriter }).disk.packedBody?.equals(body)).toBe(true);
  });

  it('promotes small disk hits into memory on their second hit, never objects above memoryMaxEntrySize', async () => {
    const { disk, memory, store } = await openTiered();
    await put(disk, 'small', pattern(90 * KiB, 2)); // written past the tiered store
    await put(disk, 'large', pattern(300 * KiB, 3));
    await put(disk, 'packed', pattern(2 * KiB, 4));
    await expectBody(store, 'small', pattern(90 * KiB, 2));
    expect(memory.peek('small')).toBeUndefined(); // a first disk hit is served, not kept
    await expectBody(store, 'small', pattern(90 * KiB, 2));
    expect(memory.peek('small')?.data?.equals(pattern(90 * KiB, 2))).toBe(true);
    // getHot answers a first hit of a packed body from the disk at once; the next goes through get(), which keeps it.
    const first = store.getHot('packed');
    expect(Buffer.from(first!.data!).equals(pattern(2 * KiB, 4))).toBe(true);
    first!.release?.();
    expect(memory.peek('packed')).toBeUndefined();
    expect(store.getHot('packed')).toBeUndefined();
    await expectBody(store, 'packed', pattern(2 * KiB, 4));
    expect(memory.peek('packed')?.data?.equals(pattern(2 * KiB, 4))).toBe(true);
    const large = await expectBody(store, 'large', pattern(300 * KiB, 3));
    expect(large.data).toBeUndefined();
    await expectBody(store, 'large', pattern(300 * KiB, 3));
    await put(store, 'large2', pattern(300 * KiB, 4));
    expect(memory.keys().sort()).toEqual(['packed', 'small']);
  });

  it("with admitAtCommit 'seen', keeps a first fetch on disk alone and a copy from its first hit on, and a new version of a key asked for recently at commit", async () => {
    const { dir, memory, store } = await openTiered({ admitAtCommit: 'seen' });
    await put(store, 'k', pattern(50 * KiB, 1), { chunkSize: 16 * KiB });
    expect(memory.peek('k')).toBeUndefined();
    // The first hit is read from the disk at once (getHot) and answered from a copy it keeps in
    // memory: no lent bytes to release, and the next hit gets the same entry.
    const first = store.getHot('k')!;
    const kept = memory.peek('k')!.data!;
    expect(kept.equals(pattern(50 * KiB, 1))).toBe(true);
    expect(first.data).toBe(kept);
    expect(first.release).toBeUndefined();
    expect(store.getHot('k')?.meta).toBe(first.meta);
    // A body in a file (above packMaxSize): its first hit goes through get(), which keeps it.
    await put(store, 'file', pattern(80 * KiB, 2));
    expect(memory.peek('file')).toBeUndefined();
    expect(store.getHot('file')).toBeUndefined();
    await expectBody(store, 'file', pattern(80 * KiB, 2));
    expect(memory.peek('file')?.data?.equals(pattern(80 * KiB, 2))).toBe(true);
    // A new version of a key asked for recently goes into memory at commit.
    await put(store, 'file', pattern(90 * KiB, 3));
    expect(memory.peek('file')?.data?.equals(pattern(90 * KiB, 3))).toBe(true);
    await fsp.unlink(await bodyFileOf(dir, 'file')); // only memory can answer now
    await expectBody(store, 'file', pattern(90 * KiB, 3));
    // Above memoryMaxEntrySize: never kept, however often it is written or read.
    await put(store, 'large', pattern(300 * KiB, 4));
    await expectBody(store, 'large', pattern(300 * KiB, 4));
    await put(store, 'large', pattern(300 * KiB, 5));
    await expectBody(store, 'large', pattern(300 * KiB, 5));
    // A first fetch never asked for again stays out of memory.
    await put(store, 'once', pattern(2 * KiB, 6));
    expect(memory.keys().sort()).toEqual(['file', 'k']);
  });

  it('drops the memory copy when the disk evicts, deletes, or replaces with a large version', async () => {
    const { memory, store } = await openTiered({ diskMaxBytes: MiB });
    await put(store, 'a', pattern(90 * KiB, 1));
    await put(store, 'b', pattern(90 * KiB, 2));
    await put(store, 'c', pattern(90 * KiB, 3));
    expect(memory.keys().sort()).toEqual(['a', 'b', 'c']);
    await put(store, 'big', pattern(900 * KiB, 4)); // disk must evict a and b
    expect(store.keys()).toEqual(['c', 'big']);
    expect(memory.keys()).toEqual(['c']);
    await put(store, 'c', pattern(150 * KiB, 5)); // above memoryMaxEntrySize
    expect(memory.keys()).toEqual([]);
    await expectBody(store, 'c', pattern(150 * KiB, 5));
    await put(store, 'd', pattern(10 * KiB, 6));
    expect(await store.updateMeta('d', { status: 299 })).toBe(true);
    expect(memory.peek('d')?.meta.status).toBe(299);
    expect((await store.get('d'))?.meta.status).toBe(299);
    expect(await store.delete('d')).toBe(true);
    expect(memory.peek('d')).toBeUndefined();
    expect(await store.get('d')).toBeUndefined();
  });

  it('does not let a promotion that raced a commit put the old version back into memory', async () => {
    let release: (() => void) | undefined;
    let gate: Promise<void> | undefined;
    const fsOps: Partial<DiskFs> = {
      open: (async (path: string, flags?: string) => {
        const held = String(path).includes('/files/') && flags === 'r' ? gate : undefined;
        if (held !== undefined) gate = undefined; // hold only the first body read
        const result = await fsp.open(path, flags);
        await held;
        return result;
      }) as DiskFs['open'],
    };
    const { disk, memory, store } = await openTiered({ fsOps });
    await put(disk, 'k', pattern(90 * KiB, 1)); // a body file (packed bodies are read without waiting)
    await expectBody(store, 'k', pattern(90 * KiB, 1)); // its first disk hit: the next one promotes
    gate = new Promise((resolve) => (release = resolve));
    const racing = store.get('k'); // reads v1 from disk, held at the gate
    await expect.poll(() => gate === undefined).toBe(true); // the read is under way
    await put(store, 'k', pattern(80 * KiB, 2));
    release!();
    expect((await racing)?.data?.equals(pattern(90 * KiB, 1))).toBe(true); // it started before the commit
    expect(memory.peek('k')?.data?.equals(pattern(80 * KiB, 2))).toBe(true);
    await expectBody(store, 'k', pattern(80 * KiB, 2));
  });
});
