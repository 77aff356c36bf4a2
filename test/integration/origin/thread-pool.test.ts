/**
 * The `anycdn` executable sizes libuv's thread pool before Node loads anything (sharp runs each
 * transform on a pool thread, and file I/O shares the pool), and the origin warns when its
 * transform concurrency could take every pool thread.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultTransformConcurrency } from '../../../origin/config.js';
import { CLI, cliBuilt, startCli, stopAll } from '../../support/process.js';

const TOKEN = 'thread-pool-test-token-0123456789';
const WARNING = 'transforms can take every libuv pool thread, and file I/O waits for them: set UV_THREADPOOL_SIZE to at least images.concurrency + 2';
const dirs: string[] = [];
afterAll(async () => {
  await stopAll();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Starts an origin, waits until it listens, and returns its log lines' messages and records. */
async function origin(images: Record<string, unknown>, env: Record<string, string | undefined>) {
  const dir = await mkdtemp(join(os.tmpdir(), 'anycdn-pool-'));
  dirs.push(dir);
  const configFile = join(dir, 'origin.json');
  await writeFile(configFile, JSON.stringify({ listen: '127.0.0.1:0', dataDir: join(dir, 'data'), publishToken: TOKEN, purgeToken: TOKEN, logLevel: 'info', images }));
  const proc = startCli(['origin', '--config', configFile], env);
  await proc.waitForLog('origin listening');
  const records = proc
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  proc.child.kill('SIGTERM');
  return records;
}

/** What src/cli/anycdn.cts sets (README "Memory"): the default concurrency, plus 2 for file I/O. */
const threadPoolSize = (cores: number): number => cores + Math.min(cores, 4) + 2;

describe('default transform concurrency', () => {
  it('adds one slot per core up to 4, within what the pool leaves for file I/O', () => {
    expect([1, 2, 4, 8, 64].map(defaultTransformConcurrency)).toEqual([2, 4, 8, 12, 68]);
    for (const cores of [1, 2, 4, 8, 64]) expect(threadPoolSize(cores)).toBe(defaultTransformConcurrency(cores) + 2);
  });
});

describe.skipIf(!cliBuilt)(`anycdn sizes libuv's thread pool (needs ${CLI}; run npm test, which builds it)`, () => {
  const cores = os.availableParallelism();

  it('sets UV_THREADPOOL_SIZE before the command runs, so the default concurrency draws no warning', async () => {
    const records = await origin({}, { UV_THREADPOOL_SIZE: undefined });
    expect(records.map((r) => r['msg'])).not.toContain(WARNING);
    // Past what the pool it set leaves for file I/O, the warning names the size it set.
    const crowded = await origin({ concurrency: threadPoolSize(cores) - 1 }, { UV_THREADPOOL_SIZE: undefined });
    expect(crowded.find((r) => r['msg'] === WARNING)).toMatchObject({ level: 'warn', concurrency: threadPoolSize(cores) - 1, threadPool: threadPoolSize(cores) });
  });

  it("keeps the operator's own UV_THREADPOOL_SIZE", async () => {
    const records = await origin({ concurrency: 4 }, { UV_THREADPOOL_SIZE: '5' });
    expect(records.find((r) => r['msg'] === WARNING)).toMatchObject({ concurrency: 4, threadPool: 5 });
    const roomy = await origin({ concurrency: 4 }, { UV_THREADPOOL_SIZE: '6' });
    expect(roomy.map((r) => r['msg'])).not.toContain(WARNING);
  });
});
