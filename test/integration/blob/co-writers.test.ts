/**
 * Several processes writing one disk store: the owner (this process) and co-writers (co-writer.ts,
 * compiled to dist/ by `npm test`, forked and stopped by PID). Distinct and the same keys written
 * at once are all readable by all with the right bytes; the counters match a recount of the
 * index; the owner's eviction keeps the bound while co-writers write; a co-writer killed with
 * SIGKILL in the middle of its writes leaves nothing wrong behind, and starts again.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { DiskIndex } from '../../../src/blob/disk-index.js';
import { DISK_FORMAT_VERSION, allocated, layoutOf } from '../../../src/blob/disk-layout.js';
import { recount as recountRecords } from '../../support/index-records.js';
import { verifyKeys, writeKeys } from './co-writer.js';

const CHILD = fileURLToPath(new URL('../../../dist/test/integration/blob/co-writer.js', import.meta.url));
const built = existsSync(CHILD);
if (!built) console.warn(`co-writer tests skipped: ${CHILD} is missing; run \`npx tsc -p .\` (npm test does) first`);

const KiB = 1024;
const MiB = 1024 * KiB;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Child {
  proc: ChildProcess;
  /** Send a command; resolves with the next message that is not a `committed` report. */
  ask<T>(msg: unknown): Promise<T>;
  committed: string[];
}

/** Starts co-writer `id`; its requests for room go to `owner` (as a cluster's primary passes them on). */
async function startChild(dir: string, id: number, maxBytes: number, segmentSize: number, owner?: DiskBlobStore): Promise<Child> {
  const proc = fork(CHILD, [dir, String(id), String(maxBytes), String(segmentSize)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  cleanups.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      process.kill(proc.pid!, 'SIGKILL');
      await exited;
    }
  });
  const committed: string[] = [];
  let waiting: ((msg: unknown) => void) | undefined;
  const queue: unknown[] = [];
  proc.on('message', (msg: { committed?: string; room?: true }) => {
    if (msg.committed !== undefined) return void committed.push(msg.committed);
    if (msg.room === true) return void owner?.makeRoomForWriters();
    if (waiting !== undefined) {
      const w = waiting;
      waiting = undefined;
      w(msg);
    } else queue.push(msg);
  });
  const next = () =>
    new Promise<unknown>((resolve, reject) => {
      if (queue.length > 0) return resolve(queue.shift());
      waiting = resolve;
      proc.once('exit', (code, signal) => reject(new Error(`co-writer ${id} exited (${code ?? signal}): ${stderr}`)));
    });
  await next(); // { ready: true }
  return {
    proc,
    committed,
    ask: <T>(msg: unknown) => {
      proc.send(msg as object);
      return next() as Promise<T>;
    },
  };
}

async function closeChild(child: Child): Promise<void> {
  const exited = new Promise((resolve) => child.proc.once('exit', resolve));
  await child.ask({ cmd: 'close' });
  await exited;
}

async function newDir(): Promise<string> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-cowriters-'));
  cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function openOwner(dir: string, maxBytes: number, segmentSize: number): Promise<DiskBlobStore> {
  const store = await DiskBlobStore.open({ dir, maxBytes, segmentSize, maxEntrySize: MiB });
  cleanups.push(() => store.close());
  return store;
}

/** The index walked record by record (another view of it), against the counters its state keeps. */
async function recount(dir: string): Promise<{ counted: { entries: number; liveBytes: number; fileBytes: number }; state: { entries: number; liveBytes: number; fileBytes: number; segBytes: number } }> {
  const index = DiskIndex.open({ path: layoutOf(dir).indexPath, readOnly: true, pathOf: (key) => key });
  try {
    const counted = recountRecords(index);
    const s = index.shared.committedState();
    return { counted, state: { entries: s.entries, liveBytes: s.liveBytes, fileBytes: s.fileBytes, segBytes: s.segBytes ?? 0 } };
  } finally {
    await index.close();
  }
}

/** What the segment files take on a file system of 4 KiB blocks, and their names. */
async function segmentFiles(dir: string): Promise<{ names: string[]; bytes: number }> {
  const segDir = layoutOf(dir).segmentDir;
  const names = (await fsp.readdir(segDir)).sort();
  let bytes = 0;
  for (const name of names) bytes += allocated((await fsp.stat(join(segDir, name))).size);
  return { names, bytes };
}

async function allocatedBytes(path: string): Promise<number> {
  const st = await fsp.stat(path);
  if (!st.isDirectory()) return st.blocks * 512;
  let total = 0;
  for (const name of await fsp.readdir(path)) total += await allocatedBytes(join(path, name));
  return total;
}

function interleave(a: string[], b: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) out.push(a[i]!);
    if (i < b.length) out.push(b[i]!);
  }
  return out;
}

const keysOf = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe.skipIf(!built)('DiskBlobStore written by several processes', () => {
  it('stores distinct and the same keys from three processes at once, each readable by all with its bytes, counters exact', async () => {
    const dir = await newDir();
    const owner = await openOwner(dir, 256 * MiB, 256 * KiB);
    const kids = [await startChild(dir, 1, 256 * MiB, 256 * KiB), await startChild(dir, 2, 256 * MiB, 256 * KiB)];
    const same = keysOf('same/', 150);
    const mine = (w: number) => interleave(keysOf(`w${w}/`, 300), same);
    const results = await Promise.all([writeKeys(owner, mine(0), 0), kids[0]!.ask({ cmd: 'write', keys: mine(1) }), kids[1]!.ask({ cmd: 'write', keys: mine(2) })]);
    expect(results).toEqual([
      { stored: 450, refused: 0 },
      { stored: 450, refused: 0 },
      { stored: 450, refused: 0 },
    ]);
    const all = [...keysOf('w0/', 300), ...keysOf('w1/', 300), ...keysOf('w2/', 300), ...same];
    // Committed by the others: visible to the owner once LMDB has their transactions (they answered after their commits).
    expect(await verifyKeys(owner, all)).toEqual({ found: 1050, bad: [] });
    for (const kid of kids) expect(await kid.ask({ cmd: 'verify', keys: all })).toEqual({ found: 1050, bad: [] });
    for (const kid of kids) await closeChild(kid);
    await owner.flush();
    expect(owner.stats().entries).toBe(1050);
    const { counted, state } = await recount(dir);
    expect(state).toMatchObject(counted);
    expect(counted.entries).toBe(1050);
    // Each writer appended to segments of its own; what they hold is within what is counted.
    const segs = await segmentFiles(dir);
    expect(segs.names.some((n) => n.endsWith('-w1.seg'))).toBe(true);
    expect(segs.names.some((n) => n.endsWith('-w2.seg'))).toBe(true);
    expect(segs.names.some((n) => /^\d{10}\.seg$/.test(n))).toBe(true);
    expect(state.segBytes).toBeGreaterThanOrEqual(segs.bytes);
    expect(state.segBytes).toBeLessThanOrEqual(segs.bytes + segs.names.length * 4096);
  });

  it('deletes and refreshes, from a co-writer, what the owner stored: the owner sees both, counters exact', async () => {
    const dir = await newDir();
    const owner = await openOwner(dir, 256 * MiB, 256 * KiB);
    const keys = keysOf('o/', 120);
    expect(await writeKeys(owner, keys, 0)).toEqual({ stored: 120, refused: 0 });
    const kid = await startChild(dir, 1, 256 * MiB, 256 * KiB);
    expect(await kid.ask({ cmd: 'delete', keys: keys.slice(0, 40) })).toEqual({ deleted: 40 });
    expect(await kid.ask({ cmd: 'refresh', keys: keys.slice(40, 80), status: 203 })).toEqual({ refreshed: 40 });
    for (const key of keys.slice(0, 40)) expect(await owner.get(key)).toBeUndefined();
    for (const key of keys.slice(40, 80)) expect((await owner.get(key))?.meta.status).toBe(203);
    for (const key of keys.slice(80)) expect((await owner.get(key))?.meta.status).toBe(200);
    // Refreshed, the bytes are the same: still served right.
    expect(await verifyKeys(owner, keys)).toEqual({ found: 80, bad: [] });
    await closeChild(kid); // its removals of body files are done once it closed
    // Deleted body files (one in ten is a file) are gone from the disk too.
    const files = await allocatedBytes(layoutOf(dir).fileDir);
    await owner.flush();
    expect(owner.stats().entries).toBe(80);
    const { counted, state } = await recount(dir);
    expect(state).toMatchObject(counted);
    expect(files).toBe(counted.fileBytes);
  });

  it('keeps what the disk holds within maxBytes while co-writers write, the owner evicting, and never serves wrong bytes', async () => {
    const dir = await newDir();
    const maxBytes = 4 * MiB;
    const owner = await openOwner(dir, maxBytes, 128 * KiB);
    const kids = [await startChild(dir, 1, maxBytes, 128 * KiB, owner), await startChild(dir, 2, maxBytes, 128 * KiB, owner)];
    // About 7 MiB from each writer through a 4 MiB cache.
    const n = 600;
    const results = await Promise.all([writeKeys(owner, keysOf('w0/', n), 0), kids[0]!.ask<{ stored: number }>({ cmd: 'write', keys: keysOf('w1/', n) }), kids[1]!.ask<{ stored: number }>({ cmd: 'write', keys: keysOf('w2/', n) })]);
    for (const r of results) expect(r.stored).toBeGreaterThan(n / 2);
    const all = [...keysOf('w0/', n), ...keysOf('w1/', n), ...keysOf('w2/', n)];
    const seen = await verifyKeys(owner, all);
    expect(seen.bad).toEqual([]);
    expect(seen.found).toBeGreaterThan(100);
    expect(seen.found).toBeLessThan(3 * n);
    const fromKid = await kids[0]!.ask<{ found: number; bad: string[] }>({ cmd: 'verify', keys: all });
    expect(fromKid.bad).toEqual([]);
    for (const kid of kids) await closeChild(kid);
    await owner.flush();
    const stats = owner.stats();
    expect(stats.evictions).toBeGreaterThan(n);
    expect(stats.diskBytes).toBeLessThanOrEqual(maxBytes);
    expect(await allocatedBytes(join(dir, `v${DISK_FORMAT_VERSION}`))).toBeLessThanOrEqual(maxBytes);
    const { counted, state } = await recount(dir);
    expect(state).toMatchObject(counted);
    expect(stats.entries).toBe(counted.entries);
    // Evicted whole: no segment of any writer older than the oldest generation left.
    const segs = await segmentFiles(dir);
    expect(state.segBytes).toBeGreaterThanOrEqual(segs.bytes);
  });

  it('after a co-writer is killed with SIGKILL mid-write: what it committed is served right, nothing else is served wrong, counters hold, and it starts again', async () => {
    const dir = await newDir();
    const owner = await openOwner(dir, 256 * MiB, 256 * KiB);
    const kid = await startChild(dir, 1, 256 * MiB, 256 * KiB);
    const writing = writeKeys(owner, keysOf('o/', 400), 0);
    kid.proc.send({ cmd: 'fill', prefix: 'k/' });
    await expect.poll(() => kid.committed.length, { timeout: 20_000, interval: 5 }).toBeGreaterThan(300);
    const exited = new Promise((resolve) => kid.proc.once('exit', (_code, signal) => resolve(signal)));
    process.kill(kid.proc.pid!, 'SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const committed = [...kid.committed];
    expect(await writing).toEqual({ stored: 400, refused: 0 });
    // Every commit it reported is there with its bytes; those it was writing are there whole or not at all.
    expect(await verifyKeys(owner, committed)).toEqual({ found: committed.length, bad: [] });
    const inFlight = await verifyKeys(owner, keysOf('k/', committed.length + 64).slice(committed.length));
    expect(inFlight.bad).toEqual([]);
    await owner.flush();
    const first = await recount(dir);
    expect(first.state).toMatchObject(first.counted);

    // The same id again: the dead writer's lock is taken over, and it appends after what its segments hold.
    const again = await startChild(dir, 1, 256 * MiB, 256 * KiB);
    expect(await again.ask({ cmd: 'write', keys: keysOf('k2/', 200) })).toEqual({ stored: 200, refused: 0 });
    await closeChild(again);
    const everything = [...committed, ...keysOf('k2/', 200), ...keysOf('o/', 400)];
    expect(await verifyKeys(owner, everything)).toEqual({ found: everything.length, bad: [] });
    await owner.close();
    // The owner's next open counts the segment files anew: the bytes the killed writer left count too.
    const reopened = await openOwner(dir, 256 * MiB, 256 * KiB);
    const after = await recount(dir);
    expect(after.state).toMatchObject(after.counted);
    expect(after.state.segBytes).toBe((await segmentFiles(dir)).bytes);
    expect(await verifyKeys(reopened, everything)).toEqual({ found: everything.length, bad: [] });
  });
});
