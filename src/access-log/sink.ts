/**
 * Destinations of the access log: a file opened for appending (reopened at the same path after a
 * rotation), or standard output or error. Files are written on libuv's thread pool, never on the
 * event loop (a congested disk can block a write). Pipes and sockets are non-blocking (a named pipe
 * is opened O_NONBLOCK; Node has made its standard output and error so when they are pipes), so
 * they are written right from the event loop, which a non-blocking write never holds: a full pipe
 * answers EAGAIN and the write is tried again a little later, so a reader that stopped reading
 * holds nothing, and a stop does not wait for it forever. (A pool hand-off per PIPE_BUF piece would
 * cost more than the lines themselves.)
 *
 * Lines never interleave with other writers' (cluster workers appending to the same file, the
 * lifecycle log on the same standard output): a regular file opened with O_APPEND takes each
 * write whole at its end; a pipe or socket takes a write whole only up to PIPE_BUF bytes, so
 * batches for those are written in pieces of at most PIPE_BUF that end at a line's end.
 */
import { close, constants, fstat, open, write, writeSync, writev } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { LogSink } from './writer.js';

/** POSIX guarantees atomic pipe writes up to PIPE_BUF bytes; Linux's is 4096. */
const PIPE_BUF = 4096;
/**
 * A non-blocking destination that is full is tried again after this long: short, since a pipe
 * holds 64 KiB and a busy node fills it in milliseconds while its reader keeps up.
 */
const RETRY_MS = 2;
const NEWLINE = 0x0a;

/**
 * `stdout`, `stderr`, or a file path opened for appending (created with mode 0644 when missing; a
 * named pipe must have a reader already: ENXIO otherwise).
 */
export async function openLogSink(path: string): Promise<LogSink> {
  const state = { closed: false };
  if (path === 'stdout' || path === 'stderr') {
    const fd = path === 'stdout' ? 1 : 2;
    // Node makes a pipe non-blocking when its stream is first used (libuv's pipe handle).
    void (fd === 1 ? process.stdout : process.stderr);
    const kind = await destinationKind(fd);
    return {
      write: (chunks) => writeChunks(fd, chunks, kind, state),
      reopen: async () => undefined,
      close: async () => void (state.closed = true),
    };
  }
  let fd = await openAppend(path);
  let kind = await destinationKind(fd);
  return {
    write: (chunks) => writeChunks(fd, chunks, kind, state),
    async reopen() {
      const next = await openAppend(path);
      const old = fd;
      fd = next;
      kind = await destinationKind(next);
      await closeFd(old);
    },
    close() {
      state.closed = true;
      return closeFd(fd);
    },
  };
}

const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK;

function openAppend(path: string): Promise<number> {
  return new Promise((resolve, reject) => open(path, APPEND, 0o644, (err, fd) => (err === null ? resolve(fd) : reject(err))));
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve) => close(fd, () => resolve()));
}

/**
 * How a destination is written: `file` (a regular file: whole batches, on the thread pool),
 * `nonblocking` (a pipe or socket that answers EAGAIN when full: PIPE_BUF pieces, right away) or
 * `blocking` (a pipe or socket that would block the event loop when full: PIPE_BUF pieces, on the
 * thread pool). Non-blocking is read from /proc/self/fdinfo; where that cannot be read, blocking.
 */
type DestinationKind = 'file' | 'nonblocking' | 'blocking';

async function destinationKind(fd: number): Promise<DestinationKind> {
  const regular = await new Promise<boolean>((resolve) => fstat(fd, (err, stats) => resolve(err === null && stats.isFile())));
  if (regular) return 'file';
  const info = await readFile(`/proc/self/fdinfo/${fd}`, 'latin1').catch(() => '');
  const flags = /^flags:\s*([0-7]+)$/m.exec(info)?.[1];
  return flags !== undefined && (parseInt(flags, 8) & constants.O_NONBLOCK) !== 0 ? 'nonblocking' : 'blocking';
}

/**
 * Writes every chunk: to a regular file with writev(2), as few calls as it takes; to anything else
 * in pieces of whole lines of at most PIPE_BUF bytes.
 */
async function writeChunks(fd: number, chunks: readonly Buffer[], kind: DestinationKind, state: { closed: boolean }): Promise<void> {
  if (kind === 'file') {
    let rest = chunks.filter((c) => c.length > 0);
    while (rest.length > 0) {
      let written = await writeSomeV(fd, rest, state);
      while (rest.length > 0 && written >= rest[0]!.length) written -= rest.shift()!.length;
      if (written > 0) rest[0] = rest[0]!.subarray(written);
    }
    return;
  }
  for (const chunk of chunks) await writePieces(fd, chunk, kind === 'nonblocking', state);
}

/** Writes a chunk of whole lines in pieces of at most PIPE_BUF bytes, each ending at a line's end. */
async function writePieces(fd: number, bytes: Buffer, nonBlocking: boolean, state: { closed: boolean }): Promise<void> {
  let at = 0;
  while (at < bytes.length) {
    let end = bytes.length;
    if (end - at > PIPE_BUF) {
      const lastLineEnd = bytes.lastIndexOf(NEWLINE, at + PIPE_BUF - 1);
      // A line longer than PIPE_BUF goes alone, in one write.
      end = lastLineEnd >= at ? lastLineEnd + 1 : bytes.indexOf(NEWLINE, at) + 1 || bytes.length;
    }
    at += await (nonBlocking ? writeNow(fd, bytes, at, end - at, state) : writeSome(fd, bytes, at, end - at, state));
  }
}

/** One write(2) of `length` bytes from `offset`, on the thread pool; resolves with the bytes written. */
function writeSome(fd: number, bytes: Buffer, offset: number, length: number, state: { closed: boolean }): Promise<number> {
  return retried(state, (done) => write(fd, bytes, offset, length, null, done));
}

/** One write(2) of `length` bytes from `offset` to a non-blocking destination, on the event loop; resolves with the bytes written. */
function writeNow(fd: number, bytes: Buffer, offset: number, length: number, state: { closed: boolean }): Promise<number> {
  return retried(state, (done) => {
    let written: number;
    try {
      written = writeSync(fd, bytes, offset, length);
    } catch (err) {
      done(err as NodeJS.ErrnoException, 0);
      return;
    }
    done(null, written);
  });
}

/** One writev(2); resolves with the bytes written. */
function writeSomeV(fd: number, chunks: Buffer[], state: { closed: boolean }): Promise<number> {
  return retried(state, (done) => writev(fd, chunks, null, done));
}

/** Runs a write, trying again while the destination is full (EAGAIN) until the sink is closed. */
function retried(state: { closed: boolean }, call: (done: (err: NodeJS.ErrnoException | null, written: number) => void) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (state.closed) {
        reject(Object.assign(new Error('the access log closed while its destination was full'), { code: 'EAGAIN' }));
        return;
      }
      call((err, written) => {
        if (err === null) resolve(written);
        else if (err.code === 'EAGAIN') setTimeout(attempt, RETRY_MS);
        else reject(err);
      });
    };
    attempt();
  });
}
