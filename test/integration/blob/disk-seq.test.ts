/**
 * Write sequence numbers (disk-index-state.ts): every writer of one index hands out numbers from
 * blocks it took from the shared state, so no two writers ever hand out the same one, whichever
 * opened first, across many blocks and reopens. The next block is taken ahead in an ordinary
 * batch, so a hold (another process opening the index) holds it too; a block is taken at once, in
 * a synchronous transaction no hold stops, only when the one taken ahead has not committed.
 */
import { fork } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from 'lmdb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { DiskIndex, type IndexRecord } from '../../../src/blob/disk-index.js';
import { layoutOf } from '../../../src/blob/disk-layout.js';
import { writeKeys } from './co-writer.js';

// The compiled helper process (built by npm test's tsc) a co-writer runs in: an owner and a
// co-writer in one process can wait on each other for LMDB's write lock (a lock between processes).
const CHILD = join(process.cwd(), 'dist', 'test', 'integration', 'blob', 'co-writer.js');

const MiB = 1024 * 1024;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function newDir(): Promise<string> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-disk-seq-'));
  cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function open(dir: string, writer: number, seqBlock?: number): Promise<DiskBlobStore> {
  const store = await DiskBlobStore.open({ dir, maxBytes: 64 * MiB, maxEntrySize: MiB, ...(writer === 0 ? {} : { writer }), ...(seqBlock === undefined ? {} : { seqBlock }) });
  cleanups.push(() => store.close());
  return store;
}

/** Co-writer `id` in a process of its own, with `seqBlock`: `ask` sends a command and resolves with its answer. */
async function startCoWriter(dir: string, id: number, seqBlock: number): Promise<{ ask(msg: object): Promise<unknown> }> {
  const proc = fork(CHILD, [`--seq-block=${seqBlock}`, dir, String(id), String(64 * MiB), String(4 * MiB)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  cleanups.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid!, 'SIGKILL');
    await exited;
  });
  const failed = exited.then(() => Promise.reject(new Error(`co-writer ${id} exited: ${stderr}`)));
  failed.catch(() => undefined);
  const next = () => Promise.race([new Promise<unknown>((resolve) => proc.once('message', resolve)), failed]);
  await next(); // { ready: true }
  return {
    ask: (msg) => {
      const answer = next();
      proc.send(msg);
      return answer;
    },
  };
}

/** Every committed record's write sequence number by key, and the next number the state would hand out. */
function committedSeqs(dir: string): { seqs: Map<string, number>; next: number } {
  const index = DiskIndex.open({ path: layoutOf(dir).indexPath, readOnly: true, pathOf: (key) => key });
  try {
    const seqs = new Map<string, number>();
    let after: Buffer | undefined;
    for (;;) {
      const { records, last } = index.scan(after, 1000);
      for (const rec of records) seqs.set(rec.key, rec.seq);
      if (last === undefined) break;
      after = last;
    }
    return { seqs, next: index.shared.committedState().seq };
  } finally {
    void index.close();
  }
}

/** A new index taking blocks of `seqBlock`, with its synchronous state transactions counted. */
async function newIndex(seqBlock: number): Promise<{ index: DiskIndex; syncs: () => number }> {
  const dir = await newDir();
  const index = DiskIndex.open({ path: join(dir, 'index.mdb'), readOnly: false, pathOf: (key) => key, seqBlock });
  cleanups.push(() => index.close());
  // As its owner's open does (disk-open.ts): the first block, into the state at the first commit.
  index.shared.takeSeqBlock(index.shared.committedState());
  const spy = vi.spyOn(index.shared, 'updateStateSync');
  return { index, syncs: () => spy.mock.calls.length };
}

function record(key: string, seq: number): IndexRecord {
  const meta = { version: 1, key, size: 10, status: 200, headers: [] as [string, string][], requestTime: 1, responseTime: 2, storedAt: 3 };
  return { key, g: 1, seq, off: 0, bs: 65536, crc: [7], cost: 110, meta };
}

/** `n` numbers from `index`, each checked below the committed state's next one: no other writer can take it. */
function take(index: DiskIndex, n: number): number[] {
  return Array.from({ length: n }, () => {
    const seq = index.nextSeq();
    expect(seq).toBeLessThan(index.shared.committedState().seq);
    return seq;
  });
}

const keysOf = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('write sequence numbers', () => {
  it('differ between the owner of a new index and a co-writer opened after it, before the owner committed anything', async () => {
    const dir = await newDir();
    const owner = await open(dir, 0);
    const co = await open(dir, 1);
    expect(await writeKeys(co, ['c'], 1)).toEqual({ stored: 1, refused: 0 });
    expect(await writeKeys(owner, ['o'], 0)).toEqual({ stored: 1, refused: 0 });
    const { seqs, next } = committedSeqs(dir);
    // The owner's first block, taken at its open, starts at 0; the co-writer's after it.
    expect(seqs.get('o')).toBe(0);
    expect(seqs.get('c')).toBe(2 ** 20);
    expect(next).toBe(2 * 2 ** 20);
  });

  it('are never the same twice in two writers that cross many blocks, at once and across a reopen', async () => {
    const dir = await newDir();
    const block = 4;
    const owner = await open(dir, 0, block);
    let co = await startCoWriter(dir, 1, block);
    const first = await Promise.all([writeKeys(owner, keysOf('o/', 120), 0), co.ask({ cmd: 'write', keys: keysOf('c/', 120) })]);
    expect(first).toEqual([{ stored: 120, refused: 0 }, { stored: 120, refused: 0 }]);
    // The co-writer's reopen takes a block at its registration.
    expect(await co.ask({ cmd: 'close' })).toEqual({ closed: true });
    co = await startCoWriter(dir, 1, block);
    const second = await Promise.all([writeKeys(owner, keysOf('o2/', 40), 0), co.ask({ cmd: 'write', keys: keysOf('c2/', 40) })]);
    expect(second).toEqual([{ stored: 40, refused: 0 }, { stored: 40, refused: 0 }]);
    const { seqs, next } = committedSeqs(dir);
    expect(seqs.size).toBe(320);
    const values = [...seqs.values()];
    expect(new Set(values).size).toBe(320);
    // Every number handed out came from a block the state gave: below its next one.
    expect(Math.max(...values)).toBeLessThan(next);
    expect(next).toBeGreaterThanOrEqual(320);
  });

  it('take the next block ahead in a batch: a hold holds it, and the block ends into it with no synchronous transaction', async () => {
    const { index, syncs } = await newIndex(8);
    // A new index's first commit writes its owner's first block [0, 8) into the state.
    await index.put(record('a', index.nextSeq()));
    expect(index.shared.committedState().seq).toBe(8);
    // Past half the block, the next one is taken in the batch of the next change.
    expect(take(index, 4)).toEqual([1, 2, 3, 4]);
    await index.put(record('b', index.nextSeq()));
    expect(index.shared.committedState().seq).toBe(16);

    const release = await index.shared.hold(60_000);
    // Through the end of the block into the one taken ahead, and past its half: the block taken
    // ahead of it waits for the release, as does every other commit.
    expect(take(index, 10)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    const held = index.put(record('c', 15));
    await new Promise((r) => setTimeout(r, 50));
    expect(index.shared.committedState().seq).toBe(16);
    expect(syncs()).toBe(0);
    release();
    await held;
    expect(index.shared.committedState().seq).toBe(24);
    expect(take(index, 8)).toEqual([16, 17, 18, 19, 20, 21, 22, 23]);
    expect(syncs()).toBe(0);
  });

  it('take a block at once, in a synchronous transaction, only when the block taken ahead has not committed by the end of the current one', async () => {
    const { index, syncs } = await newIndex(8);
    await index.put(record('a', index.nextSeq()));
    const release = await index.shared.hold(60_000);
    // The block taken ahead (asked at 4) is held: the end of the block takes one at once.
    expect(take(index, 7)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(syncs()).toBe(0);
    expect(take(index, 1)).toEqual([8]);
    expect(syncs()).toBe(1);
    expect(index.shared.committedState().seq).toBe(16);
    // At the release the one taken ahead commits after it, and comes next.
    release();
    await index.put(record('b', 9));
    expect(index.shared.committedState().seq).toBe(24);
    expect(take(index, 8)).toEqual([9, 10, 11, 12, 13, 14, 15, 16]);
    expect(syncs()).toBe(1);
  });

  it('keep no block taken ahead in a batch whose state was not written: the block is asked for again', async () => {
    const { index, syncs } = await newIndex(8);
    await index.put(record('a', index.nextSeq()));
    expect(take(index, 3)).toEqual([1, 2, 3]);
    // The state's write fails inside the batch that takes the next block ahead: the batch fails.
    const stateDb = (index.shared as unknown as { db: Database })['db'];
    vi.spyOn(stateDb, 'put').mockImplementationOnce(() => {
      throw new Error('no space left');
    });
    await expect(index.put(record('b', index.nextSeq()))).rejects.toThrow('no space left');
    expect(index.shared.committedState().seq).toBe(8);
    // Held, the block asked for again cannot commit in time: the end of the block takes one at once, after 8.
    const release = await index.shared.hold(60_000);
    expect(take(index, 4)).toEqual([5, 6, 7, 8]);
    expect(syncs()).toBe(1);
    release();
    await index.put(record('c', 9));
    expect(index.shared.committedState().seq).toBe(24);
    expect(take(index, 8)).toEqual([9, 10, 11, 12, 13, 14, 15, 16]);
  });
});
