/**
 * A co-writer opening a disk store before its owner (DiskBlobStore.openBeforeOwner, disk-open.ts):
 * only a folder of this version that nobody else owns; the owner opening later keeps it attached
 * (its place among the writers, its folder in tmp/) while it writes, and every object either
 * wrote reads back with its bytes, the counters exact.
 */
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { DiskIndex } from '../../../src/blob/disk-index.js';
import { layoutOf } from '../../../src/blob/disk-layout.js';
import { verifyKeys, writeKeys } from './co-writer.js';

const MiB = 1024 * 1024;
const options = (dir: string, writer?: number) => ({ dir, maxBytes: 64 * MiB, segmentSize: 4 * MiB, maxEntrySize: MiB, ...(writer === undefined ? {} : { writer }) });
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await fsp.rm(dir, { recursive: true, force: true });
});

async function folder(): Promise<string> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-before-owner-'));
  dirs.push(dir);
  return join(dir, 'cache');
}

/** The writers the index's state lists as open. */
function writersListed(dir: string): number[] {
  const index = DiskIndex.open({ path: layoutOf(dir).indexPath, readOnly: true, pathOf: (k) => k });
  try {
    return [...(index.shared.committedState().writers ?? [])].sort();
  } finally {
    void index.close();
  }
}

describe('a co-writer opened before its owner', () => {
  it('is refused a folder that does not exist yet, and makes nothing there', async () => {
    const dir = await folder();
    expect(await DiskBlobStore.openBeforeOwner(options(dir, 1), process.pid)).toBeUndefined();
    expect(existsSync(dir)).toBe(false);
  });

  it('is refused a folder another live process owns, and opens one its own owner-to-be holds', async () => {
    const dir = await folder();
    const owner = await DiskBlobStore.open(options(dir));
    try {
      expect(await writeKeys(owner, ['a', 'b'], 0)).toEqual({ stored: 2, refused: 0 });
      // This process holds LOCK: for a co-writer whose owner is to be another process, that is another node's folder.
      expect(await DiskBlobStore.openBeforeOwner(options(dir, 1), process.ppid)).toBeUndefined();
      expect(existsSync(join(dir, 'LOCK-w1'))).toBe(false);
      const co = await DiskBlobStore.openBeforeOwner(options(dir, 1), process.pid);
      expect(co).toBeDefined();
      expect(await verifyKeys(co!, ['a', 'b'])).toEqual({ found: 2, bad: [] });
      await co!.close();
    } finally {
      await owner.close();
    }
  });

  it('writes before and while the owner opens; the owner keeps it listed and its folder; all reads back right, counters exact', async () => {
    const dir = await folder();
    const first = await DiskBlobStore.open(options(dir));
    const old = Array.from({ length: 50 }, (_, i) => `old/${i}`);
    await writeKeys(first, old, 0);
    await first.close();

    const co = (await DiskBlobStore.openBeforeOwner(options(dir, 2), process.pid))!;
    expect(co).toBeDefined();
    const early = Array.from({ length: 60 }, (_, i) => `early/${i}`);
    expect(await writeKeys(co, early, 2)).toEqual({ stored: 60, refused: 0 });
    // A folder of a co-writer that is gone, and a body the last owner cut short: the owner's open clears them.
    await fsp.mkdir(join(dir, 'tmp', 'w9'));
    await fsp.writeFile(join(dir, 'tmp', 'x.body.part'), 'partial');
    // The owner opens while the co-writer writes (bodies of 100 KiB go through its folder in tmp/).
    const during = Array.from({ length: 60 }, (_, i) => `during/${i}`);
    const writing = writeKeys(co, during, 2, 4);
    const owner = await DiskBlobStore.open(options(dir));
    try {
      expect(await writing).toEqual({ stored: 60, refused: 0 });
      expect(await fsp.readdir(join(dir, 'tmp'))).toEqual(['w2']);
      expect(writersListed(dir)).toEqual([2]);
      const after = Array.from({ length: 60 }, (_, i) => `after/${i}`);
      expect(await writeKeys(co, after, 2)).toEqual({ stored: 60, refused: 0 });
      const all = [...old, ...early, ...during, ...after];
      expect(await verifyKeys(owner, all)).toEqual({ found: all.length, bad: [] });
      expect(await verifyKeys(co, all)).toEqual({ found: all.length, bad: [] });
      await co.close();
      expect(writersListed(dir)).toEqual([]);
      expect(owner.stats().entries).toBe(all.length);
    } finally {
      await co.close();
      await owner.close();
    }
  });
});
