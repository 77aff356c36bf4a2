/**
 * The file-system operations the disk blob store uses, gathered in one object so tests can inject
 * failures (a write that hits ENOSPC, a rename that fails) without a full disk; plus the two
 * durability primitives built on them: fsync of a directory after a rename, and the atomic
 * small-file write (temp file, fsync, rename, fsync the directory).
 *
 * Also the directory lock: one process owns a cache directory, because the owner wipes `tmp/` at
 * open and keeps the index in memory. The lock file holds the owner's pid and process start time,
 * so a lock left by a killed process (or by a pid reused after a container restart) is taken over.
 */
import { randomBytes } from 'node:crypto';
import { openSync, readFileSync, readFile as readFileCallback, statSync, writevSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { promisify } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import { BLOB_ERROR_CODES, blobError } from './blob-store.js';

export type DiskFs = Pick<typeof fsp, 'open' | 'rename' | 'unlink' | 'rm' | 'mkdir' | 'readdir' | 'readFile' | 'stat'> & {
  /** A synchronous positioned write of several buffers (pwritev): the segment append of a packed body. */
  writevSync: typeof writevSync;
  /** A synchronous open: a segment opened for reading within a hit answered without waiting. */
  openSync: typeof openSync;
};

export const nodeDiskFs: DiskFs = {
  open: fsp.open,
  rename: fsp.rename,
  unlink: fsp.unlink,
  rm: fsp.rm,
  mkdir: fsp.mkdir,
  readdir: fsp.readdir,
  // The callback readFile is markedly faster than fs/promises' on Node 20 (fewer thread-pool round trips).
  readFile: promisify(readFileCallback) as unknown as typeof fsp.readFile,
  stat: fsp.stat,
  writevSync,
  openSync,
};

export function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * `mkdir -p` for a configured root: creates `dir` and its missing parents, one level at a time.
 * Node 20's `mkdir(…, { recursive: true })` never returns for a path under /proc (it retries the
 * ENOENT forever); this fails there with the first directory that cannot be made.
 */
export async function makeDirs(fs: Pick<DiskFs, 'mkdir'>, dir: string): Promise<void> {
  const missing: string[] = [];
  for (let path = resolve(dir); ; ) {
    try {
      await fs.mkdir(path);
      break;
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') break;
      const parent = dirname(path);
      if (errnoCode(err) !== 'ENOENT' || parent === path) throw err;
      missing.push(path);
      path = parent;
    }
  }
  for (const path of missing.reverse()) {
    try {
      await fs.mkdir(path);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
  }
}

/** Unlink, treating "already gone" as success; other errors are swallowed too (best-effort cleanup). */
export async function unlinkQuietly(fs: DiskFs, path: string): Promise<void> {
  try {
    await fs.unlink(path);
  } catch {
    // Already gone, or the disk is failing: the next open() sweeps what is left.
  }
}

/**
 * Make a rename inside `dir` durable (POSIX: the directory entry is only on disk after fsync).
 * File systems that cannot fsync a directory (EINVAL, EISDIR on some platforms) are tolerated.
 */
export async function syncDir(fs: DiskFs, dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    if (errnoCode(err) !== 'EINVAL' && errnoCode(err) !== 'EISDIR') throw err;
  } finally {
    await fh.close();
  }
}

/** A fresh, unique file name inside `tmpDir`. */
export function tempPath(tmpDir: string, suffix: string): string {
  return join(tmpDir, `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}${suffix}`);
}

/** Replace `path` with `data` atomically: readers see the old or the new content, never a mix. */
export async function writeFileAtomic(fs: DiskFs, tmpDir: string, path: string, data: Uint8Array): Promise<void> {
  const tmp = tempPath(tmpDir, '.meta.part');
  try {
    const fh = await fs.open(tmp, 'wx');
    try {
      let off = 0;
      while (off < data.length) off += (await fh.write(data, off, data.length - off)).bytesWritten;
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path);
  } catch (err) {
    await unlinkQuietly(fs, tmp);
    throw err;
  }
  await syncDir(fs, dirname(path));
}

interface LockOwner {
  pid: number;
  /** Kernel start time of the process (Linux /proc/<pid>/stat field 22), when readable. */
  start: string | null;
}

async function processStart(fs: DiskFs, pid: number): Promise<string | null> {
  try {
    const stat = (await fs.readFile(`/proc/${pid}/stat`, 'utf8')) as string;
    // The command name (field 2) may contain spaces; fields after the closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

async function ownerAlive(fs: DiskFs, owner: LockOwner): Promise<boolean> {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if (errnoCode(err) !== 'EPERM') return false;
  }
  if (owner.start === null) return true;
  const start = await processStart(fs, owner.pid);
  return start === null || start === owner.start;
}

/**
 * The process holding `<dir>/<name>` and when it took it (ms since epoch), when that process is
 * alive; else undefined (absent, unreadable, or left by a process that is gone). Synchronous: the
 * disk store's owner asks it inside an index transaction at open, where it must not yield
 * (disk-open.ts).
 */
export function lockHolder(dir: string, name: string): { pid: number; since: number } | undefined {
  const path = join(dir, name);
  let owner: LockOwner;
  let since: number;
  try {
    since = statSync(path).mtimeMs;
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockOwner>;
    if (typeof parsed.pid !== 'number') return undefined;
    owner = { pid: parsed.pid, start: parsed.start ?? null };
  } catch {
    return undefined;
  }
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if (errnoCode(err) !== 'EPERM') return undefined;
  }
  if (owner.start === null) return { pid: owner.pid, since };
  let start: string | null = null;
  try {
    const stat = readFileSync(`/proc/${owner.pid}/stat`, 'utf8');
    start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    start = null;
  }
  return start === null || start === owner.start ? { pid: owner.pid, since } : undefined;
}

/** Directories locked by this process, so a second store on the same directory is refused too. */
const heldLocks = new Set<string>();

export interface DirLock {
  release(): Promise<void>;
  /**
   * Whether the previous owner stopped without releasing the lock (a crash, a kill, a power loss:
   * the LOCK is made durable when taken, and removed only by a clean release).
   */
  unclean: boolean;
}

/** Take `<dir>/LOCK` or throw `blob_store_locked`; returns the release function. */
export async function lockDir(fs: DiskFs, dir: string): Promise<() => Promise<void>> {
  return (await takeLock(fs, dir)).release;
}

/** Take `<dir>/<name>` (default LOCK) or throw `blob_store_locked`, telling whether the previous owner stopped cleanly. */
export async function takeLock(fs: DiskFs, dir: string, name = 'LOCK'): Promise<DirLock> {
  const path = join(dir, name);
  if (heldLocks.has(path)) throw blobError(BLOB_ERROR_CODES.storeLocked, `${dir} is already open in this process`);
  const me: LockOwner = { pid: process.pid, start: await processStart(fs, process.pid) };
  let unclean = false;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await fs.open(path, 'wx');
      try {
        await fh.writeFile(JSON.stringify(me));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await syncDir(fs, dir); // so that a power loss leaves the LOCK behind, and the next open knows
      heldLocks.add(path);
      return {
        unclean,
        release: async () => {
          heldLocks.delete(path);
          await unlinkQuietly(fs, path);
        },
      };
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    let owner: LockOwner | undefined;
    try {
      const parsed = JSON.parse((await fs.readFile(path, 'utf8')) as string) as Partial<LockOwner>;
      if (typeof parsed.pid === 'number') owner = { pid: parsed.pid, start: parsed.start ?? null };
    } catch {
      owner = undefined; // unreadable lock: left by a crash between create and write
    }
    const mine = owner !== undefined && owner.pid === process.pid && owner.start === me.start;
    if (owner !== undefined && !mine && (await ownerAlive(fs, owner))) {
      throw blobError(BLOB_ERROR_CODES.storeLocked, `${dir} is in use by process ${owner.pid}`);
    }
    unclean = true;
    await unlinkQuietly(fs, path); // stale: its owner is gone
  }
  throw blobError(BLOB_ERROR_CODES.storeLocked, `${dir}: could not take the lock`);
}
