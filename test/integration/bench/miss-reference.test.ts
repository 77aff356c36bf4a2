/**
 * The benchmarks' bare-Node miss reference (test/bench/miss-reference.ts, run from dist/ as
 * bench:disk runs it) in front of the counting origin: every GET goes to the origin once, the
 * client gets the origin's bytes and entity fields, and each body is in a file of its own under
 * DIR, named by the URL's SHA-1; with two processes (node:cluster) too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectBody } from '../../bench/counting-origin.js';
import { exited } from '../../support/process.js';

const BENCH = fileURLToPath(new URL('../../../dist/test/bench/', import.meta.url));
const built = existsSync(join(BENCH, 'miss-reference.js')) && existsSync(join(BENCH, 'counting-origin.js'));

let dir: string;
let origin: string;
const children: ChildProcess[] = [];

/** Starts dist/test/bench/`script` and resolves with the `url` of its ready line. */
async function start(script: string, args: string[]): Promise<string> {
  const child = spawn(process.execPath, [join(BENCH, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${script} exited (${code})`)));
  });
  return (JSON.parse(first) as { url: string }).url;
}

const served = async () => ((await (await fetch(`${origin}/_count`)).json()) as { served: number }).served;

beforeAll(async () => {
  if (!built) return;
  dir = await mkdtemp(join(tmpdir(), 'anycdn-miss-reference-'));
  origin = await start('counting-origin.js', []);
});
afterAll(async () => {
  for (const child of children) {
    child.kill('SIGTERM');
    await exited(child);
  }
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!built)('miss-reference', () => {
  for (const workers of [1, 2]) {
    it(`pulls each object from the origin once and keeps its bytes in a file (${workers} process${workers === 1 ? '' : 'es'})`, async () => {
      const files = join(dir, `w${workers}`);
      const url = await start('miss-reference.js', ['--dir', files, '--origin', origin, '--workers', String(workers)]);
      const paths = Array.from({ length: 8 }, (_, i) => `/m/${workers}/${i}-${i % 2 === 0 ? 2048 : 51_200}.bin`);
      const before = await served();
      for (const path of paths) {
        const res = await fetch(`${url}${path}`);
        expect(res.status).toBe(200);
        expect(Buffer.from(await res.arrayBuffer()).equals(objectBody(path)!)).toBe(true);
        expect(res.headers.get('cache-control')).toBe('public, max-age=86400');
        expect(res.headers.get('content-length')).toBe(String(objectBody(path)!.length));
      }
      expect((await served()) - before).toBe(paths.length);
      for (const path of paths) {
        const hash = createHash('sha1').update(path).digest('hex');
        // The answer goes out before the write ends: wait for the file, bounded.
        await expect.poll(() => readFile(join(files, hash.slice(0, 2), hash)).then((b) => b.equals(objectBody(path)!), () => false), { timeout: 5000, interval: 20 }).toBe(true);
      }
    });
  }
});
