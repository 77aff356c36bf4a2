import { spawnSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobStore, type DiskBlobStoreOptions } from '../../../src/blob/disk-blob-store.js';
import { hashKey } from '../../../src/blob/disk-layout.js';
import { isCdnError } from '../../../src/errors.js';
import { commitMeta, expectBody, expectCode, pattern, put, readBody } from '../../contract/blob-store-contract.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const dirs: string[] = [];
const stores: DiskBlobStore[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await fsp.rm(d, { recursive: true, force: true });
});

async function newDir(): Promise<string> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-disk-'));
  dirs.push(dir);
  return dir;
}

async function openStore(dir: string, options: Partial<DiskBlobStoreOptions> = {}): Promise<DiskBlobStore> {
  const store = await DiskBlobStore.open({ dir, maxBytes: 64 * MiB, maxEntrySize: 16 * MiB, ...options });
  stores.push(store);
  return store;
}

async function closeStore(store: DiskBlobStore): Promise<void> {
  await store.close();
  stores.splice(stores.indexOf(store), 1);
}

function shardOf(dir: string, key: string): string {
  const hash = hashKey(key);
  return join(dir, 'v1', hash.slice(0, 2));
}

/** Paths of `key`'s record and body. */
async function filesOf(dir: string, key: string): Promise<{ meta: string; body: string; names: string[] }> {
  const hash = hashKey(key);
  const names = (await fsp.readdir(shardOf(dir, key))).filter((n) => n.startsWith(hash)).sort();
  const body = names.find((n) => n.endsWith('.body'));
  return { meta: join(shardOf(dir, key), `${hash}.meta`), body: join(shardOf(dir, key), body ?? 'none'), names };
}

async function exists(path: string): Promise<boolean> {
  return fsp.stat(path).then(
    () => true,
    () => false,
  );
}

/** Put, close, tamper with the files, reopen. */
async function tamper(key: string, body: Buffer, change: (files: { meta: string; body: string }) => Promise<void>) {
  const dir = await newDir();
  const first = await openStore(dir);
  await put(first, key, body);
  await put(first, 'bystander', pattern(5000, 99));
  await closeStore(first);
  const files = await filesOf(dir, key);
  await change(files);
  const store = await openStore(dir);
  return { dir, store, files };
}

describe('DiskBlobStore on disk', () => {
  it('writes the documented layout: record JSON with checksums, body bytes, empty tmp, LOCK', async () => {
    const dir = await newDir();
    const store = await openStore(dir, { blockSize: 64 * KiB });
    const body = pattern(100 * KiB, 5);
    const stored = await put(store, 'photos/cat.jpg?w=400', body);
    const hash = hashKey('photos/cat.jpg?w=400');
    const { names, meta, body: bodyFile } = await filesOf(dir, 'photos/cat.jpg?w=400');
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(new RegExp(`^${hash}\\.[0-9a-f]{16}\\.body$`));
    expect(names[1]).toBe(`${hash}.meta`);
    const record = JSON.parse(await fsp.readFile(meta, 'utf8'));
    expect(record).toEqual({
      format: 'anycdn-blob',
      version: 1,
      body: names[0],
      blockSize: 64 * KiB,
      blockCrc32: [0, 1].map((i) => crc32(body.subarray(i * 64 * KiB, (i + 1) * 64 * KiB))),
      meta: stored,
    });
    expect((await fsp.readFile(bodyFile)).equals(body)).toBe(true);
    expect(await fsp.readdir(join(dir, 'tmp'))).toEqual([]);
    expect(JSON.parse(await fsp.readFile(join(dir, 'LOCK'), 'utf8')).pid).toBe(process.pid);
    await closeStore(store);
    expect(await exists(join(dir, 'LOCK'))).toBe(false);
  });

  const dropCases: [string, (f: { meta: string; body: string }) => Promise<void>, string | RegExp][] = [
    ['a record that is not JSON', (f) => fsp.writeFile(f.meta, '{"format":"anycdn-blob","vers'), 'record is not JSON'],
    ['a truncated body', (f) => fsp.truncate(f.body, 1000), 'body has 1000 bytes, record says 20000'],
    ['a zero-byte body', (f) => fsp.truncate(f.body, 0), 'body has 0 bytes, record says 20000'],
    ['a missing body', (f) => fsp.unlink(f.body), /^body missing \(ENOENT\)$/],
    ['a record of an unknown version', async (f) => fsp.writeFile(f.meta, (await fsp.readFile(f.meta, 'utf8')).replace('"version":1,', '"version":9,')), 'unsupported record version 9'],
    ['a record with a bad checksum list', async (f) => fsp.writeFile(f.meta, (await fsp.readFile(f.meta, 'utf8')).replace(/"blockCrc32":\[\d+\]/, '"blockCrc32":[]')), 'bad block checksums'],
    ['a record whose key does not hash to its name', async (f) => fsp.writeFile(f.meta, (await fsp.readFile(f.meta, 'utf8')).replace('"key":"victim"', '"key":"victin"')), 'key does not hash to the file name'],
  ];
  for (const [what, change, reason] of dropCases) {
    it(`drops ${what} at open, with its files, and keeps the rest`, async () => {
      const { dir, store, files } = await tamper('victim', pattern(20_000, 1), change);
      expect(await store.get('victim')).toBeUndefined();
      expect(store.keys()).toEqual(['bystander']);
      expect(store.loadReport.dropped).toHaveLength(1);
      expect(store.loadReport.dropped[0]!.file).toBe(files.meta);
      expect(store.loadReport.dropped[0]!.reason).toMatch(reason);
      expect((await filesOf(dir, 'victim')).names).toEqual([]);
      await expectBody(store, 'bystander', pattern(5000, 99));
    });
  }

  it('never serves a small body whose bytes were altered: the read drops it', async () => {
    const body = pattern(20_000, 1);
    const { dir, store } = await tamper('victim', body, async (f) => {
      const altered = Buffer.from(body);
      altered[12_345] = altered[12_345]! ^ 0x01;
      await fsp.writeFile(f.body, altered);
    });
    expect(store.keys().sort()).toEqual(['bystander', 'victim']); // same size: only a read can tell
    expect(await store.get('victim')).toBeUndefined();
    expect(store.stats()).toMatchObject({ entries: 1, corruptDropped: 1 });
    expect(store.keys()).toEqual(['bystander']);
    await expect.poll(async () => (await filesOf(dir, 'victim')).names, { timeout: 5000 }).toEqual([]);
  });

  it('fails a stream before the first corrupt block of a large body, serving only verified bytes', async () => {
    const body = pattern(3 * MiB, 2);
    const badAt = 2 * MiB + 100_000; // in block 8 (256 KiB blocks)
    const { dir, store } = await tamper('victim', body, async (f) => {
      const fh = await fsp.open(f.body, 'r+');
      await fh.write(Buffer.from([body[badAt]! ^ 0xff]), 0, 1, badAt);
      await fh.close();
    });
    const entry = (await store.get('victim'))!;
    expect(entry.data).toBeUndefined();
    expect((await readBody(entry, { start: 0, end: 999 })).equals(body.subarray(0, 1000))).toBe(true);
    const received: Buffer[] = [];
    const error = await new Promise<unknown>((resolve) => {
      const stream = entry.open();
      stream.on('data', (c: Buffer) => received.push(c));
      stream.on('error', resolve);
      stream.on('end', () => resolve(undefined));
    });
    expect(isCdnError(error) && error.code).toBe('blob_corrupt');
    const got = Buffer.concat(received);
    expect(got.length).toBe(8 * 256 * KiB);
    expect(got.equals(body.subarray(0, got.length))).toBe(true);
    expect(await store.get('victim')).toBeUndefined();
    expect(store.stats().corruptDropped).toBe(1);
    await expect.poll(async () => (await filesOf(dir, 'victim')).names, { timeout: 5000 }).toEqual([]);
  });

  it('sweeps temp files and unreferenced bodies at open', async () => {
    const dir = await newDir();
    const first = await openStore(dir);
    await put(first, 'keep', pattern(3000, 1));
    await closeStore(first);
    const keep = await filesOf(dir, 'keep');
    const orphan = join(shardOf(dir, 'lost'), `${hashKey('lost')}.0123456789abcdef.body`);
    const staleGen = join(shardOf(dir, 'keep'), `${hashKey('keep')}.fedcba9876543210.body`);
    await fsp.writeFile(orphan, 'left by a crash between the two renames');
    await fsp.writeFile(staleGen, 'old generation');
    await fsp.writeFile(join(dir, 'tmp', 'x.body.part'), pattern(5000));
    await fsp.writeFile(join(dir, 'tmp', 'y.meta.part'), '{');
    const store = await openStore(dir);
    expect(store.loadReport).toEqual({ entries: 1, dropped: [], orphanBodies: 2 });
    expect(await fsp.readdir(join(dir, 'tmp'))).toEqual([]);
    expect(await exists(orphan)).toBe(false);
    expect(await exists(staleGen)).toBe(false);
    expect((await filesOf(dir, 'keep')).names).toEqual(keep.names);
    await expectBody(store, 'keep', pattern(3000, 1));
  });

  it('restores recency from record mtimes and evicts down to a smaller maxBytes at open', async () => {
    const dir = await newDir();
    const first = await openStore(dir);
    for (const k of ['a', 'b', 'c']) await put(first, k, pattern(300 * KiB, k.charCodeAt(0)));
    await closeStore(first);
    const at = (s: number) => new Date(1_700_000_000_000 + s * 1000);
    await fsp.utimes((await filesOf(dir, 'c')).meta, at(1), at(1));
    await fsp.utimes((await filesOf(dir, 'a')).meta, at(2), at(2));
    await fsp.utimes((await filesOf(dir, 'b')).meta, at(3), at(3));
    const store = await openStore(dir, { maxBytes: MiB, maxEntrySize: 512 * KiB });
    await put(store, 'd', pattern(300 * KiB, 4));
    expect(store.keys()).toEqual(['a', 'b', 'd']);
    await closeStore(store);
    const small = await openStore(dir, { maxBytes: 700 * KiB, maxEntrySize: 512 * KiB });
    expect(small.keys()).toEqual(['b', 'd']);
    expect(small.stats()).toMatchObject({ entries: 2, evictions: 1 });
    await expect.poll(async () => (await filesOf(dir, 'a')).names, { timeout: 5000 }).toEqual([]);
  });

  it('keeps a stream opened before an overwrite on the old bytes; a later open fails with blob_gone', async () => {
    const dir = await newDir();
    const store = await openStore(dir);
    const v1 = pattern(2 * MiB, 1);
    await put(store, 'k', v1);
    const entry = (await store.get('k'))!;
    const early = entry.open();
    const first = await new Promise<Buffer>((resolve) => early.once('data', resolve));
    early.pause();
    await put(store, 'k', pattern(2 * MiB, 2));
    const rest: Buffer[] = [first];
    for await (const c of early) rest.push(c as Buffer);
    expect(Buffer.concat(rest).equals(v1)).toBe(true);
    await expectCode(readBody(entry), 'blob_gone');
    await expectBody(store, 'k', pattern(2 * MiB, 2));
  });

  it('refuses a directory held by a live process and takes over a stale lock', async () => {
    const dir = await newDir();
    const store = await openStore(dir);
    await expectCode(DiskBlobStore.open({ dir, maxBytes: MiB }), 'blob_store_locked');
    await closeStore(store);
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    await fsp.writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: dead, start: null }));
    await closeStore(await openStore(dir));
    await fsp.writeFile(join(dir, 'LOCK'), '');
    await openStore(dir);
  });

  it('refuses options without bounds, naming them', async () => {
    const dir = await newDir();
    const fieldOf = (p: Promise<unknown>) => p.then(() => 'opened', (e: unknown) => (isCdnError(e) ? e.field : String(e)));
    expect(await fieldOf(DiskBlobStore.open({ dir } as DiskBlobStoreOptions))).toBe('maxBytes');
    expect(await fieldOf(DiskBlobStore.open({ dir, maxBytes: 10, maxEntrySize: 11 }))).toBe('maxEntrySize');
    expect(await fieldOf(DiskBlobStore.open({ dir: '', maxBytes: 10 }))).toBe('dir');
    await fsp.writeFile(join(dir, 'a-file'), '');
    await expectCode(DiskBlobStore.open({ dir: join(dir, 'a-file', 'cache'), maxBytes: 10 }), 'blob_store_unavailable');
  });

  it('keeps commitMeta honest: a body larger than announced is refused while writing', async () => {
    const store = await openStore(await newDir());
    const writer = (await store.begin('k', 100))!;
    await expectCode(writer.write(pattern(101)), 'blob_size_mismatch');
    expect(store.stats()).toMatchObject({ entries: 0, openWriters: 0, storeErrors: 0 });
    await expectCode(writer.commit(commitMeta('k', 101)), 'blob_writer_closed');
  });
});
