/**
 * kill -9 during and right after a write, and in the middle of a fill: the store reopens with
 * either nothing or the complete object for each key, never a partial one, every commit that
 * returned is still there, and no temp residue is left. The writer is a separate process
 * (crash-writer.ts, compiled to dist/ by `npm test`), killed by PID with SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { expectBody, pattern, put, readBody } from '../../contract/blob-store-contract.js';
import { crashPattern, fillBody } from './crash-writer.js';
import { DISK_FORMAT_VERSION } from '../../../src/blob/disk-layout.js';

/** The folder of the current format in a cache directory. */
const DATA_DIR = `v${DISK_FORMAT_VERSION}`;

const CHILD = fileURLToPath(new URL('../../../dist/test/integration/blob/crash-writer.js', import.meta.url));
const SIZE = 20 * 1024 * 1024;
const built = existsSync(CHILD);
if (!built) console.warn(`crash tests skipped: ${CHILD} is missing; run \`npx tsc -p .\` (npm test does) first`);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Start the writer; resolve with the first stdout line matching `prefix`. */
function startWriter(dir: string, key: string, mode: 'slow' | 'commit' | 'fill', size = SIZE): { child: ChildProcess; line: Promise<string>; lines: string[] } {
  const child = spawn(process.execPath, [CHILD, dir, key, mode, String(size)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const line = new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        lines.push(out.slice(0, nl));
        out = out.slice(nl + 1);
      }
      if (lines.length > 0) resolve(lines[0]!);
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code, signal) => reject(new Error(`writer exited (${code ?? signal}) before reporting: ${err}`)));
  });
  return { child, line, lines };
}

async function killAndWait(child: ChildProcess): Promise<void> {
  const exited = new Promise<string | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  process.kill(child.pid!, 'SIGKILL');
  expect(await exited).toBe('SIGKILL');
}

async function setupDir(): Promise<string> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-crash-'));
  cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
  const store = await DiskBlobStore.open({ dir, maxBytes: 256 * 1024 * 1024 });
  await put(store, 'bystander', pattern(50_000, 7));
  await store.close();
  return dir;
}

async function reopen(dir: string): Promise<DiskBlobStore> {
  const store = await DiskBlobStore.open({ dir, maxBytes: 256 * 1024 * 1024 });
  cleanups.push(() => store.close());
  return store;
}

describe.skipIf(!built)('DiskBlobStore after kill -9', () => {
  it('has no trace of an object whose writer was killed mid-write', async () => {
    const dir = await setupDir();
    const { child, line } = startWriter(dir, 'video.mp4', 'slow');
    const progress = Number((await line).split(' ')[1]);
    expect(progress).toBeGreaterThanOrEqual(8 * 1024 * 1024);
    await killAndWait(child);
    const residue = await fsp.readdir(join(dir, 'tmp'));
    expect(residue).toHaveLength(1); // the killed write's partial temp file
    const partial = (await fsp.stat(join(dir, 'tmp', residue[0]!))).size;
    expect(partial).toBeGreaterThanOrEqual(progress);
    expect(partial).toBeLessThan(SIZE);

    const store = await reopen(dir);
    expect(await store.get('video.mp4')).toBeUndefined();
    expect(store.keys()).toEqual(['bystander']);
    expect(await fsp.readdir(join(dir, 'tmp'))).toEqual([]);
    expect(await bodyFiles(dir)).toEqual([]); // the bystander is packed: no body file at all
    await expectBody(store, 'bystander', pattern(50_000, 7));
  });

  it('has the complete object, byte-exact, when the writer was killed right after commit', async () => {
    const dir = await setupDir();
    const { child, line } = startWriter(dir, 'video.mp4', 'commit');
    const [word, sha] = (await line).split(' ');
    expect(word).toBe('committed');
    await killAndWait(child);

    const store = await reopen(dir);
    const entry = (await store.get('video.mp4'))!;
    expect(entry.meta).toMatchObject({ key: 'video.mp4', size: SIZE, sha256: sha });
    const body = await readBody(entry);
    expect(body.length).toBe(SIZE);
    expect(body.equals(crashPattern(0, SIZE))).toBe(true);
    expect(createHash('sha256').update(body).digest('hex')).toBe(sha);
    expect(await fsp.readdir(join(dir, 'tmp'))).toEqual([]);
    await expectBody(store, 'bystander', pattern(50_000, 7));
    expect(await store.checked).toMatchObject({ ran: true, dropped: 0, orphanFiles: 0, complete: true });
  });

  it('keeps every object whose commit returned, and serves nothing partial, after a kill in the middle of a fill', async () => {
    const dir = await setupDir();
    const size = 2048;
    const { child, line, lines } = startWriter(dir, 'obj/', 'fill', size);
    await line;
    await expect.poll(() => lines.length, { timeout: 20_000, interval: 20 }).toBeGreaterThanOrEqual(500);
    await killAndWait(child);
    const committed = lines.filter((l) => l.startsWith('committed ')).map((l) => l.slice('committed '.length));
    expect(committed.length).toBeGreaterThanOrEqual(500);

    const store = await reopen(dir);
    for (const key of committed) {
      const entry = await store.get(key);
      expect(entry, key).toBeDefined();
      expect(entry!.data!.equals(fillBody(Number(key.slice(4)), size)), key).toBe(true);
    }
    // Objects committed after the last line was read are there whole, or not at all.
    const stored = store.keys().filter((k) => k.startsWith('obj/'));
    expect(stored.length).toBeGreaterThanOrEqual(committed.length);
    for (const key of stored) {
      const entry = await store.get(key);
      if (entry !== undefined) expect(entry.data!.equals(fillBody(Number(key.slice(4)), size)), key).toBe(true);
    }
    expect(await fsp.readdir(join(dir, 'tmp'))).toEqual([]);
    expect(store.stats().corruptDropped).toBe(0);
    // The counters came back with the records they count (written in the same transactions).
    expect(store.stats().entries).toBe(store.keys().length);
    await expectBody(store, 'bystander', pattern(50_000, 7));
  });
});

/** Body files under the store's files/ folder. */
async function bodyFiles(dir: string): Promise<string[]> {
  const root = join(dir, DATA_DIR, 'files');
  const out: string[] = [];
  for (const shard of await fsp.readdir(root).catch(() => [] as string[])) out.push(...(await fsp.readdir(join(root, shard))));
  return out;
}
