/**
 * The AssetStore contract against the filesystem store in a fresh temp directory, plus what only a
 * disk store has: the on-disk layout and format, crash leftovers cleaned at open, symlinks that
 * would lead outside the store, failed uploads leaving no trace, corrupt metadata, path collisions.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsAssetStore } from '../../../origin/store/fs-asset-store.js';
import { assetStoreContract, bodyOf, expectCdnError, failingBody, PNG_HEAD } from '../../contract/asset-store-contract.js';

const MAX = 1024 * 1024;
const T = 1_700_000_000_500;
const BYTES = Buffer.from('hello from disk\n');
const SHA = createHash('sha256').update(BYTES).digest('hex');

assetStoreContract('filesystem', async () => {
  const root = await mkdtemp(join(tmpdir(), 'anycdn-fs-store-'));
  const store = await FsAssetStore.open({ root });
  return { store, cleanup: () => rm(root, { recursive: true, force: true }) };
});

/** Every file under `dir`, relative, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
    .sort();
}

describe('FsAssetStore on disk', () => {
  let root: string;
  let outside: string;
  let store: FsAssetStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'anycdn-fs-store-'));
    outside = await mkdtemp(join(tmpdir(), 'anycdn-outside-'));
    store = await FsAssetStore.open({ root, now: () => T });
  });
  afterEach(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('lays out objects, metadata (version 1) and variants as documented', async () => {
    const meta = await store.put('photos/hello.txt', bodyOf(BYTES), { maxBytes: MAX, cacheControl: 'max-age=60', tags: ['t'] });
    await store.putVariant(SHA, 'fmt=webp&w=4.5', PNG_HEAD, { contentType: 'image/webp', width: 4, height: 5 });
    const name = 'fmt%3Dwebp%26w%3D4%2E5';
    expect(await filesUnder(root)).toEqual([
      'LOCK',
      `meta/photos/hello.txt.json`,
      `objects/${SHA.slice(0, 2)}/${SHA}`,
      `refs/${SHA.slice(0, 2)}/${SHA}/${createHash('sha256').update('photos/hello.txt').digest('hex')}`,
      `variants/${SHA.slice(0, 2)}/${SHA}/${name}`,
    ]);
    expect(await readFile(join(root, 'objects', SHA.slice(0, 2), SHA))).toEqual(BYTES);
    expect(JSON.parse(await readFile(join(root, 'meta/photos/hello.txt.json'), 'utf8'))).toEqual({
      version: 1,
      path: 'photos/hello.txt',
      contentType: 'text/plain; charset=utf-8',
      size: BYTES.length,
      sha256: SHA,
      etag: `"${SHA.slice(0, 32)}"`,
      lastModified: 1_700_000_000_000,
      cacheControl: 'max-age=60',
      tags: ['t'],
    });
    expect(meta.lastModified).toBe(1_700_000_000_000);
    // One file per variant: its metadata as a line of JSON, then its bytes.
    const variantFile = await readFile(join(root, 'variants', SHA.slice(0, 2), SHA, name));
    const eol = variantFile.indexOf('\n');
    expect(JSON.parse(variantFile.subarray(0, eol).toString())).toMatchObject({
      version: 1,
      variant: 'fmt=webp&w=4.5',
      createdAt: 1_700_000_000_000,
      size: PNG_HEAD.length,
      width: 4,
      height: 5,
    });
    expect(variantFile.subarray(eol + 1)).toEqual(PNG_HEAD);
  });

  it('removes the old variants directory when the source is replaced', async () => {
    await store.put('a.txt', bodyOf(BYTES), { maxBytes: MAX });
    await store.putVariant(SHA, 'fmt=png', PNG_HEAD, { contentType: 'image/png', width: 1, height: 1 });
    await store.put('a.txt', bodyOf(Buffer.from('other\n')), { maxBytes: MAX });
    await expect(stat(join(root, 'variants', SHA.slice(0, 2), SHA))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('removes an object from the disk once no path refers to it, and not before', async () => {
    const object = join(root, 'objects', SHA.slice(0, 2), SHA);
    await store.put('a.txt', bodyOf(BYTES), { maxBytes: MAX });
    await store.put('copy/b.txt', bodyOf(BYTES), { maxBytes: MAX });
    await store.putVariant(SHA, 'fmt=png', PNG_HEAD, { contentType: 'image/png', width: 1, height: 1 });
    expect(await store.delete('a.txt')).toBeDefined();
    // Still the current version of copy/b.txt: bytes and variants stay.
    expect(await readFile(object)).toEqual(BYTES);
    expect(await store.getVariant(SHA, 'fmt=png')).toBeDefined();
    // Replaced: the old bytes go with their variants.
    await store.put('copy/b.txt', bodyOf(Buffer.from('other\n')), { maxBytes: MAX });
    await expect(stat(object)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(join(root, 'variants', SHA.slice(0, 2), SHA))).rejects.toMatchObject({ code: 'ENOENT' });
    await store.delete('copy/b.txt');
    expect(await filesUnder(join(root, 'objects'))).toEqual([]);
    expect(await filesUnder(join(root, 'refs'))).toEqual([]);
  });

  it('keeps every object still referred to when uploads of the same bytes race deletes', async () => {
    for (let round = 0; round < 5; round++) {
      await Promise.all([
        store.put('r/1.txt', bodyOf(BYTES), { maxBytes: MAX }),
        store.delete('r/2.txt'),
        store.put('r/2.txt', bodyOf(BYTES), { maxBytes: MAX }),
        store.put('r/1.txt', bodyOf(Buffer.from(`round ${round}\n`)), { maxBytes: MAX }),
        store.delete('r/1.txt'),
        store.put('r/3.txt', bodyOf(BYTES), { maxBytes: MAX }),
      ]);
      for (const path of ['r/1.txt', 'r/2.txt', 'r/3.txt']) {
        const meta = await store.head(path);
        if (meta !== undefined) expect((await store.readBuffer(path))?.data.length).toBe(meta.size);
      }
    }
  });

  it('builds refs for a store from before they existed, removing the objects nothing refers to', async () => {
    await store.put('kept.txt', bodyOf(BYTES), { maxBytes: MAX });
    await store.close();
    await rm(join(root, 'refs'), { recursive: true });
    const orphan = 'ab'.repeat(32);
    await mkdir(join(root, 'objects', 'ab'), { recursive: true });
    await writeFile(join(root, 'objects', 'ab', orphan), 'an upload replaced long ago');
    store = await FsAssetStore.open({ root });
    expect(await filesUnder(join(root, 'objects'))).toEqual([`${SHA.slice(0, 2)}/${SHA}`]);
    expect((await store.readBuffer('kept.txt'))?.data).toEqual(BYTES);
    await store.delete('kept.txt');
    expect(await filesUnder(join(root, 'objects'))).toEqual([]);
  });

  it('deletes temp files left by a crash when opened', async () => {
    await store.close();
    await writeFile(join(root, 'tmp', 'half-written.tmp'), 'partial');
    await mkdir(join(root, 'tmp', 'stray-dir'));
    store = await FsAssetStore.open({ root });
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });

  it('creates its folders and its lock on open', async () => {
    const fresh = join(root, 'nested', 'store');
    const other = await FsAssetStore.open({ root: fresh });
    expect((await readdir(fresh)).sort()).toEqual(['LOCK', 'meta', 'objects', 'refs', 'tmp', 'variants']);
    await other.close();
    expect((await readdir(fresh)).sort()).toEqual(['meta', 'objects', 'refs', 'tmp', 'variants']);
  });

  it('refuses a root that is open, touching nothing in it, and opens it again once closed', async () => {
    await writeFile(join(root, 'tmp', 'upload-in-progress.tmp'), 'partial');
    await expect(FsAssetStore.open({ root })).rejects.toMatchObject({ code: 'blob_store_locked', message: expect.stringContaining(`${root} is already open in this process`) });
    expect(await readdir(join(root, 'tmp'))).toEqual(['upload-in-progress.tmp']);
    await store.close();
    await store.close(); // idempotent
    store = await FsAssetStore.open({ root });
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });

  it('takes over a lock left by a process that is gone', async () => {
    await store.close();
    // pid 2^22 + 1 is above Linux's pid_max limit, so no live process has it.
    await writeFile(join(root, 'LOCK'), JSON.stringify({ pid: 4_194_305, start: 1 }));
    store = await FsAssetStore.open({ root });
    expect(JSON.parse(await readFile(join(root, 'LOCK'), 'utf8'))).toMatchObject({ pid: process.pid });
  });

  it('refuses a path through a symlink that leads outside the store, and writes nothing there', async () => {
    await symlink(outside, join(root, 'meta', 'evil'));
    await expectCdnError(store.put('evil/x.txt', bodyOf(BYTES), { maxBytes: MAX }), { code: 'invalid_path', status: 400, source: 'client' });
    await expectCdnError(store.head('evil/x.txt'), { code: 'invalid_path', status: 400, source: 'client' });
    await expectCdnError(store.put('evil/deeper/x.txt', bodyOf(BYTES), { maxBytes: MAX }), { code: 'invalid_path', status: 400, source: 'client' });
    expect(await readdir(outside)).toEqual([]);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });

  it('refuses a meta file that is a symlink to outside, and a dangling symlink', async () => {
    await writeFile(join(outside, 'x.json'), '{}');
    await symlink(join(outside, 'x.json'), join(root, 'meta', 'linked.json'));
    await symlink(join(outside, 'missing-dir'), join(root, 'meta', 'dangling'));
    await expectCdnError(store.head('linked'), { code: 'invalid_path', status: 400, source: 'client' });
    await expectCdnError(store.put('linked', bodyOf(BYTES), { maxBytes: MAX }), { code: 'invalid_path', status: 400, source: 'client' });
    await expectCdnError(store.put('dangling/x', bodyOf(BYTES), { maxBytes: MAX }), { code: 'invalid_path', status: 400, source: 'client' });
    expect(await readdir(outside)).toEqual(['x.json']);
    expect(await readFile(join(outside, 'x.json'), 'utf8')).toBe('{}');
  });

  it('a body that fails mid-way leaves the old version and no temp file', async () => {
    const v1 = await store.put('doc.txt', bodyOf(BYTES), { maxBytes: MAX });
    await expectCdnError(store.put('doc.txt', failingBody(Buffer.alloc(70_000, 7)), { maxBytes: MAX }), { code: 'body_read_failed', status: 400, source: 'client' });
    await expectCdnError(store.put('doc.txt', bodyOf(Buffer.alloc(2 * MAX)), { maxBytes: MAX }), { code: 'payload_too_large', status: 413, source: 'client' });
    expect(await store.head('doc.txt')).toEqual(v1);
    expect((await store.readBuffer('doc.txt'))?.data).toEqual(BYTES);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    expect(await filesUnder(join(root, 'objects'))).toEqual([`${SHA.slice(0, 2)}/${SHA}`]);
  });

  it.each([
    ['not JSON', '{"version": 1, "path":'],
    ['a future version', JSON.stringify({ version: 2, path: 'x', contentType: 'text/plain', size: 1, sha256: SHA, etag: `"${SHA.slice(0, 32)}"`, lastModified: 0, tags: [] })],
    ['another path', JSON.stringify({ version: 1, path: 'y', contentType: 'text/plain', size: 1, sha256: SHA, etag: `"${SHA.slice(0, 32)}"`, lastModified: 0, tags: [] })],
    ['missing fields', JSON.stringify({ version: 1, path: 'x' })],
    ['null', 'null'],
  ])('reads a meta file holding %s as absent', async (_label, text) => {
    await writeFile(join(root, 'meta', 'x.json'), text);
    expect(await store.head('x')).toBeUndefined();
    expect(await store.read('x')).toBeUndefined();
    expect(await store.readBuffer('x')).toBeUndefined();
    expect(await store.delete('x')).toBeUndefined();
    const meta = await store.put('x', bodyOf(BYTES), { maxBytes: MAX });
    expect(await store.head('x')).toEqual(meta);
  });

  it('a meta file that is a directory reads as absent', async () => {
    await mkdir(join(root, 'meta', 'dir.json'));
    expect(await store.head('dir')).toBeUndefined();
  });

  it('refuses with 409 an upload whose meta file would collide with a folder, changing nothing', async () => {
    const a = await store.put('a', bodyOf(BYTES), { maxBytes: MAX });
    await expectCdnError(store.put('a.json/b', bodyOf(PNG_HEAD), { maxBytes: MAX }), { code: 'path_conflict', status: 409, source: 'client' });
    expect(await store.head('a')).toEqual(a);
    expect(await store.head('a.json/b')).toBeUndefined();

    const d = await store.put('d.json/e', bodyOf(PNG_HEAD), { maxBytes: MAX });
    await expectCdnError(store.put('d', bodyOf(BYTES), { maxBytes: MAX }), { code: 'path_conflict', status: 409, source: 'client' });
    expect(await store.head('d.json/e')).toEqual(d);
    expect(await store.head('d')).toBeUndefined();
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });

  it('an asset and a folder of the same name coexist', async () => {
    const a = await store.put('a', bodyOf(BYTES), { maxBytes: MAX });
    const ab = await store.put('a/b', bodyOf(PNG_HEAD), { maxBytes: MAX });
    expect(await store.head('a')).toEqual(a);
    expect(await store.head('a/b')).toEqual(ab);
  });

  it('removes folders left empty by a delete', async () => {
    await store.put('deep/er/x.txt', bodyOf(BYTES), { maxBytes: MAX });
    await store.put('deep/y.txt', bodyOf(BYTES), { maxBytes: MAX });
    await store.delete('deep/er/x.txt');
    expect(await readdir(join(root, 'meta', 'deep'))).toEqual(['y.txt.json']);
    await store.delete('deep/y.txt');
    expect(await readdir(join(root, 'meta'))).toEqual([]);
  });

  it('refuses a last segment too long for a file name with .json appended', async () => {
    await expectCdnError(store.put('x'.repeat(251), bodyOf(BYTES), { maxBytes: MAX }), { code: 'invalid_path', status: 400, source: 'client' });
    const meta = await store.put('x'.repeat(250), bodyOf(BYTES), { maxBytes: MAX });
    expect(await store.head('x'.repeat(250))).toEqual(meta);
  });

  it('answers head() of a recently read path from memory: only its own writes change the answer', async () => {
    const v1 = await store.put('doc.txt', bodyOf(BYTES), { maxBytes: MAX });
    expect(await store.head('doc.txt')).toEqual(v1);
    await rm(join(root, 'meta', 'doc.txt.json')); // behind the store's back: not seen
    expect(await store.head('doc.txt')).toEqual(v1);
    const v2 = await store.put('doc.txt', bodyOf(PNG_HEAD), { maxBytes: MAX });
    expect(await store.head('doc.txt')).toEqual(v2);
    expect(await store.delete('doc.txt')).toEqual(v2);
    expect(await store.head('doc.txt')).toBeUndefined();
    await store.close();
    const uncached = (store = await FsAssetStore.open({ root, metaCacheEntries: 0 }));
    const v3 = await uncached.put('doc.txt', bodyOf(BYTES), { maxBytes: MAX });
    await rm(join(root, 'meta', 'doc.txt.json'));
    expect([v3.sha256, await uncached.head('doc.txt')]).toEqual([SHA, undefined]);
  });

  it('writes variants in place, one file each, and reads a variant torn anywhere as absent', async () => {
    await store.putVariant(SHA, 'fmt=png', PNG_HEAD, { contentType: 'image/png', width: 1, height: 1 });
    await store.putVariant(SHA, 'fmt=webp', BYTES, { contentType: 'image/webp', width: 1, height: 1 });
    expect(await filesUnder(join(root, 'variants'))).toEqual(['fmt%3Dpng', 'fmt%3Dwebp'].map((name) => join(SHA.slice(0, 2), SHA, name)));
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    const file = join(root, 'variants', SHA.slice(0, 2), SHA, 'fmt%3Dpng');
    const whole = await readFile(file);
    const eol = whole.indexOf('\n');
    // A crash in the middle of the write: inside the metadata line, right after it, inside the bytes.
    for (const cut of [eol >> 1, eol, eol + 1, whole.length - 1]) {
      await writeFile(file, whole.subarray(0, cut));
      expect(await store.getVariant(SHA, 'fmt=png'), `cut at ${cut}`).toBeUndefined();
    }
    const again = await store.putVariant(SHA, 'fmt=png', PNG_HEAD, { contentType: 'image/png', width: 1, height: 1 });
    expect((await store.getVariant(SHA, 'fmt=png'))?.meta).toEqual(again);
  });

  it('a variant whose bytes no longer match its metadata reads as absent', async () => {
    await store.putVariant(SHA, 'fmt=png', PNG_HEAD, { contentType: 'image/png', width: 1, height: 1 });
    const file = join(root, 'variants', SHA.slice(0, 2), SHA, 'fmt%3Dpng');
    const whole = await readFile(file);
    whole[whole.length - 1] = whole.at(-1)! ^ 0xff;
    await writeFile(file, whole);
    expect(await store.getVariant(SHA, 'fmt=png')).toBeUndefined();
  });

  it('reads a variant file of the earlier two-file layout, or a folder in its place, as absent', async () => {
    const dir = join(root, 'variants', SHA.slice(0, 2), SHA);
    await mkdir(join(dir, 'fmt%3Dwebp'), { recursive: true });
    await writeFile(join(dir, 'fmt%3Dpng'), PNG_HEAD);
    await writeFile(join(dir, 'fmt%3Dpng.json'), JSON.stringify({ version: 1, variant: 'fmt=png' }) + '\n');
    expect(await store.getVariant(SHA, 'fmt=png')).toBeUndefined();
    expect(await store.getVariant(SHA, 'fmt=webp')).toBeUndefined();
    await store.putVariant(SHA, 'fmt=png', PNG_HEAD, { contentType: 'image/png', width: 1, height: 1 });
    expect((await store.getVariant(SHA, 'fmt=png'))?.data).toEqual(PNG_HEAD);
  });

  it('round-trips variants on both sides of the synchronous-I/O size bound', async () => {
    for (const size of [0, 1024 * 1024 - 200, 1024 * 1024 + 1, 3 * 1024 * 1024]) {
      const data = Buffer.alloc(size, size % 251);
      const meta = await store.putVariant(SHA, `fmt=png&w=${size}`, data, { contentType: 'image/png', width: 1, height: 1 });
      const got = await store.getVariant(SHA, `fmt=png&w=${size}`);
      expect(got?.meta).toEqual(meta);
      expect(got?.data.equals(data)).toBe(true);
    }
  });
});
