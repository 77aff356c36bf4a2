/**
 * The filesystem asset store, the origin's default backend. Layout under `root`:
 *
 * - `objects/<sha[0..2]>/<sha256>`: content-addressed bytes, written once, never modified.
 * - `refs/<sha[0..2]>/<sha256>/<sha256 of path>`: one file per asset path whose current version
 *   is that object (the file holds the path). Written durably before the meta file points at the
 *   object; when a put or delete moves the last path off an object, the object and its variants
 *   are removed, so a deleted file leaves the disk. A store from before refs/ existed gets its
 *   refs built from meta/ by `open()`, which also removes objects nothing refers to.
 * - `meta/<path>.json`: the AssetMeta (JSON, `version: 1`) of the current version of each asset
 *   path; switching this file is what makes an upload visible.
 * - `variants/<sha[0..2]>/<sourceSha256>/<name>`: a generated variant, one file each: its
 *   VariantMeta as one line of JSON, then its bytes. Keyed by the hash of the source bytes (`name`
 *   is the percent-encoded variant with `.` encoded too, so no name is `..`).
 * - `tmp/`: temporary files; every write of an object or a meta file goes here first, then is
 *   fsynced and renamed into place (same file system, so the rename is atomic), then the directory
 *   is fsynced. A crash at any moment leaves the old version fully intact or the new one fully
 *   there; `open()` deletes what a crash left in `tmp/`. Variants are the exception (see
 *   putVariant): they are written in place, and a torn one reads as absent.
 *
 * One process owns a root and is its only writer: `open()` takes `LOCK` in the root (refused with
 * `blob_store_locked` while another live process holds it; a lock left by a crash is taken over)
 * and `close()` releases it. head() answers recently read paths from memory (meta-cache.ts), so a
 * meta file changed behind the store's back is seen only after a restart.
 *
 * Changes of one path run one at a time (after the body is received), and reference changes of
 * one object too, always in that order, so two uploads cannot lose each other's reference. A
 * crash can leave a reference behind (an object kept too long), never an object missing. A
 * variant that races in after its source's removal is only wasted space. Paths are
 * case-sensitive: use a case-sensitive file system.
 *
 * Asset `a` is `meta/a.json`, so it can collide with a directory made for asset `a.json/b`; the
 * later upload is refused with `path_conflict` (409) and nothing is changed.
 *
 * The file operations themselves (absent-tolerant reads, fsynced writes) are store-files.ts's.
 */
import { createHash, randomUUID } from 'node:crypto';
import { lstat, mkdir, open, readFile, readdir, realpath, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { validateAssetPath } from '../../src/asset-path.js';
import { CdnError, clientError } from '../../src/errors.js';
import type { AssetListing, AssetMeta, AssetStore, ByteRange, ListOptions, Precondition, PutOptions, VariantMeta } from './asset-store.js';
import {
  type BodyDigest,
  checkListOptions,
  checkRange,
  compareAssetPaths,
  compareSegments,
  digestBody,
  isSha256Hex,
  newAssetMeta,
  newVariantMeta,
  parseAssetMeta,
  parseVariantMeta,
  sameVersion,
  sha256Hex,
  variantName,
} from './asset-store-common.js';
import { errnoCode, lockDir, makeDirs, nodeDiskFs } from '../../src/blob/disk-fs.js';
import { KeyedLock } from '../../src/blob/keyed-lock.js';
import { MetaCache } from './meta-cache.js';
import { fsyncDir, ioError, isConflict, isMissing, mkdirDurable, openIfExists, readIfExists, readVariantFile, writeSynced, writeVariantFile } from './store-files.js';

export interface FsAssetStoreOptions {
  /** Directory holding the store; created by `open()`. */
  root: string;
  /** Clock in ms for upload and variant times; defaults to `Date.now`. Injected so tests use literal times. */
  now?: () => number;
  /**
   * Asset metadata kept in memory by path (see meta-cache.ts), so head() costs no file-system call
   * for a recently read path. Default DEFAULT_META_CACHE_ENTRIES (10 000); 0 keeps none.
   */
  metaCacheEntries?: number;
}

/** Longest last segment: the file name gets `.json` appended and must stay within NAME_MAX (255). */
const MAX_FILE_SEGMENT_BYTES = 250;

export class FsAssetStore implements AssetStore {
  readonly root: string;
  private readonly now: () => number;
  private readonly metaRoot: string;
  private metaRealRoot: string | undefined;
  private readonly metas: MetaCache;
  private unlock: (() => Promise<void>) | undefined;
  private readonly pathLocks = new KeyedLock();
  private readonly objectLocks = new KeyedLock();

  constructor(options: FsAssetStoreOptions) {
    this.root = resolve(options.root);
    this.now = options.now ?? Date.now;
    this.metaRoot = join(this.root, 'meta');
    this.metas = new MetaCache(options.metaCacheEntries);
  }

  /**
   * Create the folders if needed, take the root's lock, delete temp files left by a crash, and
   * return the store. A root another live process has open is refused (`blob_store_locked`)
   * before anything in it is touched: its uploads in progress live in `tmp/`.
   */
  static async open(options: FsAssetStoreOptions): Promise<FsAssetStore> {
    const root = resolve(options.root);
    await makeDirs(nodeDiskFs, root);
    const unlock = await lockDir(nodeDiskFs, root);
    try {
      for (const dir of ['objects', 'meta', 'variants', 'tmp']) await mkdir(join(root, dir), { recursive: true });
      const tmp = join(root, 'tmp');
      for (const name of await readdir(tmp)) await rm(join(tmp, name), { recursive: true, force: true });
      const store = new FsAssetStore({ ...options, root: await realpath(root) });
      if ((await stat(join(root, 'refs')).catch(() => undefined)) === undefined) await store.buildRefs();
      store.unlock = unlock;
      return store;
    } catch (err) {
      await unlock();
      throw err;
    }
  }

  /** Release the root's lock (idempotent). Calls already under way finish; make no new ones. */
  async close(): Promise<void> {
    const unlock = this.unlock;
    this.unlock = undefined;
    await unlock?.();
  }

  /** Only a path that passed metaFileOf's checks is ever kept, so a kept one needs no new check. */
  async head(path: string): Promise<AssetMeta | undefined> {
    return this.metas.read(path, async () => readAssetMeta(await this.metaFileOf(path), path));
  }

  async read(path: string, range?: ByteRange): Promise<{ meta: AssetMeta; body: Readable } | undefined> {
    const meta = await this.head(path);
    if (meta === undefined) return undefined;
    if (range !== undefined) checkRange(range, meta.size);
    const handle = await openIfExists(this.objectFile(meta.sha256));
    if (handle === undefined) return undefined;
    const body = handle.createReadStream(range === undefined ? {} : { start: range.start, end: range.end });
    return { meta, body };
  }

  async readBuffer(path: string): Promise<{ meta: AssetMeta; data: Buffer } | undefined> {
    const meta = await this.head(path);
    if (meta === undefined) return undefined;
    const data = await readIfExists(this.objectFile(meta.sha256));
    return data === undefined ? undefined : { meta, data };
  }

  /**
   * Objects are content-addressed, written once and never modified, so the object named by the
   * hash is that version's bytes whatever the path points to now. The size check catches only a
   * file damaged outside the store: a hash check would cost ~2 ms per MB on every transform.
   */
  async readVersion(meta: AssetMeta): Promise<Buffer | undefined> {
    if (!isSha256Hex(meta.sha256)) return undefined; // never a path built from anything but a hash
    const data = await readIfExists(this.objectFile(meta.sha256));
    return data?.length === meta.size ? data : undefined;
  }

  async put(path: string, body: AsyncIterable<Uint8Array>, options: PutOptions): Promise<AssetMeta> {
    return this.metas.write(path, () => this.putUncached(path, body, options));
  }

  async delete(path: string, precondition?: Precondition): Promise<AssetMeta | undefined> {
    return this.metas.write(path, () => this.pathLocks.run(path, () => this.deleteUncached(path, precondition)));
  }

  private async putUncached(path: string, body: AsyncIterable<Uint8Array>, options: PutOptions): Promise<AssetMeta> {
    const file = await this.metaFileOf(path);
    await assertNoConflict(file, path);
    const received = await this.receiveObject(body, options.maxBytes);
    try {
      return await this.pathLocks.run(path, async () => {
        const digest = received.digest;
        const old = await readAssetMeta(file, path);
        options.precondition?.(old);
        if (options.keepUnchanged === true && old !== undefined && sameVersion(old, { sha256: digest.sha256, cacheControl: options.cacheControl, tags: options.tags ?? [] })) return old;
        await this.objectLocks.run(digest.sha256, async () => {
          await this.placeObject(received.tmp, digest);
          await this.writeFileAtomic(this.refFile(digest.sha256, path), Buffer.from(path));
        });
        const meta = newAssetMeta(path, digest, options, this.now());
        await this.writeFileAtomic(file, Buffer.from(JSON.stringify(meta) + '\n'), path);
        if (old !== undefined && old.sha256 !== meta.sha256) await this.release(old.sha256, path);
        return meta;
      });
    } finally {
      await rm(received.tmp, { force: true });
    }
  }

  private async deleteUncached(path: string, precondition?: Precondition): Promise<AssetMeta | undefined> {
    const file = await this.metaFileOf(path);
    const meta = await readAssetMeta(file, path);
    precondition?.(meta);
    if (meta === undefined) return undefined;
    try {
      await unlink(file);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw ioError('delete', err);
    }
    await fsyncDir(dirname(file));
    await this.pruneEmptyDirs(dirname(file));
    await this.release(meta.sha256, path);
    return meta;
  }

  /**
   * A walk of meta/ in path order (folder entries sorted, a file before the folder of the same
   * name), skipping the folders that hold nothing after `after` or under `prefix`, and reading
   * meta files only for the paths it returns (and one more, to know whether more follow).
   */
  async list(options: ListOptions): Promise<AssetListing> {
    const { prefix, after, limit } = checkListOptions(options);
    const afterSegments = after?.split('/');
    const assets: AssetMeta[] = [];
    let more = false;
    const walk = async (dir: string, segments: string[]): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch((err: unknown) => (isMissing(err) ? [] : Promise.reject(ioError('list', err))));
      const items: { name: string; folder: boolean }[] = [];
      for (const e of entries) {
        if (e.isDirectory()) items.push({ name: e.name, folder: true });
        else if (e.isFile() && e.name.endsWith('.json')) items.push({ name: e.name.slice(0, -'.json'.length), folder: false });
      }
      items.sort((a, b) => compareSegments([a.name], [b.name]) || Number(a.folder) - Number(b.folder));
      for (const item of items) {
        if (more) return;
        const here = [...segments, item.name];
        const path = here.join('/');
        if (item.folder) {
          const under = `${path}/`;
          if (!under.startsWith(prefix) && !prefix.startsWith(under)) continue;
          // Everything under it comes before `after` when the folder itself sorts before `after`'s start.
          if (afterSegments !== undefined && compareSegments(here, afterSegments.slice(0, here.length)) < 0) continue;
          await walk(join(dir, item.name), here);
          continue;
        }
        if (!path.startsWith(prefix) || (after !== undefined && compareAssetPaths(path, after) <= 0)) continue;
        const meta = await this.head(path).catch(() => undefined);
        if (meta === undefined) continue;
        if (assets.length === limit) {
          more = true;
          return;
        }
        assets.push(meta);
      }
    };
    await walk(this.metaRoot, []);
    return { assets, next: more ? assets.at(-1)!.path : undefined };
  }

  /** `path` no longer refers to the object: when nothing else does, it and its variants go. */
  private async release(sha256: string, path: string): Promise<void> {
    await this.objectLocks.run(sha256, async () => {
      const dir = this.refDir(sha256);
      await rm(this.refFile(sha256, path), { force: true });
      const left = await readdir(dir).catch(() => []);
      if (left.length > 0) return;
      await rm(this.objectFile(sha256), { force: true });
      await rmdir(dir).catch(() => undefined);
      await this.dropVariants(sha256);
    });
  }

  /**
   * Refs for a store written before they existed: one per meta file, built in tmp/ and renamed
   * into place whole (a crash midway builds them again), then every object nothing refers to is
   * removed (the uploads such a store replaced or deleted).
   */
  private async buildRefs(): Promise<void> {
    const building = join(this.root, 'tmp', 'refs');
    const referenced = new Set<string>();
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const full = join(dir, entry.name);
        if (entry.isDirectory()) {
          await walk(full);
          continue;
        }
        if (!entry.isFile() || !entry.name.endsWith('.json')) continue;
        const path = relative(this.metaRoot, full).slice(0, -'.json'.length).split(sep).join('/');
        const meta = await readAssetMeta(full, path);
        if (meta === undefined || !isSha256Hex(meta.sha256)) continue;
        referenced.add(meta.sha256);
        const ref = join(building, meta.sha256.slice(0, 2), meta.sha256, pathId(path));
        await mkdir(dirname(ref), { recursive: true });
        await writeSynced(ref, Buffer.from(path), 'w');
      }
    };
    await mkdir(building, { recursive: true });
    await walk(this.metaRoot);
    await rename(building, join(this.root, 'refs'));
    await fsyncDir(this.root);
    const objects = join(this.root, 'objects');
    for (const prefix of await readdir(objects)) {
      for (const name of await readdir(join(objects, prefix)).catch(() => [])) {
        if (referenced.has(name) || !isSha256Hex(name)) continue;
        await rm(join(objects, prefix, name), { force: true });
        await this.dropVariants(name);
      }
    }
  }

  async getVariant(sourceSha256: string, variant: string): Promise<{ meta: VariantMeta; data: Buffer } | undefined> {
    const stored = await readVariantFile(this.variantFile(sourceSha256, variant));
    const eol = stored === undefined ? -1 : stored.indexOf(0x0a);
    if (stored === undefined || eol < 0) return undefined;
    const meta = parseVariantMeta(parseJson(stored.subarray(0, eol)), sourceSha256, variant);
    const data = stored.subarray(eol + 1);
    // A torn or concurrently rewritten file fails the hash check: the ETag stays true to the bytes.
    if (meta === undefined || data.length !== meta.size || sha256Hex(data) !== meta.sha256) return undefined;
    return { meta, data };
  }

  async putVariant(
    sourceSha256: string,
    variant: string,
    data: Buffer,
    info: { contentType: string; width: number; height: number },
  ): Promise<VariantMeta> {
    const meta = newVariantMeta(sourceSha256, variant, data, info, this.now());
    await writeVariantFile(this.variantFile(sourceSha256, variant), Buffer.concat([Buffer.from(JSON.stringify(meta) + '\n'), data]));
    return meta;
  }

  /**
   * The meta file of an asset path, refused unless it stays inside `meta/`: lexically (path.relative,
   * never a string-prefix test; ipx CVE-2025-54387) and after resolving symlinks of what exists.
   */
  private async metaFileOf(path: string): Promise<string> {
    validateAssetPath(path);
    const segments = path.split('/');
    if (Buffer.byteLength(segments[segments.length - 1]!, 'utf8') > MAX_FILE_SEGMENT_BYTES) {
      throw clientError('invalid_path', `invalid asset path: the last segment is longer than ${MAX_FILE_SEGMENT_BYTES} bytes`, { field: 'path' });
    }
    const file = resolve(this.metaRoot, ...segments) + '.json';
    if (!isInside(this.metaRoot, file)) throw outsideStore();
    const realRoot = await this.realMetaRoot();
    let existing = file;
    for (;;) {
      try {
        existing = await realpath(existing);
        break;
      } catch (err) {
        if (!isMissing(err) || existing === this.metaRoot) throw ioError('resolve', err);
        // A dangling symlink is missing to realpath but would still be followed by mkdir or open.
        if ((await lstat(existing).catch(() => undefined))?.isSymbolicLink() === true) throw outsideStore();
        existing = dirname(existing);
      }
    }
    if (!isInside(realRoot, existing) && existing !== realRoot) throw outsideStore();
    return file;
  }

  /** meta/ with symlinks resolved, computed once (the store may be constructed without `open`). */
  private async realMetaRoot(): Promise<string> {
    if (this.metaRealRoot !== undefined) return this.metaRealRoot;
    try {
      const real = await realpath(this.metaRoot);
      this.metaRealRoot = real;
      return real;
    } catch (err) {
      throw ioError('open', err);
    }
  }

  /** Stream the body into a temp file (hashing, counting, refusing past maxBytes) and fsync it. */
  private async receiveObject(body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<{ digest: BodyDigest; tmp: string }> {
    const tmp = this.tempFile();
    try {
      const handle = await open(tmp, 'wx').catch((err: unknown) => Promise.reject(ioError('write', err)));
      try {
        const digest = await digestBody(body, maxBytes, async (chunk) => {
          await handle.write(chunk).catch((err: unknown) => Promise.reject(ioError('write', err)));
        });
        await handle.sync().catch((err: unknown) => Promise.reject(ioError('fsync', err)));
        return { digest, tmp };
      } finally {
        await handle.close().catch(() => undefined);
      }
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Rename a received body to its content address, unless a complete copy is already there. */
  private async placeObject(tmp: string, digest: BodyDigest): Promise<void> {
    const target = this.objectFile(digest.sha256);
    const existing = await stat(target).catch(() => undefined);
    if (existing?.isFile() === true && existing.size === digest.size) return;
    try {
      await mkdirDurable(dirname(target));
      await rename(tmp, target);
    } catch (err) {
      throw err instanceof CdnError ? err : ioError('write', err);
    }
    await fsyncDir(dirname(target));
  }

  /**
   * Write `data` to a temp file, fsync, rename over `target`, fsync the directory. With `assetPath`
   * the target is a meta file: directory collisions become `path_conflict`, and a directory pruned
   * by a concurrent delete between mkdir and rename is recreated.
   */
  private async writeFileAtomic(target: string, data: Buffer, assetPath?: string): Promise<void> {
    const tmp = this.tempFile();
    try {
      await writeSynced(tmp, data, 'wx');
      for (let attempt = 1; ; attempt++) {
        try {
          await mkdirDurable(dirname(target));
          await rename(tmp, target);
          break;
        } catch (err) {
          if (assetPath !== undefined && isConflict(err)) throw pathConflict(assetPath);
          if (!(isMissing(err) && attempt < 3)) throw err;
        }
      }
    } catch (err) {
      await rm(tmp, { force: true });
      throw err instanceof CdnError ? err : ioError('write', err);
    }
    await fsyncDir(dirname(target));
  }

  /** Remove the variants of a source hash; best effort, since they can always be regenerated. */
  private async dropVariants(sha256: string): Promise<void> {
    await rm(join(this.root, 'variants', sha256.slice(0, 2), sha256), { recursive: true, force: true }).catch(() => undefined);
  }

  /** Remove now-empty directories from `dir` up to (not including) meta/; stops at the first non-empty one. */
  private async pruneEmptyDirs(dir: string): Promise<void> {
    for (let current = dir; current !== this.metaRoot && isInside(this.metaRoot, current); current = dirname(current)) {
      try {
        await rmdir(current);
      } catch {
        return;
      }
    }
  }

  private refDir(sha256: string): string {
    return join(this.root, 'refs', sha256.slice(0, 2), sha256);
  }

  private refFile(sha256: string, path: string): string {
    return join(this.refDir(sha256), pathId(path));
  }

  private objectFile(sha256: string): string {
    return join(this.root, 'objects', sha256.slice(0, 2), sha256);
  }

  private variantFile(sourceSha256: string, variant: string): string {
    const name = variantName(sourceSha256, variant);
    return join(this.root, 'variants', sourceSha256.slice(0, 2), sourceSha256, name);
  }

  private tempFile(): string {
    return join(this.root, 'tmp', `${randomUUID()}.tmp`);
  }
}

/** A reference file's name for an asset path: fixed length, whatever the path. */
function pathId(path: string): string {
  return createHash('sha256').update(path).digest('hex');
}

/** A meta file's record; anything missing, unreadable, corrupt, of a future version or for another path is absent. */
async function readAssetMeta(file: string, path: string): Promise<AssetMeta | undefined> {
  const text = await readFile(file).catch(() => undefined);
  return text === undefined ? undefined : parseAssetMeta(parseJson(text), path);
}

function parseJson(text: Buffer): unknown {
  try {
    return JSON.parse(text.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Refuse before reading the body when the meta file is a folder or sits under a file (see header). */
async function assertNoConflict(file: string, path: string): Promise<void> {
  try {
    if ((await stat(file)).isDirectory()) throw pathConflict(path);
  } catch (err) {
    if (err instanceof CdnError) throw err;
    if (errnoCode(err) === 'ENOTDIR') throw pathConflict(path);
    if (errnoCode(err) !== 'ENOENT') throw ioError('stat', err);
  }
}

function pathConflict(path: string): CdnError {
  return clientError('path_conflict', `asset path ${JSON.stringify(path)} collides with another asset's file or folder`, { status: 409, field: 'path' });
}

function outsideStore(): CdnError {
  return clientError('invalid_path', 'invalid asset path: resolves outside the store', { field: 'path' });
}

function isInside(root: string, file: string): boolean {
  const rel = relative(root, file);
  return rel !== '' && rel.split(sep)[0] !== '..' && !isAbsolute(rel);
}
