/**
 * A disk hit answered without waiting (getNow): by the writing store after a restart and by a
 * read-only view in another process (cluster workers), on segments they have not read before, and
 * what the once-per-process checksum means: a body altered on disk after a process verified it may
 * still be served by that process from the page cache, never by a process that has not verified
 * it, and the writer's background check drops it.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobReader } from '../../../src/blob/disk-blob-reader.js';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { expectBody, pattern, put } from '../../contract/blob-store-contract.js';
import { DISK_FORMAT_VERSION } from '../../../src/blob/disk-layout.js';

/** The folder of the current format in a cache directory. */
const DATA_DIR = `v${DISK_FORMAT_VERSION}`;

const MiB = 1024 * 1024;
const dirs: string[] = [];
const open: { close(): Promise<void> }[] = [];

afterEach(async () => {
  for (const s of open.splice(0).reverse()) await s.close();
  for (const d of dirs.splice(0)) await fsp.rm(d, { recursive: true, force: true });
});

async function newDir(): Promise<string> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-hit-now-'));
  dirs.push(dir);
  return dir;
}

async function openStore(dir: string, checkPauseMs = 60_000): Promise<DiskBlobStore> {
  const store = await DiskBlobStore.open({ dir, maxBytes: 64 * MiB, maxEntrySize: 16 * MiB, checkPauseMs });
  open.push(store);
  return store;
}

function openReader(dir: string): DiskBlobReader {
  const reader = DiskBlobReader.open({ dir });
  open.push(reader);
  return reader;
}

async function closeFirst(store: DiskBlobStore): Promise<void> {
  await store.close();
  open.splice(open.indexOf(store), 1);
}

/** Descriptors of this process open on segment files. */
async function openSegmentFds(): Promise<number> {
  let n = 0;
  for (const fd of await fsp.readdir('/proc/self/fd')) {
    const target = await fsp.readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.endsWith('.seg')) n += 1;
  }
  return n;
}

/** Flips one bit of a body byte in the first segment, in place (the page cache sees it). */
async function alterSegmentByte(dir: string, at: number): Promise<void> {
  const fh = await fsp.open(join(dir, DATA_DIR, 'seg', '0000000001.seg'), 'r+');
  const one = Buffer.alloc(1);
  await fh.read(one, 0, 1, at);
  one[0] = one[0]! ^ 0x01;
  await fh.write(one, 0, 1, at);
  await fh.close();
}

describe('disk hits without waiting', () => {
  it('a restarted store answers its first hit at once, from a segment it has not opened yet', async () => {
    const dir = await newDir();
    const body = pattern(50 * 1024, 3);
    const first = await openStore(dir);
    await put(first, 'h/1', body);
    await closeFirst(first);

    const store = await openStore(dir);
    const now = store.getNow('h/1');
    expect(now?.data.equals(body)).toBe(true);
    expect(now?.meta.size).toBe(50 * 1024);
    expect(store.getNow('h/missing')).toBeUndefined();
  });

  it('lends the bytes of a hit with room for a response head before them, and reads the next hit into the same memory once they are given back', async () => {
    const dir = await newDir();
    const body = pattern(50 * 1024, 5);
    const store = await openStore(dir);
    await put(store, 'h/1', body);
    await store.flush();
    for (const source of [store, openReader(dir)]) {
      const hit = source.getNow('h/1')!;
      expect(hit.data.equals(body)).toBe(true);
      expect(hit.headroom).toBeGreaterThanOrEqual(1024);
      expect(hit.data.byteOffset).toBe(hit.headroom);
      // What the quick front does with it: a head right before the body, one buffer for both.
      const head = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 51200\r\n\r\n');
      const whole = Buffer.from(hit.data.buffer, hit.data.byteOffset - head.length, head.length + hit.data.length);
      head.copy(whole);
      expect(whole.subarray(head.length).equals(body)).toBe(true);
      hit.release!();
      const next = source.getNow('h/1')!;
      expect(next.data.buffer).toBe(hit.data.buffer); // the memory given back is read into again
      expect(next.data.equals(body)).toBe(true);
      next.release!();
    }
  });

  it('a read-only view answers its first hit at once, and keeps at most maxOpenSegments open', async () => {
    const dir = await newDir();
    const store = await DiskBlobStore.open({ dir, maxBytes: 64 * MiB, maxEntrySize: MiB, segmentSize: 4096, checkPauseMs: 60_000 });
    open.push(store);
    const keys = ['a', 'b', 'c', 'd'];
    for (const [i, k] of keys.entries()) await put(store, k, pattern(3000, i + 1));
    await store.flush(); // committed: other processes see it
    const segs = (await fsp.readdir(join(dir, DATA_DIR, 'seg'))).length;
    expect(segs).toBeGreaterThanOrEqual(3);
    const before = await openSegmentFds();
    const reader = DiskBlobReader.open({ dir, maxOpenSegments: 2 });
    open.push(reader);
    for (const round of [1, 2]) {
      for (const [i, k] of keys.entries()) expect(reader.getNow(k)?.data.equals(pattern(3000, i + 1)), `${k}, round ${round}`).toBe(true);
    }
    expect(reader.getNow('e')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 50)); // closes of the segments let go are asynchronous
    expect((await openSegmentFds()) - before).toBeLessThanOrEqual(2);
  });

  it('checks a body once per process: a process that verified it before it was altered may serve it, a new one never, and the check drops it', async () => {
    const dir = await newDir();
    const body = pattern(50 * 1024, 7);
    const first = await openStore(dir);
    await put(first, 'h/1', body);
    await put(first, 'h/2', pattern(1000, 2));
    await first.flush();
    const early = openReader(dir);
    expect(early.getNow('h/1')?.data.equals(body)).toBe(true); // verified here

    await alterSegmentByte(dir, 24 + 30_000);
    const altered = Buffer.from(body);
    altered[30_000] = altered[30_000]! ^ 0x01;
    // The process that verified these bytes reads them from the page cache unchecked.
    expect(early.getNow('h/1')?.data.equals(altered)).toBe(true);
    expect(early.corruptSkipped).toBe(0);

    const late = openReader(dir);
    expect(late.getNow('h/1')).toBeUndefined();
    expect(await late.get('h/1')).toBeUndefined();
    expect(late.corruptSkipped).toBe(1);
    expect(late.getNow('h/2')?.data.equals(pattern(1000, 2))).toBe(true);

    // The writer, restarted after a crash, checks every body in the background and drops it.
    await closeFirst(first);
    await fsp.writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: 2 ** 22 + 1, start: null }));
    const store = await openStore(dir, 0);
    const report = await store.checked;
    expect(report).toMatchObject({ ran: true, complete: true, dropped: 1 });
    expect(store.getNow('h/1')).toBeUndefined();
    await expectBody(store, 'h/2', pattern(1000, 2));
  });
});
