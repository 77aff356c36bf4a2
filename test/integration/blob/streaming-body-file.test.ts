/**
 * GrowingBody backed by the disk writer's temp file: memory stays bounded while a reader that fell
 * far behind, and readers created late (even after the commit renamed the file, or after a failed
 * write deleted it), still get every byte.
 */
import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { DiskFs } from '../../../src/blob/disk-fs.js';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { GrowingBody } from '../../../src/blob/streaming-body.js';
import { commitMeta, expectBody, pattern } from '../../contract/blob-store-contract.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openStore(fsOps: Partial<DiskFs> = {}): Promise<DiskBlobStore> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-growing-'));
  const store = await DiskBlobStore.open({ dir, maxBytes: 64 * MiB, maxEntrySize: 16 * MiB, fsOps });
  cleanups.push(async () => {
    await store.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });
  return store;
}

async function collect(reader: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of reader) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('GrowingBody over a disk writer', () => {
  it('serves a far-behind reader and a reader created after commit from the file, memory bounded', async () => {
    const store = await openStore();
    const writer = (await store.begin('video', 3 * MiB))!;
    const body = new GrowingBody({ maxMemoryBytes: 256 * KiB, file: await writer.openReadBack!() });
    const head = collect(body.createReader());
    const laggard = body.createReader(); // not read until the end
    const data = pattern(3 * MiB, 8);
    let peak = 0;
    for (let off = 0; off < data.length; off += 64 * KiB) {
      const chunk = data.subarray(off, off + 64 * KiB);
      await writer.write(chunk);
      body.append(chunk);
      peak = Math.max(peak, body.memoryBytes);
    }
    await writer.commit(commitMeta('video', data.length));
    body.end();
    expect(peak).toBeLessThanOrEqual(256 * KiB + 64 * KiB);
    expect((await head).equals(data)).toBe(true);
    expect((await collect(laggard)).equals(data)).toBe(true);
    expect((await collect(body.createReader())).equals(data)).toBe(true); // temp file renamed by now
    await body.close();
    await expectBody(store, 'video', data);
  });

  it('keeps serving when the store write fails mid-way: file bytes from the deleted temp file, the rest from memory', async () => {
    let budget = Infinity;
    const store = await openStore({
      open: (async (path: string, flags?: string) => {
        const fh: FileHandle = await fsp.open(path, flags);
        if (!String(path).endsWith('.body.part') || flags !== 'wx') return fh;
        const write = fh.write.bind(fh) as (...a: unknown[]) => Promise<unknown>;
        return Object.assign(Object.create(fh) as FileHandle, {
          write: async (...args: unknown[]) => {
            if ((budget -= 64 * KiB) < 0) throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
            return write(...args);
          },
          sync: () => fh.sync(),
          close: () => fh.close(),
        });
      }) as DiskFs['open'],
    });
    budget = 1 * MiB;
    const writer = (await store.begin('video'))!;
    const body = new GrowingBody({ maxMemoryBytes: 512 * KiB, file: await writer.openReadBack!() });
    const laggard = body.createReader();
    const data = pattern(1 * MiB + 256 * KiB, 9);
    let storing = true;
    for (let off = 0; off < data.length; off += 64 * KiB) {
      const chunk = data.subarray(off, off + 64 * KiB);
      if (storing) {
        storing = await writer.write(chunk).then(
          () => true,
          () => false,
        );
        if (!storing) body.detachFile();
      }
      body.append(chunk);
    }
    body.end();
    expect(storing).toBe(false);
    expect(await store.get('video')).toBeUndefined();
    expect((await collect(laggard)).equals(data)).toBe(true);
    await body.close();
  });
});
