/**
 * Rebuilding the disk store's index at open. Every `<hash>.meta` record is read and checked
 * (with bounded concurrency): an entry is kept only if its record parses and validates, its key
 * hashes to its file name, and its body file exists with exactly the recorded size. Everything else
 * is deleted: records that fail, the bodies they name, and bodies no record names (left by a crash
 * between the body rename and the record rename, or by an overwrite interrupted before the old body
 * was removed). Body contents are not read here: every read verifies its blocks (disk-reader.ts),
 * so opening a large cache costs one small read and two stats per entry.
 *
 * Recency is not persisted (file atimes are unreliable); entries come back ordered by the record's
 * mtime, i.e. by when they were last written or refreshed.
 */
import { join } from 'node:path';
import { errnoCode, unlinkQuietly, type DiskFs } from './disk-fs.js';
import type { IndexRecord } from './disk-index.js';
import { BODY_FILE, META_FILE, bodyPath, decodeRecord, metaPath, type DiskLayout } from './disk-layout.js';

export interface LoadReport {
  /** Entries kept. */
  entries: number;
  /** Records dropped, with why (for the operator's log). */
  dropped: { file: string; reason: string }[];
  /** Body files removed because no valid record referenced them. */
  orphanBodies: number;
}

interface Loaded {
  record: IndexRecord;
  mtimeMs: number;
}

/** Run `work` over `items` with at most `limit` in flight. */
export async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function listDir(fs: DiskFs, dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)) as string[];
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return [];
    throw err;
  }
}

/** Wipe `tmp/` (writes a crash interrupted) and create the data shard directories. */
export async function prepareDirs(fs: DiskFs, layout: DiskLayout, concurrency: number): Promise<void> {
  await fs.rm(layout.tmpDir, { recursive: true, force: true });
  await fs.mkdir(layout.tmpDir, { recursive: true });
  const shards = Array.from({ length: 256 }, (_, i) => join(layout.dataDir, i.toString(16).padStart(2, '0')));
  await forEachLimited(shards, concurrency, async (shard) => void (await fs.mkdir(shard, { recursive: true })));
}

/** Scan `layout.dataDir`, delete what cannot be trusted, and return the valid records, oldest first. */
export async function loadIndex(fs: DiskFs, layout: DiskLayout, concurrency: number): Promise<{ records: IndexRecord[]; report: LoadReport }> {
  const shards = (await listDir(fs, layout.dataDir)).filter((d) => /^[0-9a-f]{2}$/.test(d));
  const metas: string[] = [];
  const bodies: { shard: string; name: string; hash: string }[] = [];
  await forEachLimited(shards, concurrency, async (shard) => {
    for (const name of await listDir(fs, join(layout.dataDir, shard))) {
      const meta = META_FILE.exec(name);
      if (meta !== null && meta[1]!.startsWith(shard)) metas.push(meta[1]!);
      const body = BODY_FILE.exec(name);
      if (body !== null) bodies.push({ shard, name, hash: body[1]! });
    }
  });

  const loaded: Loaded[] = [];
  const referenced = new Set<string>();
  const report: LoadReport = { entries: 0, dropped: [], orphanBodies: 0 };
  await forEachLimited(metas, concurrency, async (hash) => {
    const result = await checkEntry(fs, layout, hash);
    if (typeof result === 'string') {
      report.dropped.push({ file: metaPath(layout, hash), reason: result });
      await unlinkQuietly(fs, metaPath(layout, hash));
      return;
    }
    referenced.add(`${hash}.${result.record.gen}.body`);
    loaded.push(result);
  });

  await forEachLimited(bodies, concurrency, async ({ shard, name }) => {
    if (referenced.has(name)) return;
    report.orphanBodies += 1;
    await unlinkQuietly(fs, join(layout.dataDir, shard, name));
  });

  loaded.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.record.hash < b.record.hash ? -1 : 1));
  report.entries = loaded.length;
  return { records: loaded.map((l) => l.record), report };
}

/** A valid entry, or the reason it is dropped. */
async function checkEntry(fs: DiskFs, layout: DiskLayout, hash: string): Promise<Loaded | string> {
  const path = metaPath(layout, hash);
  let text: string;
  let mtimeMs: number;
  try {
    mtimeMs = (await fs.stat(path)).mtimeMs;
    text = (await fs.readFile(path, 'utf8')) as string;
  } catch (err) {
    return `record unreadable (${errnoCode(err) ?? 'error'})`;
  }
  const rec = decodeRecord(text, hash);
  if (typeof rec === 'string') return rec;
  const gen = rec.body.slice(65, 81);
  let bodySize: number;
  try {
    const st = await fs.stat(bodyPath(layout, hash, gen));
    if (!st.isFile()) return 'body is not a file';
    bodySize = st.size;
  } catch (err) {
    return `body missing (${errnoCode(err) ?? 'error'})`;
  }
  if (bodySize !== rec.meta.size) return `body has ${bodySize} bytes, record says ${rec.meta.size}`;
  return { record: { key: rec.meta.key, hash, gen, size: rec.meta.size, recordBytes: Buffer.byteLength(text) }, mtimeMs };
}
