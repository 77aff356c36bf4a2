/**
 * `anycdn edge` started on a cache folder built beforehand (disk-build.ts or the store's API), for
 * the scale, index and start-up sections of test/bench/disk.ts: the edge's configuration, the
 * probe that times exec → first 200 from disk, the random hits over the cache's objects and the
 * read-back that checks them.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from './bench-lib.js';
import { objectBody } from './counting-origin.js';
import { benchPath } from './disk-build.js';
import type { ServerProcess } from './edge-peers.js';

/** The counting origin (counting-origin.ts) as a process: `served()` is its GET counter. */
export interface CountingOrigin extends ServerProcess {
  served(): Promise<number>;
}

export interface EdgeStart {
  dir: string;
  cacheDir: string;
  host: string;
  n: number;
  size: number;
  workers: number;
  origin: CountingOrigin;
  maxBytes: string;
  /** `memory.maxEntrySize` of the edge, e.g. '1KiB' so every hit is a disk hit; default the edge's (1 MiB). */
  memoryMaxEntrySize?: string;
  /**
   * Hits (and the objects read back) over this many objects spread evenly over the n, instead of
   * all n (`--index-hits-over`): the same working set at every size.
   */
  hitsOver?: number;
  /** Hits before the measured ones, in ms (`--index-warm`, default 1000): see 3b in disk.ts. */
  hitWarmupMs?: number;
  /** Node flags for the edge (`--edge-node-args`, e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /**
   * An access log (JSON lines, flushed every 20 ms) written to this file, every `sample`th request
   * of it: its `durationMs` is the edge's own time for a request. Default: no access log.
   */
  accessLog?: { path: string; sample: number };
}

export interface LaunchedEdge {
  edge: ServerProcess;
  pid: number;
  startMs: number;
}

/**
 * Execs `anycdn edge` on a filled cache folder whose objects are benchPath(i, size), i < n, at
 * `host`, and probes one object every 5 ms until it comes back 200 from disk (its bytes, a hit):
 * the edge (in `started` until stopped) and the time from exec to that answer.
 */
export async function launchEdge(o: EdgeStart, env: NodeJS.ProcessEnv, started: ServerProcess[]): Promise<LaunchedEdge> {
  const memory = o.memoryMaxEntrySize === undefined ? {} : { memory: { maxEntrySize: o.memoryMaxEntrySize } };
  const accessLog = o.accessLog === undefined ? false : { path: o.accessLog.path, sample: o.accessLog.sample, flushInterval: 20 };
  const config = JSON.stringify({ listen: o.host, upstream: o.origin.url, pop: 'bench', node: 'edge-1', cacheDir: o.cacheDir, logLevel: 'warn', accessLog, drain: 0, workers: o.workers, disk: { maxBytes: o.maxBytes }, ...memory });
  await writeFile(join(o.dir, 'edge.json'), config);
  const t0 = performance.now();
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), join(REPO_ROOT, 'dist/src/cli/anycdn.cjs'), 'edge', '--config', join(o.dir, 'edge.json')], { env, stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  const edge: ServerProcess = {
    label: 'anycdn edge (scale)',
    pid: child.pid!,
    url: `http://${o.host}`,
    logs: [],
    stop: async () => {
      const at = started.indexOf(edge);
      if (at >= 0) started.splice(at, 1);
      child.kill('SIGTERM');
      await exited;
    },
  };
  started.push(edge);
  const probe = benchPath(Math.floor(o.n / 2), o.size);
  for (let i = 0; i < 6000; i++) {
    const ok = await fetch(`${edge.url}${probe}`).then(
      async (r) => r.status === 200 && (r.headers.get('cache-status') ?? '').startsWith('anycdn; hit') && Buffer.from(await r.arrayBuffer()).equals(objectBody(probe)!),
      () => false,
    );
    if (ok) return { edge, pid: child.pid!, startMs: performance.now() - t0 };
    await new Promise((r) => setTimeout(r, 5));
  }
  await edge.stop();
  throw new Error(`scale ${o.n}: no 200 from disk within the probe's time`);
}

/** A random object's path for a hit: one of `hitsOver` objects spread evenly over the n (all n without it). */
export function hitPicker(o: Pick<EdgeStart, 'n' | 'size' | 'hitsOver'>): () => string {
  const over = Math.min(o.hitsOver ?? o.n, o.n);
  return () => benchPath(Math.floor(Math.floor(Math.random() * over) * (o.n / over)), o.size);
}

/** Reads `count` objects of `pick` back: each must be 200 with the object's bytes, and the origin must not be asked. */
export async function verifyStored(getter: { get(path: string): Promise<Buffer> }, origin: CountingOrigin, count: number, pick: () => string, label: string): Promise<void> {
  const before = await origin.served();
  for (let k = 0; k < count; k++) {
    const path = pick();
    const body = await getter.get(path); // throws on a status other than 200
    if (!body.equals(objectBody(path)!)) throw new Error(`${label}: ${path} came back with other bytes`);
  }
  const fetched = (await origin.served()) - before;
  if (fetched !== 0) throw new Error(`${label}: ${fetched} of ${count} stored objects were fetched from the origin`);
}
