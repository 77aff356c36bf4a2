/**
 * Start-up of `anycdn edge` against a reference build, in turn: exec → first 200 from disk on the
 * public port, over a cache of `--objects` objects of 256 bytes built once by disk-build.ts.
 *
 *   npm run build && node dist/test/bench/startup.js --reference /path/to/other/checkout
 *        [--objects 20000] [--runs 6] [--workers 2,1]
 *
 * `--reference` is another checkout with its own `npm run build` (e.g. a git worktree of main):
 * each round starts the reference, then this tree, for every `--workers` value, so both see the
 * same load. Beside the time, from /proc: the primary's CPU when its first worker appears (what
 * a worker's start waits for) and the CPU of every process of the node at the first 200. A start
 * is CPU-bound: on a machine shared with other work the times move with the load, printed beside
 * every start; the CPU columns move less.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fixed, loadAverage, median, processCpuSeconds, REPO_ROOT } from './bench-lib.js';
import { objectBody } from './counting-origin.js';
import { benchPath, buildCache } from './disk-build.js';
import { freePort, processTree } from './edge-peers.js';

interface Start {
  ms: number;
  /** The primary's CPU when its first child appeared (0 for one process). */
  primaryAtForkMs: number;
  /** Every process of the node at the first 200. */
  treeMs: number;
  load: string;
}

/** Polls every 2 ms (bounded by `stop`) for the primary's first child; its CPU then. */
function watchFork(pid: number): { stop(): Promise<number> } {
  let running = true;
  let atFork = 0;
  const done = (async () => {
    while (running && atFork === 0) {
      if (processTree(pid).length > 1) atFork = processCpuSeconds(pid) * 1000;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return atFork;
    },
  };
}

async function timeStart(root: string, configFile: string, url: string, probe: string): Promise<Start> {
  const load = os.loadavg()[0]!.toFixed(1);
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(root, 'dist/src/cli/anycdn.cjs'), 'edge', '--config', configFile], { env: { ...process.env, MALLOC_ARENA_MAX: '2' }, stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  const fork = watchFork(child.pid!);
  try {
    for (let i = 0; i < 6000; i++) {
      const ok = await fetch(url + probe).then(
        async (r) => r.status === 200 && (r.headers.get('cache-status') ?? '').startsWith('anycdn; hit') && Buffer.from(await r.arrayBuffer()).equals(objectBody(probe)!),
        () => false,
      );
      if (ok) {
        const ms = performance.now() - t0;
        const treeMs = processTree(child.pid!).reduce((sum, p) => sum + processCpuSeconds(p.pid) * 1000, 0);
        return { ms, treeMs, primaryAtForkMs: await fork.stop(), load };
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`${root}: no 200 from disk within the probe's time`);
  } finally {
    await fork.stop();
    child.kill('SIGTERM');
    await exited;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      reference: { type: 'string' },
      objects: { type: 'string', default: '20000' },
      runs: { type: 'string', default: '6' },
      workers: { type: 'string', default: '2,1' },
      tmp: { type: 'string', default: os.tmpdir() },
    },
  });
  if (values.reference === undefined) throw new Error('--reference DIR is required: another checkout, built');
  const here = resolve(REPO_ROOT);
  const roots = [resolve(values.reference), here];
  const objects = Number(values.objects);
  const workerCounts = values.workers.split(',').map(Number);
  const dir = await mkdtemp(join(values.tmp, 'anycdn-bench-startup-'));
  const host = `127.0.0.1:${await freePort()}`;
  const cacheDir = join(dir, 'cache');
  const loadAtStart = loadAverage();
  await buildCache({ dir: cacheDir, host, objects, size: 256, segmentSize: 64 * 2 ** 20 });
  const probe = benchPath(Math.floor(objects / 2), 256);
  const starts = new Map<string, Start[]>();
  try {
    for (let run = 0; run < Number(values.runs); run++) {
      for (const workers of workerCounts) {
        // Nothing listens at upstream: a disk hit does not ask it.
        const configFile = join(dir, `edge-${workers}.json`);
        await writeFile(configFile, JSON.stringify({ listen: host, upstream: 'http://127.0.0.1:9', pop: 'bench', node: 'edge-1', cacheDir, logLevel: 'warn', accessLog: false, drain: 0, workers, disk: { maxBytes: '10GiB' } }));
        for (const root of roots) {
          const s = await timeStart(root, configFile, `http://${host}`, probe);
          const key = `${root === here ? 'this tree' : 'reference'}, ${workers === 1 ? '1 process' : `workers: ${workers}`}`;
          starts.set(key, [...(starts.get(key) ?? []), s]);
          console.log(`  ${key}: ${fixed(s.ms, 0)} ms; primary CPU at fork ${workers === 1 ? '–' : `${fixed(s.primaryAtForkMs, 0)} ms`}; all processes ${fixed(s.treeMs, 0)} ms CPU (load ${s.load})`);
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`\n#### Start-up: exec of \`anycdn edge\` → first 200 from disk, ${objects} objects (node ${process.version}, ${os.availableParallelism()} CPUs)`);
  console.log(`reference: ${roots[0]}; this tree: ${here}; load average at start ${loadAtStart}, at end ${loadAverage()}\n`);
  console.log('| edge | median | min–max | primary CPU at fork (median) | CPU of all processes at the first 200 (median) | load average at each exec |');
  console.log('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const [key, s] of starts) {
    const ms = s.map((x) => x.ms);
    const atFork = key.endsWith('1 process') ? '–' : `${fixed(median(s.map((x) => x.primaryAtForkMs)), 0)} ms`;
    console.log(`| ${key} | ${fixed(median(ms), 0)} ms | ${fixed(Math.min(...ms), 0)}–${fixed(Math.max(...ms), 0)} ms | ${atFork} | ${fixed(median(s.map((x) => x.treeMs)), 0)} ms | ${s.map((x) => x.load).join(' ')} |`);
  }
}

await main();
