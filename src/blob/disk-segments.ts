/**
 * Segment files: where the disk store packs small objects, one file per generation and writer
 * (the owner, and each co-writer: several processes may write one store), records appended back
 * to back (format in disk-layout.ts). A segment is known by its id (segmentId: generation and
 * writer); a process appends only to its own writer's segments and reads everyone's. Appends reserve their offset at once and
 * write at it, so concurrent commits never wait on each other; nothing is fsynced per object:
 * `sync()` makes every append so far durable, and the store calls it before each index flush (an
 * index entry is committed only after the bytes it points at). A whole segment is dropped at once
 * when its generation is evicted, which is how the space of dead records comes back.
 *
 * Reads and appends are synchronous `pread`s and `pwritev`s of at most one packed object (≤ 64 KiB
 * by default): to and from the page cache that is a copy, cheaper than a trip through libuv's
 * thread pool, and what nginx does too.
 * Memory: one open handle per segment in use (a few hundred at most) and their sizes.
 */
import type { FileHandle } from 'node:fs/promises';
import { close, constants, readSync } from 'node:fs';
import { errnoCode, unlinkQuietly, type DiskFs } from './disk-fs.js';
import { allocated, generationOfSegment, segmentIdOf, segmentPath, type DiskLayout } from './disk-layout.js';
import type { ReadBuffers } from './read-buffers.js';

interface Segment {
  /** Bytes reserved (the file's size once every append in flight is written). */
  size: number;
  handle: Promise<FileHandle> | undefined;
  /** The open descriptor, for synchronous reads and appends: the handle's, or one openNow() opened. */
  fd: number | undefined;
  /** Appends since the last sync. */
  dirty: boolean;
  /** Appended to by this process (its writer's segments since it opened them): opened read-write. Others are only read. */
  created: boolean;
}

export class Segments {
  private readonly segments = new Map<number, Segment>();
  /** Segments being opened for appending (shared by the appends that wait for it). */
  private readonly opening = new Map<number, Promise<Segment>>();
  /** Sum of the segments' sizes. */
  total = 0;

  constructor(
    private readonly fs: DiskFs,
    private readonly layout: DiskLayout,
  ) {}

  /** Read the sizes of the segment files there are (one stat each: there are few). */
  async load(): Promise<void> {
    const names = (await this.fs.readdir(this.layout.segmentDir)) as string[];
    for (const name of names) {
      const sid = segmentIdOf(name);
      if (sid === undefined) continue;
      const st = await this.fs.stat(segmentPath(this.layout, sid)).catch(() => undefined);
      if (st === undefined) continue; // evicted meanwhile (another process evicts)
      this.segments.set(sid, { size: st.size, handle: undefined, fd: undefined, dirty: false, created: false });
      this.total += st.size;
    }
  }

  /** The segments known here, by id, with their sizes. */
  sizes(): Map<number, number> {
    return new Map([...this.segments].map(([sid, seg]) => [sid, seg.size]));
  }

  /** What the segments occupy on a file system of 4 KiB blocks. */
  get allocated(): number {
    let total = 0;
    for (const seg of this.segments.values()) total += allocated(seg.size);
    return total;
  }

  /** The generations of the segments known here (every writer's). */
  generations(): number[] {
    return [...new Set([...this.segments.keys()].map(generationOfSegment))].sort((a, b) => a - b);
  }

  has(g: number): boolean {
    return this.segments.has(g);
  }

  /** Whether segment `g` is open here, so it can be read synchronously. */
  isOpen(g: number): boolean {
    return this.segments.get(g)?.fd !== undefined;
  }

  /**
   * Open segment `g` for reading at once, with one synchronous open(2) of a file that exists (a few
   * µs, once per segment and process), so a hit is answered without waiting even on a segment this
   * process has not read yet: answered otherwise by the slow path, the first request on a
   * connection would hand the whole connection over to Node's HTTP server (serve/quick-front.ts).
   * False when the segment is not there, or is this process's head still being created.
   */
  openNow(g: number): boolean {
    const known = this.segments.get(g);
    if (known?.fd !== undefined) return true;
    if (known?.created === true || this.opening.has(g)) return false;
    let fd: number;
    try {
      fd = this.fs.openSync(segmentPath(this.layout, g), 'r');
    } catch {
      return false; // gone (evicted), or not readable: the slow path finds out which
    }
    const seg = known ?? { size: 0, handle: undefined, fd: undefined, dirty: false, created: false };
    seg.fd = fd;
    if (known === undefined) this.segments.set(g, seg);
    return true;
  }

  sizeOf(g: number): number {
    return this.segments.get(g)?.size ?? 0;
  }

  /**
   * Append `parts` to segment `g` (created if new); resolves with the record's offset. The bytes go
   * out with one synchronous pwritev once the segment is open: a packed record (≤ 64 KiB) is a copy
   * into the page cache (~5 µs), where two writes through libuv's thread pool cost ~55 µs of CPU
   * and, on a busy machine, a wait for a pool thread each (measured: the single largest cost of a
   * cold miss). nginx writes its cache files from the event loop too.
   */
  async append(g: number, parts: Uint8Array[]): Promise<number> {
    let seg = this.segments.get(g);
    if (seg === undefined || !seg.created) seg = await this.openForAppend(g);
    const length = parts.reduce((n, p) => n + p.byteLength, 0);
    const off = seg.size;
    seg.size += length;
    this.total += length;
    const fd = seg.fd!;
    let done = 0;
    while (done < length) {
      const n = this.fs.writevSync(fd, done === 0 ? parts : unwritten(parts, done), off + done);
      if (n <= 0) throw Object.assign(new Error(`segment ${g}: write made no progress`), { code: 'EIO' });
      done += n;
    }
    seg.dirty = true;
    return off;
  }

  /**
   * Open segment `g` (one of this process's writer) to append to: created if new, else appended to
   * after what it holds (a writer that restarted, or whose generation is still the head): never
   * truncated, as other processes may read records in it. Appends waiting for it share the open.
   */
  private openForAppend(g: number): Promise<Segment> {
    let opening = this.opening.get(g);
    if (opening === undefined) {
      opening = (async () => {
        const fh = await this.fs.open(segmentPath(this.layout, g), constants.O_RDWR | constants.O_CREAT, 0o644);
        let size: number;
        try {
          size = (await fh.stat()).size;
        } catch (err) {
          await fh.close().catch(() => undefined);
          throw err;
        }
        const old = this.segments.get(g);
        const seg: Segment = { size, handle: Promise.resolve(fh), fd: fh.fd, dirty: false, created: true };
        this.segments.set(g, seg);
        this.total += size - (old?.size ?? 0);
        if (old !== undefined) void closeSegment(old);
        return seg;
      })();
      this.opening.set(g, opening);
      const done = () => this.opening.delete(g);
      opening.then(done, done);
    }
    return opening;
  }

  /** Read `length` bytes at `off` of segment `g` (into a buffer of `buffers` when given); undefined when the segment is gone. */
  readSync(g: number, off: number, length: number, buffers?: ReadBuffers): Buffer | undefined {
    const seg = this.segments.get(g);
    if (seg === undefined) return undefined;
    const fd = seg.fd;
    if (fd === undefined) return undefined;
    const buf = buffers !== undefined && length <= buffers.size ? buffers.take(length) : Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, buf, got, length - got, off + got);
      if (n === 0) break;
      got += n;
    }
    return got === length ? buf : buf.subarray(0, got);
  }

  /** Open segment `g` for reading if it exists and is not open yet (reads are synchronous; the open is not). */
  async ready(g: number): Promise<boolean> {
    if (this.opening.has(g)) await this.opening.get(g)!.catch(() => undefined);
    let seg = this.segments.get(g);
    if (seg === undefined) {
      // Another writer's segment: found when first read (closed when the owner evicts it: forgetUpTo).
      seg = { size: 0, handle: undefined, fd: undefined, dirty: false, created: false };
      this.segments.set(g, seg);
    }
    if (seg.fd !== undefined) return true;
    try {
      await this.open(g, seg);
      return this.segments.get(g) === seg;
    } catch (err) {
      if (!seg.created && this.segments.get(g) === seg) this.segments.delete(g);
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  private open(g: number, seg: Segment): Promise<FileHandle> {
    seg.handle ??= this.fs.open(segmentPath(this.layout, g), 'r').then((fh) => {
      seg.fd ??= fh.fd;
      return fh;
    });
    seg.handle.catch(() => {
      if (this.segments.get(g) === seg) seg.handle = undefined;
    });
    return seg.handle;
  }

  /** Make every append so far durable (fdatasync each segment written since the last call). */
  async sync(): Promise<void> {
    // Only a segment this process created is written, and it is opened through its handle.
    const dirty = [...this.segments.values()].filter((s) => s.dirty && s.fd !== undefined && s.handle !== undefined);
    for (const seg of dirty) seg.dirty = false;
    await Promise.all(dirty.map(async (seg) => (await seg.handle!).datasync().catch((err: unknown) => ((seg.dirty = true), Promise.reject(err)))));
  }

  /** Forget segment `g` and delete its file (its records are gone from the index). */
  async remove(g: number): Promise<void> {
    const seg = this.segments.get(g);
    if (seg === undefined) return;
    this.segments.delete(g);
    this.total -= seg.size;
    await closeSegment(seg);
    await unlinkQuietly(this.fs, segmentPath(this.layout, g));
  }

  /**
   * Delete every writer's segment of generation `g` (its records are gone from the index): those
   * known here, and those on the disk (a co-writer's, a dead writer's).
   */
  async removeGeneration(g: number): Promise<void> {
    const sids = new Set([...this.segments.keys()].filter((sid) => generationOfSegment(sid) === g));
    for (const name of (await this.fs.readdir(this.layout.segmentDir).catch(() => [])) as string[]) {
      const sid = segmentIdOf(name);
      if (sid !== undefined && generationOfSegment(sid) === g) sids.add(sid);
    }
    for (const sid of sids) {
      if (this.segments.has(sid)) await this.remove(sid);
      else await unlinkQuietly(this.fs, segmentPath(this.layout, sid));
    }
  }

  /**
   * Close and forget the segments of generations up to `upTo` (evicted by the owner: their files
   * are deleted, and an open descriptor would keep their space taken).
   */
  async forgetUpTo(upTo: number): Promise<void> {
    const gone = [...this.segments.entries()].filter(([sid]) => generationOfSegment(sid) <= upTo);
    for (const [sid, seg] of gone) {
      this.segments.delete(sid);
      this.total -= seg.size;
    }
    await Promise.all(gone.map(([, seg]) => closeSegment(seg)));
  }

  async close(): Promise<void> {
    await Promise.all([...this.segments.values()].map(closeSegment));
    this.segments.clear();
    this.total = 0;
  }
}

/** Close what a segment has open: its handle, and a descriptor openNow() opened beside it. */
async function closeSegment(seg: Segment): Promise<void> {
  const fd = seg.fd;
  seg.fd = undefined;
  const fh = await seg.handle?.catch(() => undefined);
  if (fd !== undefined && fd !== fh?.fd) close(fd, () => undefined);
  await fh?.close().catch(() => undefined);
}

/** What is left of `parts` after the first `done` bytes (a short write). */
function unwritten(parts: Uint8Array[], done: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  for (const part of parts) {
    if (done >= part.byteLength) {
      done -= part.byteLength;
      continue;
    }
    rest.push(done === 0 ? part : part.subarray(done));
    done = 0;
  }
  return rest;
}
