/**
 * Termination signals and the long-running commands, as a supervisor sends them: the moment a
 * service says it is up (or before), a SIGTERM must lead to an orderly stop (what was started is
 * drained and closed, exit code 0), never to the process dying of the signal.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliBuilt, exited, startCli, stopAll, type CliProcess } from '../../support/process.js';
import { freePortPair } from '../../support/ports.js';

const dirs: string[] = [];
afterAll(async () => {
  await stopAll();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'anycdn-signals-'));
  dirs.push(dir);
  return dir;
}

/** Whether something accepts connections on the port (probed by connecting, so never taking it). */
async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The `msg` of every JSON log line, in order. */
function messages(cli: CliProcess): string[] {
  const out: string[] = [];
  for (const line of cli.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    out.push(String((JSON.parse(line) as Record<string, unknown>)['msg']));
  }
  return out;
}

const TOKEN = 'cli-test-publish-token-0123456789';

async function originConfig(extra = ''): Promise<{ file: string; dataDir: string }> {
  const dir = await tempDir();
  const dataDir = join(dir, 'data');
  const file = join(dir, 'origin.yaml');
  await writeFile(file, `listen: 127.0.0.1:0\ndataDir: ${dataDir}\npublishToken: { env: ANYCDN_PUBLISH_TOKEN }\npurgeToken: { env: ANYCDN_PUBLISH_TOKEN }\n${extra}`);
  return { file, dataDir };
}

async function edgeConfig(extra = ''): Promise<string> {
  const dir = await tempDir();
  const file = join(dir, 'edge.yaml');
  await writeFile(file, `listen: 127.0.0.1:0\nupstream: http://127.0.0.1:9\npop: t\nnode: t1\ncacheDir: ${join(dir, 'cache')}\ndrain: 200ms\n${extra}`);
  return file;
}

describe.skipIf(!cliBuilt)('termination signals (needs dist/, built by npm test)', () => {
  describe('sent the moment a service says it is up', () => {
    it('drains and closes the origin, and exits 0', async () => {
      const { file, dataDir } = await originConfig();
      const origin = startCli(['origin', '--config', file], { ANYCDN_PUBLISH_TOKEN: TOKEN });
      await origin.waitForLog('origin listening', 30_000);
      origin.child.kill('SIGTERM');
      expect(await exited(origin.child, 20_000)).toBe(0);
      expect(messages(origin)).toEqual(['purge log open', 'origin listening', 'shutting down']);
      // The data folder's lock went with it: the next origin starts on the folder.
      expect(await readdir(dataDir)).not.toContain('LOCK');
    });

    it('drains and closes the edge, and exits 0', async () => {
      const edge = startCli(['edge', '--config', await edgeConfig()]);
      await edge.waitForLog('edge listening', 30_000);
      edge.child.kill('SIGTERM');
      expect(await exited(edge.child, 20_000)).toBe(0);
      expect(messages(edge)).toEqual(['edge listening', 'draining before exit', 'draining', 'edge stopped']);
    });

    it('stops the demo, origin included, removes the folder it made, and exits 0', async () => {
      const port = await freePortPair();
      const tmp = await tempDir();
      const demo = startCli(['demo', '--port', String(port)], { TMPDIR: tmp });
      await demo.waitForOutput('Press Ctrl-C to stop.', 45_000);
      demo.child.kill('SIGTERM');
      expect(await exited(demo.child, 20_000)).toBe(0);
      expect(await readdir(tmp)).toEqual([]);
      expect([await accepting(port), await accepting(port + 1)]).toEqual([false, false]);
    });
  });

  describe('sent while a service is still starting', () => {
    // images.concurrency above the thread pool's size is warned about before the origin starts.
    it('stops the origin once it is up (or before it starts), and exits 0', async () => {
      const { file, dataDir } = await originConfig('images: { concurrency: 64 }\n');
      const origin = startCli(['origin', '--config', file], { ANYCDN_PUBLISH_TOKEN: TOKEN });
      await origin.waitForOutput('set UV_THREADPOOL_SIZE', 30_000);
      origin.child.kill('SIGTERM');
      expect(await exited(origin.child, 20_000)).toBe(0);
      const seen = messages(origin).slice(1);
      expect([['stopped before start-up'], ['purge log open', 'origin listening', 'shutting down']]).toContainEqual(seen);
      if (existsSync(dataDir)) expect(await readdir(dataDir)).not.toContain('LOCK');
    });

    // A cluster's shield is up (its workers before it, or not yet): the node is not, until all are.
    it('stops an edge cluster once its workers are up, workers included, and exits 0', async () => {
      const edge = startCli(['edge', '--config', await edgeConfig('workers: 2\n')]);
      await edge.waitForLog('shield listening', 30_000);
      edge.child.kill('SIGTERM');
      expect(await exited(edge.child, 30_000)).toBe(0);
      const seen = messages(edge);
      // Both workers' "edge listening", then the node's (the primary's, once every process is up), before it stops.
      const node = edge.output().split('\n').filter((l) => l.startsWith('{')).findIndex((l) => (JSON.parse(l) as { msg: string; workers?: number }).workers === 2 && l.includes('"msg":"edge listening"'));
      expect(seen.filter((m) => m === 'edge listening').length).toBe(3);
      expect(node).toBeGreaterThan(seen.indexOf('shield listening'));
      expect(seen.slice(-1)).toEqual(['edge stopped']);
    });

    // The demo starts its origin, then seeds it, then starts its edge.
    it('stops the demo’s origin and never starts its edge, and exits 0', async () => {
      const port = await freePortPair();
      const tmp = await tempDir();
      const demo = startCli(['demo', '--port', String(port)], { TMPDIR: tmp });
      for (let i = 0; i < 4_500 && !(await accepting(port + 1)) && demo.child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 10));
      expect(await accepting(port)).toBe(false);
      demo.child.kill('SIGTERM');
      expect(await exited(demo.child, 20_000)).toBe(0);
      expect(demo.output()).not.toContain('anycdn demo is running');
      expect(await readdir(tmp)).toEqual([]);
      expect([await accepting(port), await accepting(port + 1)]).toEqual([false, false]);
    });
  });
});
