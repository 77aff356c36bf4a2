/**
 * Write sequence numbers (disk-index-state.ts): every writer of one index hands out numbers from
 * blocks it took from the shared state, so no two writers ever hand out the same one, whichever
 * opened first, across many blocks and reopens.
 */
import { fork } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { DiskIndex } from '../../../src/blob/disk-index.js';
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
});
