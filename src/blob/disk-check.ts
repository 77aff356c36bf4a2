/**
 * What the disk store does about its files outside the request path: at open, a folder of an
 * earlier format is moved aside and deleted in the background (the cache is not the source of
 * truth: refilling it beats converting millions of files before serving); after an open that
 * follows an unclean stop (the store runs it then only), a background check walks the whole index
 * in small batches with pauses between them, dropping every entry whose bytes are missing or fail
 * their checksum (left by a power loss or a crash), and deletes body files no entry names (a crash
 * between a file's rename and the index commit).
 * Requests are served all along; they verify what they read themselves, so the check only finds
 * bad entries earlier.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, unlinkQuietly, type DiskFs } from './disk-fs.js';
import type { DiskIndex, IndexRecord } from './disk-index.js';
import { BODY_FILE, type DiskLayout } from './disk-layout.js';
import type { Segments } from './disk-segments.js';

export interface CheckReport {
  /** False when the check did not run: the previous owner of the folder stopped cleanly. */
  ran: boolean;
  /** Index entries checked. */
  checked: number;
  /** Entries dropped because their bytes were missing or bad. */
  dropped: number;
  /** Body files deleted because no entry named them. */
  orphanFiles: number;
  /** False when the store closed before the check ended. */
  complete: boolean;
}

const DISCARD_PREFIX = 'discarded-';

/**
 * Move every folder of an earlier format (and anything an interrupted discard left) out of the way
 * and delete it in the background. Returns the folders discarded, for the operator's log.
 */
export async function discardOldFormats(fs: DiskFs, layout: DiskLayout): Promise<string[]> {
  const discarded: string[] = [];
  for (const dir of layout.oldDataDirs) {
    const aside = join(layout.root, `${DISCARD_PREFIX}${randomBytes(4).toString('hex')}`);
    try {
      await fs.rename(dir, aside);
      discarded.push(dir);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
  }
  for (const name of (await fs.readdir(layout.root)) as string[]) {
    if (name.startsWith(DISCARD_PREFIX)) void fs.rm(join(layout.root, name), { recursive: true, force: true }).catch(() => undefined);
  }
  return discarded;
}

export interface CheckDeps {
  index: DiskIndex;
  segments: Segments;
  layout: DiskLayout;
  fs: DiskFs;
  /** Pause between batches. */
  pauseMs: number;
  /** Files younger than this (ms since epoch) may belong to commits in flight: left alone. */
  openedAt: number;
  /** Aborted when the store closes: the check stops. */
  stopped: AbortSignal;
  /** Check one entry's bytes, dropping it when bad; true when good. */
  verify(rec: IndexRecord): Promise<boolean>;
}

const BATCH = 256;

export async function backgroundCheck(d: CheckDeps): Promise<CheckReport> {
  const report: CheckReport = { ran: true, checked: 0, dropped: 0, orphanFiles: 0, complete: false };
  const pause = () => sleep(d.pauseMs, undefined, { signal: d.stopped }).catch(() => undefined);
  await pause();
  let after: Buffer | undefined;
  for (;;) {
    if (d.stopped.aborted) return report;
    const { records, last } = d.index.scan(after, BATCH);
    for (const committed of records) {
      const rec = d.index.get(committed.key);
      if (rec === undefined) continue;
      report.checked += 1;
      if (!(await d.verify(rec))) report.dropped += 1;
    }
    if (last === undefined) break;
    after = last;
    await pause();
  }
  for (const shard of await listDir(d.fs, d.layout.fileDir)) {
    if (d.stopped.aborted) return report;
    for (const name of await listDir(d.fs, join(d.layout.fileDir, shard))) {
      if (!BODY_FILE.test(name) || d.index.byFile(name) !== undefined) continue;
      const path = join(d.layout.fileDir, shard, name);
      const st = await d.fs.stat(path).catch(() => undefined);
      if (st === undefined || st.mtimeMs >= d.openedAt || d.index.byFile(name) !== undefined) continue;
      await unlinkQuietly(d.fs, path);
      report.orphanFiles += 1;
    }
    await pause();
  }
  report.complete = true;
  return report;
}

async function listDir(fs: DiskFs, dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)) as string[];
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return [];
    throw err;
  }
}
