/**
 * Opening a disk store's folder (disk-blob-store.ts): what its owner does at open (the lock,
 * earlier formats discarded, tmp/ cleared, the segments counted anew, the shared state brought to
 * this version), what a co-writer does (its lock and folder, its registration in the shared
 * state), and how they find each other, whichever opens first.
 *
 * A co-writer may open a folder before its owner does in this run (a cluster's workers do,
 * edge/cluster.ts, so that a node serves while its primary still starts) when nothing the owner's
 * open does is needed first: the folder holds the current format's index with a state of this
 * version (stateReadyBeforeOwner), no folder of an earlier format waits to be discarded, and no
 * other live process owns it. On a first start, after an upgrade or with an index of before
 * co-writers, a co-writer opens after its owner.
 *
 * The owner's open then keeps what co-writers already attached rely on: the list of writers open
 * (the owner keeps room ahead for them) and their folders under tmp/ (bodies being written). Both
 * are decided inside the owner's first index transaction, and a co-writer registers in one of its
 * own, making its folder again there: LMDB runs write transactions one at a time across
 * processes, so the owner either sees a co-writer registered, and leaves its folder alone, or
 * sets the folder aside before the co-writer makes it anew. Bytes a co-writer appended before the
 * owner's count of the segments and committed after it are counted twice until the next owner's
 * open: the disk then evicts a little early, never late.
 *
 * Neither open of the index's LMDB environment may run beside another process's commits to it:
 * LMDB as lmdb-js builds it then loses that commit (SharedIndexState.hold). With several
 * processes, whoever runs them holds the others' commits around that part of each open, which
 * makes the open's first commit too (DiskBlobStoreOptions.exclusiveEnvOpen; edge/cluster.ts).
 */
import { mkdirSync, readdirSync, renameSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { isCdnError } from '../errors.js';
import { BLOB_ERROR_CODES, blobError } from './blob-store.js';
import { discardOldFormats } from './disk-check.js';
import { errnoCode, lockHolder, makeDirs, nodeDiskFs, takeLock, type DirLock, type DiskFs } from './disk-fs.js';
import { DiskGenerations } from './disk-generations.js';
import { DiskIndex, type IndexState } from './disk-index.js';
import { allocated, layoutOf, type DiskLayout } from './disk-layout.js';
import type { DiskBlobStoreOptions, DiskStoreSettings, IndexCommits } from './disk-options.js';
import { RecencyMarks, slotsFor } from './disk-recency.js';
import { Segments } from './disk-segments.js';

/** What open() found: an older format discarded, or an index that could not be opened and was started anew. */
export interface OpenReport {
  discarded: string[];
}

/** A folder opened, for the store to be built on. */
export interface OpenedFolder {
  fs: DiskFs;
  layout: DiskLayout;
  index: DiskIndex;
  segments: Segments;
  /** Releases the lock taken. */
  release: () => Promise<void>;
  report: OpenReport;
  /** The owner's, after an unclean stop: body files younger than this may be commits in flight (ms since epoch). */
  checkFrom: number | undefined;
  marks: RecencyMarks;
}

/** Where a writer's bodies are written before they are renamed into place: the owner's tmp/, a co-writer's tmp/w<id>/. */
export function writerTmpDir(layout: DiskLayout, writer: number): string {
  return writer === 0 ? layout.tmpDir : join(layout.tmpDir, writerTmpName(writer));
}

/** Where the read marks are kept between runs (disk-recency.ts). */
export function marksPath(layout: DiskLayout): string {
  return join(layout.dataDir, 'recency');
}

/** The owner's open of `options.dir` (made if missing); throws blob_store_unavailable (or a lock's error). */
export async function openAsOwner(options: DiskBlobStoreOptions, opts: DiskStoreSettings): Promise<OpenedFolder> {
  const fs: DiskFs = { ...nodeDiskFs, ...options.fsOps };
  const layout = layoutOf(resolve(options.dir));
  let lock: DirLock | undefined;
  let index: DiskIndex | undefined;
  try {
    await makeDirs(fs, layout.root);
    lock = await takeLock(fs, layout.root);
    const report: OpenReport = { discarded: await discardOldFormats(fs, layout) };
    for (const dir of [layout.tmpDir, layout.dataDir, layout.segmentDir, layout.fileDir]) await fs.mkdir(dir, { recursive: true });
    // What the segment files hold, counted anew (a writer that died left bytes no entry points at):
    // counted before the index's open, committed in the open's first commit (exclusiveEnvOpen).
    const segments = new Segments(fs, layout);
    await segments.load();
    let aside: string | undefined;
    let attached: Attached = { writers: [], since: undefined };
    const opened = await exclusiveEnvOpen(options)(() => {
      const idx = (index = DiskIndex.open({ path: layout.indexPath, readOnly: false, pathOf: options.pathOf ?? ((key) => key), seqBlock: options.seqBlock }));
      if (idx.shared.hasState()) {
        idx.shared.updateStateSync((state) => {
          attached = attachedWriters(layout, state);
          aside = setAsideTmp(layout, attached.writers);
          idx.shared.recountSegments(state, segments.sizes(), allocated);
          DiskGenerations.initState(state, idx, segments);
          state.writers = attached.writers;
          idx.shared.takeSeqBlock(state);
        });
      } else {
        // A new index: no co-writer opens before a state exists. Its first commit writes the state
        // (an open that commits nothing leaves the index file as small as it was).
        aside = setAsideTmp(layout, []);
        idx.shared.takeSeqBlock(idx.shared.committedState());
      }
      return idx;
    });
    if (aside !== undefined) await fs.rm(aside, { recursive: true, force: true });
    const slots = slotsFor(opts.maxBytes);
    const marks = opened.state.entries === 0 ? RecencyMarks.empty(slots) : await RecencyMarks.load(fs, marksPath(layout), slots, opened.shared.committedState().head!);
    const checkFrom = lock.unclean ? Math.min(Date.now(), attached.since ?? Infinity) : undefined;
    return { fs, layout, index: opened, segments, release: lock.release, report, checkFrom, marks };
  } catch (err) {
    await index?.close().catch(() => undefined);
    await lock?.release();
    if (isCdnError(err)) throw err;
    throw blobError(BLOB_ERROR_CODES.storeUnavailable, `cannot open the blob store in ${layout.root} (${errnoCode(err) ?? String(err)})`, err);
  }
}

/**
 * A co-writer's open: after the owner opened the folder (and made its folders), or, with
 * `beforeOwner` (the pid of the process that opens it as its owner in this run), before it when
 * the folder allows (undefined when it does not).
 */
export async function openAsCoWriter(options: DiskBlobStoreOptions, writer: number, beforeOwner: number | undefined): Promise<OpenedFolder | undefined> {
  const fs: DiskFs = { ...nodeDiskFs, ...options.fsOps };
  const layout = layoutOf(resolve(options.dir));
  let lock: DirLock | undefined;
  let index: DiskIndex | undefined;
  try {
    if (beforeOwner !== undefined && !(await folderReadyBeforeOwner(fs, layout, beforeOwner))) return undefined;
    lock = await takeLock(fs, layout.root, writerLockName(writer));
    const tmpDir = writerTmpDir(layout, writer);
    await fs.rm(tmpDir, { recursive: true, force: true });
    await fs.mkdir(tmpDir, { recursive: true });
    let registered = false;
    const opened = await exclusiveEnvOpen(options)(() => {
      const idx = (index = DiskIndex.open({ path: layout.indexPath, readOnly: false, pathOf: options.pathOf ?? ((key) => key), seqBlock: options.seqBlock }));
      registered =
        (beforeOwner === undefined || idx.shared.hasState()) &&
        idx.shared.updateStateSync((state) => {
          if (beforeOwner !== undefined && !stateReadyBeforeOwner(state)) return false;
          // An owner opening meanwhile may have set the folder aside before this registration.
          mkdirSync(tmpDir, { recursive: true });
          state.writers = [...new Set([...(state.writers ?? []), writer])];
          // A state never committed: the owner's open of this new index took the first block without a commit.
          if (!idx.shared.hasState()) idx.shared.skipOwnersFirstSeqBlock(state);
          idx.shared.takeSeqBlock(state);
          return true;
        });
      return idx;
    });
    if (!registered) {
      index = undefined;
      await opened.close();
      const taken = lock;
      lock = undefined;
      await taken.release();
      return undefined;
    }
    return { fs, layout, index: opened, segments: new Segments(fs, layout), release: lock.release, report: { discarded: [] }, checkFrom: undefined, marks: RecencyMarks.empty(1) };
  } catch (err) {
    await index?.close().catch(() => undefined);
    await lock?.release();
    if (isCdnError(err)) throw err;
    throw blobError(BLOB_ERROR_CODES.storeUnavailable, `cannot open the blob store in ${layout.root} as writer ${writer} (${errnoCode(err) ?? String(err)})`, err);
  }
}


/** How `options` has the index's environment opened: its exclusiveEnvOpen, or at once. */
function exclusiveEnvOpen(options: DiskBlobStoreOptions): <T extends IndexCommits>(open: () => T) => Promise<T> {
  return options.exclusiveEnvOpen ?? (async (open) => open());
}

/** A co-writer's lock file (the owner's is LOCK). */
export function writerLockName(writer: number): string {
  return `LOCK-w${writer}`;
}

/** A co-writer's folder under tmp/. */
export function writerTmpName(writer: number): string {
  return `w${writer}`;
}

async function exists(fs: DiskFs, path: string): Promise<boolean> {
  try {
    await fs.stat(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return false;
    throw err;
  }
}

/**
 * Whether the folder's files allow a co-writer to open before its owner, process `ownerPid`: the
 * current format's index and folders are there, no earlier format's, and no other live process
 * owns the folder (another node on the same folder: the owner's open fails, and its co-writers
 * stay out). Its state is checked once the index is open: stateReadyBeforeOwner.
 */
export async function folderReadyBeforeOwner(fs: DiskFs, layout: DiskLayout, ownerPid: number): Promise<boolean> {
  const owner = lockHolder(layout.root, 'LOCK');
  if (owner !== undefined && owner.pid !== ownerPid) return false;
  for (const old of layout.oldDataDirs) if (await exists(fs, old)) return false;
  for (const path of [layout.indexPath, layout.segmentDir, layout.fileDir, layout.tmpDir]) if (!(await exists(fs, path))) return false;
  return true;
}

/**
 * Whether an index's committed state is one a co-writer may use before the owner's open: written
 * by this version's writers, which record the head generation with the first body committed (an
 * index of before co-writers has no head, evicted generations nor segment bytes in its state
 * until an owner's open counts them). Evicted generations absent: none was evicted yet, and a
 * co-writer reckons them from the index as an owner does.
 */
export function stateReadyBeforeOwner(state: IndexState): boolean {
  return state.head !== undefined;
}

/** The co-writers the owner finds open: their ids, and the earliest time one of them opened (ms since epoch). */
export interface Attached {
  writers: number[];
  since: number | undefined;
}

/**
 * Inside the owner's first index transaction: the co-writers registered in `state` whose lock a
 * live process holds (one that died left its id behind).
 */
export function attachedWriters(layout: DiskLayout, state: IndexState): Attached {
  const writers: number[] = [];
  let since: number | undefined;
  for (const id of new Set(state.writers ?? [])) {
    const taken = lockHolder(layout.root, writerLockName(id))?.since;
    if (taken === undefined) continue;
    writers.push(id);
    since = Math.min(since ?? taken, taken);
  }
  return { writers, since };
}

/**
 * The owner's open: moves everything in tmp/ (its own bodies cut short, the folders of co-writers
 * gone) into a new folder beside it, except the folders of the co-writers in `keep`, and returns
 * that folder, for the caller to delete (an interrupted deletion is finished at the next open:
 * disk-check.ts discards every `discarded-*` folder). Synchronous: run inside the owner's first
 * index transaction when co-writers may be attached.
 */
export function setAsideTmp(layout: DiskLayout, keep: number[]): string | undefined {
  const kept = new Set(keep.map(writerTmpName));
  let aside: string | undefined;
  let names: string[];
  try {
    names = readdirSync(layout.tmpDir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  for (const name of names) {
    if (kept.has(name)) continue;
    if (aside === undefined) {
      aside = join(layout.root, `discarded-tmp-${randomBytes(4).toString('hex')}`);
      mkdirSync(aside);
    }
    renameSync(join(layout.tmpDir, name), join(aside, name));
  }
  return aside;
}
