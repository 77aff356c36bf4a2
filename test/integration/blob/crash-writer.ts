/**
 * Helper process for the kill -9 test (crash.test.ts): opens a DiskBlobStore and writes one object,
 * reporting on stdout so the test knows when to SIGKILL it. Runs compiled, from
 * dist/test/integration/blob/crash-writer.js (`npm test` builds with tsc first).
 *
 *   node crash-writer.js <dir> <key> slow   <size>  write 8 MiB, print "progress <bytes>", then
 *                                                    keep writing 64 KiB every 50 ms (never commits
 *                                                    before it is killed)
 *   node crash-writer.js <dir> <key> commit <size>  write everything, commit, print
 *                                                    "committed <sha256>", then idle until killed
 *   node crash-writer.js <dir> <prefix> fill <size>  commit objects <prefix>0, <prefix>1 … of <size>
 *                                                    bytes, 32 at a time, printing "committed <key>"
 *                                                    for each, until killed
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';

const CHUNK = 64 * 1024;
const SLOW_AFTER = 8 * 1024 * 1024;

/** The bytes [offset, offset + length) of the object the writer produces. */
export function crashPattern(offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = (Math.imul(offset + i, 2654435761) >>> 24) ^ ((offset + i) & 0xff);
  return out;
}

async function main(): Promise<void> {
  const [dir, key, mode, sizeArg] = process.argv.slice(2);
  const size = Number(sizeArg);
  if (dir === undefined || key === undefined || (mode !== 'slow' && mode !== 'commit' && mode !== 'fill') || !(size > 0)) {
    throw new Error('usage: crash-writer <dir> <key> slow|commit|fill <size>');
  }
  const store = await DiskBlobStore.open({ dir, maxBytes: 256 * 1024 * 1024, maxEntrySize: 64 * 1024 * 1024 });
  if (mode === 'fill') return fill(store, key, size);
  const writer = await store.begin(key, size);
  if (writer === undefined) throw new Error('store refused the object');
  const hash = createHash('sha256');
  let announced = false;
  for (let off = 0; off < size; off += CHUNK) {
    const piece = crashPattern(off, Math.min(CHUNK, size - off));
    await writer.write(piece);
    hash.update(piece);
    if (mode === 'slow' && off + piece.length >= SLOW_AFTER) {
      if (!announced) process.stdout.write(`progress ${off + piece.length}\n`);
      announced = true;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const now = Date.now();
  await writer.commit({ key, size, status: 200, headers: [['content-type', 'application/octet-stream']], requestTime: now, responseTime: now, storedAt: now });
  process.stdout.write(`committed ${hash.digest('hex')}\n`);
  setInterval(() => undefined, 1000); // stay alive, store open, until killed
}

/** The body of object number `n` of a fill: its bytes depend on `n`, so a mix-up shows. */
export function fillBody(n: number, size: number): Buffer {
  return crashPattern(n * 7919, size);
}

async function fill(store: DiskBlobStore, prefix: string, size: number): Promise<never> {
  let next = 0;
  const one = async (): Promise<void> => {
    for (;;) {
      const n = next++;
      const key = `${prefix}${n}`;
      const writer = (await store.begin(key, size))!;
      await writer.write(fillBody(n, size));
      const now = Date.now();
      await writer.commit({ key, size, status: 200, headers: [['x-n', String(n)]], requestTime: now, responseTime: now, storedAt: now });
      process.stdout.write(`committed ${key}\n`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, one));
  throw new Error('unreachable');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
