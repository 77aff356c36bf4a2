/**
 * A disk hit answered without waiting (getNow): by the owning store after a restart and by a
 * co-writer (a cluster worker's view of the owner's directory), on segments they have not read
 * before, and what the once-per-process checksum means: a body altered on disk after a process
 * verified it may still be served by that process from the page cache, never by a process that has
 * not verified it (which drops it), and the owner's background check drops it too.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
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

/** A co-writer beside the owner that has `dir` open, as a cluster worker opens it (writer id = its slot + 1). */
async function openCoWriter(dir: string, writer: number): Promise<DiskBlobStore> {
  const store = await DiskBlobStore.open({ dir, maxBytes: 64 * MiB, maxEntrySize: 16 * MiB, checkPauseMs: 60_000, writer });
  open.push(store);
  return store;
}

async function closeFirst(store: DiskBlobStore): Promise<void> {
  await store.close();
  open.splice(open.indexOf(store), 1);
}

/** The owner's first segment file (the owner's writes go there until it reaches segmentSize). */
const firstSegment = (dir: string): string => join(dir, DATA_DIR, 'seg', '0000000001.seg');

/** Flips one bit of the byte `at` bytes into `body`, where the first segment holds it, in place (the page cache sees it). */
async function alterBodyByte(dir: string, body: Buffer, at: number): Promise<void> {
  const start = (await fsp.readFile(firstSegment(dir))).indexOf(body.subarray(0, 256));
  expect(start).toBeGreaterThanOrEqual(0);
  const fh = await fsp.open(firstSegment(dir), 'r+');
  const one = Buffer.alloc(1);
  await fh.read(one, 0, 1, start + at);
  one[0] = one[0]! ^ 0x01;
  await fh.write(one, 0, 1, start + at);
  await fh.close();
}

/** `body` with the bit alterBodyByte flips. */
function altered(body: Buffer, at: number): Buffer {
  const copy = Buffer.from(body);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
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
    for (const source of [store, await openCoWriter(dir, 1)]) {
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

  it('a co-writer answers its first hit at once, from segments the owner wrote that it has not opened', async () => {
    const dir = await newDir();
    const store = await DiskBlobStore.open({ dir, maxBytes: 64 * MiB, maxEntrySize: MiB, segmentSize: 4096, checkPauseMs: 60_000 });
    open.push(store);
    const keys = ['a', 'b', 'c', 'd'];
    for (const [i, k] of keys.entries()) await put(store, k, pattern(3000, i + 1));
    await store.flush(); // committed: other processes see it
    const segs = (await fsp.readdir(join(dir, DATA_DIR, 'seg'))).length;
    expect(segs).toBeGreaterThanOrEqual(3);
    const worker = await openCoWriter(dir, 1);
    for (const round of [1, 2]) {
      for (const [i, k] of keys.entries()) expect(worker.getNow(k)?.data.equals(pattern(3000, i + 1)), `${k}, round ${round}`).toBe(true);
    }
    expect(worker.getNow('e')).toBeUndefined();
  });

  it('checks a body once per process: a process that verified it before it was altered may serve it, a new one never (it drops it), and the check drops it', async () => {
    const dir = await newDir();
    const [one, two, three] = [pattern(50 * 1024, 7), pattern(1000, 2), pattern(50 * 1024, 9)];
    const first = await openStore(dir);
    await put(first, 'h/1', one);
    await put(first, 'h/2', two);
    await put(first, 'h/3', three);
    await first.flush();
    const early = await openCoWriter(dir, 1);
    expect(early.getNow('h/1')?.data.equals(one)).toBe(true); // verified here
    expect(early.getNow('h/3')?.data.equals(three)).toBe(true);

    await alterBodyByte(dir, one, 30_000);
    await alterBodyByte(dir, three, 30_000);
    // The process that verified these bytes reads them from the page cache unchecked.
    expect(early.getNow('h/1')?.data.equals(altered(one, 30_000))).toBe(true);
    expect(early.getNow('h/3')?.data.equals(altered(three, 30_000))).toBe(true);
    expect(early.stats().corruptDropped).toBe(0);

    // A process that has not verified them never serves them, and drops what it meets.
    const late = await openCoWriter(dir, 2);
    expect(late.getNow('h/1')).toBeUndefined();
    expect(late.stats().corruptDropped).toBe(1);
    expect(await late.get('h/1')).toBeUndefined();
    expect(late.getNow('h/2')?.data.equals(two)).toBe(true);
    await late.flush(); // the drop committed: its entry is gone for every process
    expect(early.getNow('h/1')).toBeUndefined();

    // The owner, restarted after a crash, checks every body in the background and drops h/3,
    // which no process that had not verified it read.
    for (const s of [late, early, first]) await closeFirst(s);
    await fsp.writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: 2 ** 22 + 1, start: null }));
    const store = await openStore(dir, 0);
    const report = await store.checked;
    expect(report).toMatchObject({ ran: true, complete: true, dropped: 1 });
    expect(store.getNow('h/1')).toBeUndefined();
    expect(store.getNow('h/3')).toBeUndefined();
    await expectBody(store, 'h/2', two);
  });
});
