/**
 * The edge's purge cursor: how far it has applied the origin's purge log, and the watermarks
 * purges left behind, in one small file in the cache folder that survives restarts:
 *
 *     {"anycdnPurgeCursor":1,"log":"3f9a1c0b7d2e","seq":42,"staleBefore":0,"absentBefore":0}
 *
 * - `log`, `seq`: every purge of log `log` up to `seq` is applied (null log: none followed yet);
 * - `staleBefore`: objects stored at or before this time (ms) are revalidated before they are
 *   served (a reset of the stream: purges were missed; a soft purge of everything);
 * - `absentBefore`: objects stored at or before this time count as not stored (a purge of everything).
 *
 * Written whole (a temp file, fsync, rename), so a crash leaves the old cursor or the new one,
 * never a mix; readers take the current format version and the one before it (none before 1).
 * Writes are serialised and coalesced: the newest state waiting is the one written next.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

export interface PurgeCursor {
  log: string | null;
  seq: number;
  staleBefore: number;
  absentBefore: number;
}

export const PURGE_CURSOR_VERSION = 1;
/** Versions this code reads: the current one and the one before it. */
export const READABLE_CURSOR_VERSIONS: readonly number[] = [PURGE_CURSOR_VERSION, PURGE_CURSOR_VERSION - 1].filter((v) => v >= 1);
export const PURGE_CURSOR_FILE = 'purge-cursor.json';

export const EMPTY_CURSOR: Readonly<PurgeCursor> = Object.freeze({ log: null, seq: 0, staleBefore: 0, absentBefore: 0 });

export function encodeCursor(c: PurgeCursor): string {
  return `${JSON.stringify({ anycdnPurgeCursor: PURGE_CURSOR_VERSION, log: c.log, seq: c.seq, staleBefore: c.staleBefore, absentBefore: c.absentBefore })}\n`;
}

/** The cursor of a file's text, or a message saying what is wrong with it. */
export function decodeCursor(text: string): PurgeCursor | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  const v = value as Record<string, unknown> | null;
  if (typeof v !== 'object' || v === null || typeof v.anycdnPurgeCursor !== 'number') return 'not a purge cursor';
  if (!READABLE_CURSOR_VERSIONS.includes(v.anycdnPurgeCursor)) return `format version ${v.anycdnPurgeCursor} is not one this anycdn reads (${READABLE_CURSOR_VERSIONS.join(', ')})`;
  const log = v.log;
  if (!(log === null || (typeof log === 'string' && /^[0-9a-f]{12}$/.test(log)))) return 'log must be null or a log id';
  for (const field of ['seq', 'staleBefore', 'absentBefore'] as const) {
    if (!Number.isSafeInteger(v[field]) || (v[field] as number) < 0) return `${field} must be a whole number ≥ 0`;
  }
  return { log, seq: v.seq as number, staleBefore: v.staleBefore as number, absentBefore: v.absentBefore as number };
}

/** The cursor file of a cache folder. */
export class PurgeCursorFile {
  readonly path: string;
  private writing: Promise<void> = Promise.resolve();
  private next: PurgeCursor | undefined;

  constructor(readonly dir: string) {
    this.path = join(dir, PURGE_CURSOR_FILE);
  }

  /** The cursor on disk; undefined when there is none, a message when the file cannot be used. */
  async read(): Promise<PurgeCursor | undefined | { problem: string }> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      return { problem: `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
    }
    const cursor = decodeCursor(text);
    return typeof cursor === 'string' ? { problem: cursor } : cursor;
  }

  /** Write `cursor` (or a later one given before this write starts); resolves when it is on disk. */
  write(cursor: PurgeCursor): Promise<void> {
    const queued = this.next !== undefined;
    this.next = { ...cursor };
    if (queued) return this.writing;
    // A failed write fails its callers; the next one is still tried.
    this.writing = this.writing
      .catch(() => undefined)
      .then(async () => {
        const c = this.next!;
        this.next = undefined;
        await this.writeNow(c);
      });
    return this.writing;
  }

  private async writeNow(cursor: PurgeCursor): Promise<void> {
    const tmp = `${this.path}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const file = await open(tmp, 'w', 0o644);
      try {
        await file.writeFile(encodeCursor(cursor));
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }
}
