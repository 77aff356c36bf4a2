/**
 * A full or failing disk never crashes anything: a write that fails is dropped (not stored), the
 * temp file is gone, the previous version is still served, and the store keeps working. Failures
 * are injected through `fsOps`; one test also fills a real, tiny tmpfs when mounting is allowed.
 */
import { execFileSync } from 'node:child_process';
import { writevSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DiskFs } from '../../../src/blob/disk-fs.js';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { isCdnError } from '../../../src/errors.js';
import { commitMeta, expectBody, expectCode, pattern, put } from '../../contract/blob-store-contract.js';
import { DISK_FORMAT_VERSION } from '../../../src/blob/disk-layout.js';

/** The folder of the current format in a cache directory. */
const DATA_DIR = `v${DISK_FORMAT_VERSION}`;

const MiB = 1024 * 1024;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code });
}

/** A FileHandle whose `method` throws `code` while `fault.on` says so. */
function faultyHandle(fh: FileHandle, method: 'write' | 'sync', code: string, fault: { on: () => boolean }): FileHandle {
  return new Proxy(fh, {
    get(target, prop) {
      if (prop === method) {
        return async (...args: unknown[]) => {
          if (fault.on()) throw errno(code);
          return (target[method] as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function setup(fsOps: Partial<DiskFs>) {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-faults-'));
  const store = await DiskBlobStore.open({ dir, maxBytes: 64 * MiB, maxEntrySize: 16 * MiB, fsOps });
  cleanups.push(async () => {
    await store.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });
  await put(store, 'old', pattern(4000, 1));
  return { dir, store };
}

async function bodyFiles(dir: string): Promise<string[]> {
  const root = join(dir, DATA_DIR, 'files');
  const out: string[] = [];
  for (const shard of await fsp.readdir(root)) out.push(...(await fsp.readdir(join(root, shard))));
  return out;
}

describe('DiskBlobStore under I/O failures', () => {
  it('drops a write that hits ENOSPC and keeps working', async () => {
    let budget = Infinity;
    const fsOps: Partial<DiskFs> = {
      open: (async (path: string, flags?: string) => {
        const fh = await fsp.open(path, flags);
        if (!String(path).endsWith('.body.part')) return fh;
        return faultyHandle(fh, 'write', 'ENOSPC', { on: () => (budget -= 64 * 1024) < 0 });
      }) as DiskFs['open'],
    };
    const { dir, store } = await setup(fsOps);
    budget = 1 * MiB;
    const writer = (await store.begin('k', 4 * MiB))!;
    let failure: unknown;
    for (let off = 0; off < 4 * MiB && failure === undefined; off += 64 * 1024) {
      await writer.write(pattern(64 * 1024, off)).catch((err: unknown) => (failure = err));
    }
    expect(isCdnError(failure) && failure.code).toBe('blob_not_stored');
    expect(((failure as Error).cause as NodeJS.ErrnoException).code).toBe('ENOSPC');
    await expectCode(writer.commit(commitMeta('k', 4 * MiB)), 'blob_writer_closed');
    expect(store.stats()).toMatchObject({ entries: 1, storeErrors: 1, openWriters: 0 });
    expect(await fsp.readdir(join(dir, 'tmp'))).toEqual([]);
    expect(await store.get('k')).toBeUndefined();
    await expectBody(store, 'old', pattern(4000, 1));
    budget = Infinity;
    await put(store, 'k', pattern(2 * MiB, 3));
    await expectBody(store, 'k', pattern(2 * MiB, 3));
  });

  it('keeps the previous version when a body file cannot be renamed into place, with no residue', async () => {
    let failRename = false;
    const fsOps: Partial<DiskFs> = {
      rename: (async (from: string, to: string) => {
        if (failRename && to.includes('/files/')) throw errno('EIO');
        return fsp.rename(from, to);
      }) as DiskFs['rename'],
    };
    const { dir, store } = await setup(fsOps);
    failRename = true;
    const writer = (await store.begin('old'))!;
    await writer.write(pattern(900_000, 2));
    await expectCode(writer.commit(commitMeta('old', 900_000)), 'blob_not_stored');
    expect(store.stats()).toMatchObject({ entries: 1, storeErrors: 1, openWriters: 0 });
    expect(await bodyFiles(dir)).toEqual([]);
    expect(await fsp.readdir(join(dir, 'tmp'))).toEqual([]);
    await expectBody(store, 'old', pattern(4000, 1));
    failRename = false;
    await put(store, 'old', pattern(900_000, 2));
    await expectBody(store, 'old', pattern(900_000, 2));
  });

  it('keeps the previous version when a segment write fails', async () => {
    let failWrites = false;
    const fsOps: Partial<DiskFs> = {
      writevSync: ((...args: Parameters<DiskFs['writevSync']>) => {
        if (failWrites) throw errno('EIO');
        return writevSync(...args);
      }) as DiskFs['writevSync'],
    };
    const { store } = await setup(fsOps);
    failWrites = true;
    const writer = (await store.begin('old'))!;
    await writer.write(pattern(3000, 2));
    await expectCode(writer.commit(commitMeta('old', 3000)), 'blob_not_stored');
    expect(store.stats()).toMatchObject({ entries: 1, storeErrors: 1, openWriters: 0 });
    await expectBody(store, 'old', pattern(4000, 1));
    failWrites = false;
    await put(store, 'old', pattern(3000, 2));
    await expectBody(store, 'old', pattern(3000, 2));
  });

  it('finishes a segment append that the kernel takes in short writes', async () => {
    let calls = 0;
    const fsOps: Partial<DiskFs> = {
      // At most 1000 bytes per call, as a pwritev interrupted by a signal may write.
      writevSync: ((fd: number, buffers: NodeJS.ArrayBufferView[], position?: number) => {
        calls += 1;
        const flat = Buffer.concat(buffers.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
        return writevSync(fd, [flat.subarray(0, 1000)], position);
      }) as DiskFs['writevSync'],
    };
    const { store } = await setup(fsOps);
    calls = 0;
    await put(store, 'k', pattern(5000, 7));
    expect(calls).toBeGreaterThan(5);
    await expectBody(store, 'k', pattern(5000, 7));
    await expectBody(store, 'old', pattern(4000, 1));
  });

  it('answers begin() with undefined when no temp file can be created for a large body', async () => {
    let failOpen = false;
    const fsOps: Partial<DiskFs> = {
      open: (async (path: string, flags?: string) => {
        if (failOpen && String(path).endsWith('.body.part')) throw errno('EMFILE');
        return fsp.open(path, flags);
      }) as DiskFs['open'],
    };
    const { store } = await setup(fsOps);
    failOpen = true;
    expect(await store.begin('k', MiB)).toBeUndefined();
    expect(store.stats().storeErrors).toBe(1);
    await put(store, 'small', pattern(10)); // small bodies need no temp file
    failOpen = false;
    await put(store, 'k', pattern(MiB));
    await expectBody(store, 'k', pattern(MiB));
    await expectBody(store, 'small', pattern(10));
  });

  it('survives a real full file system (tiny tmpfs; skipped where mounting is not allowed)', async (ctx) => {
    const mnt = await fsp.mkdtemp(join(tmpdir(), 'anycdn-tmpfs-'));
    cleanups.push(() => fsp.rm(mnt, { recursive: true, force: true }));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      return ctx.skip('cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)');
    }
    cleanups.push(async () => void execFileSync('umount', [mnt]));
    const store = await DiskBlobStore.open({ dir: join(mnt, 'cache'), maxBytes: 64 * MiB, maxEntrySize: 16 * MiB });
    cleanups.push(() => store.close());
    const writer = (await store.begin('big'))!;
    let failure: unknown;
    for (let off = 0; off < 4 * MiB && failure === undefined; off += 64 * 1024) {
      await writer.write(pattern(64 * 1024, off)).catch((err: unknown) => (failure = err));
    }
    expect(isCdnError(failure) && failure.code).toBe('blob_not_stored');
    expect(((failure as Error).cause as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(await fsp.readdir(join(mnt, 'cache', 'tmp'))).toEqual([]);
    expect(store.stats()).toMatchObject({ entries: 0, storeErrors: 1 });
    await put(store, 'small', pattern(100_000, 5));
    await expectBody(store, 'small', pattern(100_000, 5));
  });
});
