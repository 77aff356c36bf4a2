/**
 * The access log's destinations on real files and pipes: appending, reopening after a rename,
 * whole lines through a pipe shared with another writer, a pipe nobody reads, a pipe with no
 * reader at all.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLogSink } from '../../../src/access-log/sink.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'anycdn-log-sink-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lines = (prefix: string, n: number, width = 100): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i} `.padEnd(width - 1, '.') + '\n');
const chunk = (ls: string[]): Buffer => Buffer.from(ls.join(''), 'latin1');

/** Reads a non-blocking pipe until `bytes` have come or nothing comes for a while, a little at a time. */
async function drain(fd: number, bytes: number, pauseMs = 2): Promise<string> {
  const buffer = Buffer.alloc(16 * 1024);
  let text = '';
  let idle = 0;
  while (text.length < bytes && idle < 2000) {
    let got = 0;
    try {
      got = readSync(fd, buffer, 0, buffer.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
    text += buffer.toString('latin1', 0, got);
    idle = got === 0 ? idle + 1 : 0;
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  return text;
}

describe('file destination', () => {
  it('appends to what the file holds, chunks in order, and creates a missing file 0644 (less the umask)', async () => {
    const path = join(dir, 'append.log');
    await writeFile(path, 'earlier\n');
    const sink = await openLogSink(path);
    await sink.write([chunk(lines('a', 3)), Buffer.alloc(0), chunk(lines('b', 2))]);
    await sink.close();
    expect(await readFile(path, 'latin1')).toBe('earlier\n' + [...lines('a', 3), ...lines('b', 2)].join(''));
    const created = join(dir, 'created.log');
    const fresh = await openLogSink(created);
    await fresh.close();
    const umask = process.umask();
    expect((await stat(created)).mode & 0o777).toBe(0o644 & ~umask);
  });

  it('after a rename, reopen writes to a new file at the path; the renamed one keeps what came before', async () => {
    const path = join(dir, 'rotated.log');
    const sink = await openLogSink(path);
    await sink.write([chunk(lines('old', 2))]);
    await rename(path, `${path}.1`);
    await sink.write([chunk(lines('still-old', 1))]);
    await sink.reopen();
    await sink.write([chunk(lines('new', 2))]);
    await sink.close();
    expect(await readFile(`${path}.1`, 'latin1')).toBe([...lines('old', 2), ...lines('still-old', 1)].join(''));
    expect(await readFile(path, 'latin1')).toBe(lines('new', 2).join(''));
  });

  it('a write after close fails instead of writing', async () => {
    const sink = await openLogSink(join(dir, 'closed.log'));
    await sink.close();
    await expect(sink.write([chunk(lines('late', 1))])).rejects.toThrow();
  });
});

describe('pipe destination', () => {
  it('refuses a named pipe nobody reads at open (ENXIO) rather than waiting for a reader', async () => {
    const fifo = join(dir, 'no-reader.fifo');
    execFileSync('mkfifo', [fifo]);
    await expect(openLogSink(fifo)).rejects.toMatchObject({ code: 'ENXIO' });
  });

  it('sends whole lines through a pipe shared with another writer, however slowly it is read', async () => {
    const fifo = join(dir, 'shared.fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const one = await openLogSink(fifo);
      const two = await openLogSink(fifo);
      // 200 KB each, lines of many widths: far more than the pipe holds, so both wait for the reader.
      const a = Array.from({ length: 2000 }, (_, i) => `a-${i} `.padEnd(40 + ((i * 37) % 120), 'a') + '\n');
      const b = Array.from({ length: 2000 }, (_, i) => `b-${i} `.padEnd(40 + ((i * 53) % 120), 'b') + '\n');
      const total = a.join('').length + b.join('').length;
      const writes = Promise.all([one.write([chunk(a.slice(0, 1000)), chunk(a.slice(1000))]), two.write([chunk(b)])]);
      const text = await drain(reader, total);
      await writes;
      await Promise.all([one.close(), two.close()]);
      expect(text.length).toBe(total);
      const got = text.split('\n').filter(Boolean).map((l) => l + '\n');
      // Each writer's lines arrive whole and in its order, however they are mixed with the other's.
      expect(got.filter((l) => l.startsWith('a-'))).toEqual(a);
      expect(got.filter((l) => l.startsWith('b-'))).toEqual(b);
      expect(got.length).toBe(4000);
    } finally {
      closeSync(reader);
    }
  });

  it('writes a line longer than PIPE_BUF whole, in order with the rest', async () => {
    const fifo = join(dir, 'long.fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const sink = await openLogSink(fifo);
      const content = [...lines('before', 50), 'L'.repeat(9000) + '\n', ...lines('after', 50)];
      const writing = sink.write([chunk(content)]);
      const text = await drain(reader, chunk(content).length);
      await writing;
      await sink.close();
      expect(text).toBe(content.join(''));
    } finally {
      closeSync(reader);
    }
  });

  it('a write waiting on a full pipe fails once the sink is closed, holding no thread', async () => {
    const fifo = join(dir, 'full.fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const sink = await openLogSink(fifo);
      const writing = sink.write([chunk(lines('x', 5000))]); // 500 KB into a 64 KiB pipe nobody reads
      const outcome = writing.then(
        () => 'written',
        (err: NodeJS.ErrnoException) => err.code,
      );
      await new Promise((r) => setTimeout(r, 100));
      await sink.close();
      expect(await outcome).toBe('EAGAIN');
    } finally {
      closeSync(reader);
    }
  });
});
