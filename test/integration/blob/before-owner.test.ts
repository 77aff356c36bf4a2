/**
 * A co-writer opening a disk store before its owner (DiskBlobStore.openBeforeOwner, disk-open.ts):
 * only a folder of this version that nobody else owns; the owner opening later keeps it attached
 * (its place among the writers, its folder in tmp/) while it writes, and every object either
 * wrote reads back with its bytes, the counters exact.
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { DiskIndex } from '../../../src/blob/disk-index.js';
import { layoutOf } from '../../../src/blob/disk-layout.js';
import { verifyKeys, writeKeys } from './co-writer.js';

// The compiled helper process (built by npm test's tsc) a co-writer runs in: LMDB's write lock is
// a lock between processes, and an owner and a co-writer in one process can wait on each other.
const CHILD = join(process.cwd(), 'dist', 'test', 'integration', 'blob', 'co-writer.js');

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

  // LMDB (as lmdb-js builds it) loses a commit made by another process while a process opens the
  // index (SharedIndexState.hold): without a hold around the owner's open, 1 run in ~40 lost
  // every object of one of the co-writer's transactions written during it (14 of 230).
  it('writes before and while the owner opens (its commits held meanwhile); the owner keeps it listed and its folder; all reads back right, counters exact', async () => {
    const dir = await folder();
    const first = await DiskBlobStore.open(options(dir));
    const old = Array.from({ length: 50 }, (_, i) => `old/${i}`);
    await writeKeys(first, old, 0);
    await first.close();

    // Co-writer 2 in a process of its own, opening before its owner, this process.
    const proc = fork(CHILD, [dir, '2', String(64 * MiB), String(4 * MiB), String(process.pid)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    // Answers by the id of their question: the co-writer answers a hold while a write waits for its release.
    const waiting = new Map<number, (msg: unknown) => void>();
    let ready = (): void => undefined;
    const started = new Promise<void>((resolve) => (ready = resolve));
    proc.on('message', (msg: { id?: number }) => {
      if (msg.id === undefined) return ready();
      const { id, ...answer } = msg;
      waiting.get(id)?.(answer);
      waiting.delete(id);
    });
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const failed = exited.then(() => Promise.reject(new Error(`co-writer exited: ${stderr}`)));
    failed.catch(() => undefined);
    let asked = 0;
    const ask = (msg: object): Promise<unknown> => {
      const id = asked++;
      const answered = new Promise<unknown>((resolve) => waiting.set(id, resolve));
      proc.send({ ...msg, id });
      return Promise.race([answered, failed]);
    };
    const stop = async (): Promise<void> => {
      if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid!, 'SIGKILL');
      await exited;
    };
    const co = { write: (keys: string[]) => ask({ cmd: 'write', keys }), verify: (keys: string[]) => ask({ cmd: 'verify', keys }) };
    /** The keys `store` does not find (none may be lost, wherever they were written from). */
    const missing = async (store: DiskBlobStore, keys: string[]): Promise<string[]> => {
      const out: string[] = [];
      for (const key of keys) if ((await store.get(key)) === undefined) out.push(key);
      return out;
    };
    await Promise.race([started, failed]);
    const early = Array.from({ length: 60 }, (_, i) => `early/${i}`);
    expect(await co.write(early)).toEqual({ stored: 60, refused: 0 });
    // A folder of a co-writer that is gone, and a body the last owner cut short: the owner's open clears them.
    await fsp.mkdir(join(dir, 'tmp', 'w9'));
    await fsp.writeFile(join(dir, 'tmp', 'x.body.part'), 'partial');
    // The owner opens while the co-writer writes (bodies of 100 KiB go through its folder in tmp/).
    const during = Array.from({ length: 60 }, (_, i) => `during/${i}`);
    const writing = co.write(during);
    // As a cluster's primary does (edge/cluster.ts): the co-writer's commits held while the owner opens.
    await new Promise((r) => setTimeout(r, 5));
    expect(await ask({ cmd: 'hold' })).toEqual({ held: true });
    const owner = await DiskBlobStore.open(options(dir));
    expect(await ask({ cmd: 'release' })).toEqual({ released: true });
    try {
      expect(await writing).toEqual({ stored: 60, refused: 0 });
      expect(await fsp.readdir(join(dir, 'tmp'))).toEqual(['w2']);
      expect(writersListed(dir)).toEqual([2]);
      const after = Array.from({ length: 60 }, (_, i) => `after/${i}`);
      expect(await co.write(after)).toEqual({ stored: 60, refused: 0 });
      const all = [...old, ...early, ...during, ...after];
      expect(await missing(owner, all)).toEqual([]);
      expect(await verifyKeys(owner, all)).toEqual({ found: all.length, bad: [] });
      expect(await co.verify(all)).toEqual({ found: all.length, bad: [] });
      expect(await ask({ cmd: 'close' })).toEqual({ closed: true });
      await exited;
      expect(writersListed(dir)).toEqual([]);
      expect(owner.stats().entries).toBe(all.length);
    } finally {
      await stop();
      await owner.close();
    }
  });
});
