/**
 * Purge propagation: one origin and three edges on loopback, each its own `anycdn` process through
 * the real CLI, every edge following the origin's purge stream. A purge is `POST /_cdn/purge?wait=N`
 * from a publisher; its answer comes when all three edges have acknowledged it (the origin checks
 * `complete: true` and three edges applied, or the run fails), so the time to that answer is the
 * propagation latency: publisher's request → origin logs it (fsync) → stream → each edge applies it
 * (its disk index) → each edge's acknowledgement → answer.
 *
 *   npm run bench:purge [-- --purges 1000 --burst 3000 --in-flight 32 --objects 300 --cpu-prof DIR]
 *
 * 0. The disk: 300 appends of a 200-byte line with fdatasync each, in the run's temp folder (the
 *    origin's purge log does this for every purge, or group of purges, before it answers).
 * 1. Latency: `--purges` URL purges one after another (one in flight), each of an object every edge
 *    holds (`--objects` warmed at each edge first, taken in turn): p50, p99, max; and as many
 *    without `?wait` (the origin's own share: logging it, answering).
 * 2. Throughput: `--burst` purges with `--in-flight` at once, each waiting for all acknowledgements:
 *    purges per second from the first request to the last answer, and the latency under load.
 * 3. The same burst without `?wait` (the publisher does not wait), then one purge with `?wait`:
 *    purges per second until the last edge has acknowledged the last one.
 *
 * CPU seconds of each process are reported per phase, to see where the time goes. Every process is
 * stopped by PID; the temp folder is removed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { CLI, fixed, loadAverage, percentile, processCpuSeconds, stopChild, table } from './bench-lib.js';
import { freePort } from './edge-peers.js';

const PUBLISH = 'bench-purge-publish-token-0123456789';
const PURGE = 'bench-purge-purge-token-0123456789';
const EDGE = 'bench-purge-edge-token-0123456789ab';

const { values } = parseArgs({
  options: {
    purges: { type: 'string', default: '1000' },
    burst: { type: 'string', default: '3000' },
    'in-flight': { type: 'string', default: '32' },
    objects: { type: 'string', default: '300' },
    /** Write V8 CPU profiles of the origin and the first edge into this folder (node --cpu-prof). */
    'cpu-prof': { type: 'string' },
  },
});
const PURGES = Number(values.purges);
const BURST = Number(values.burst);
const IN_FLIGHT = Number(values['in-flight']);
const OBJECTS = Number(values.objects);

interface Proc {
  name: string;
  child: ChildProcess;
  url: string;
  log: string;
}

const procs: Proc[] = [];

async function spawnCli(name: string, dir: string, args: string[], port: number, nodeArgs: string[] = []): Promise<Proc> {
  const log = join(dir, `${name}.log`);
  const fd = openSync(log, 'w');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...nodeArgs, CLI, ...args], { env: { ...process.env, MALLOC_ARENA_MAX: '2' }, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const proc: Proc = { name, child, url: `http://127.0.0.1:${port}`, log };
  procs.push(proc);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}):\n${await readFile(log, 'utf8')}`);
    const pool = new Pool(proc.url, { connections: 1 });
    try {
      const res = await pool.request({ path: '/_cdn/healthz', method: 'GET', headersTimeout: 1_000 });
      await res.body.dump();
      if (res.statusCode === 200) return proc;
    } catch {
      // not listening yet
    } finally {
      await pool.close();
    }
    if (Date.now() > deadline) throw new Error(`${name} did not answer in 30 s:\n${await readFile(log, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface PurgeAnswer {
  status: number;
  json: { complete?: boolean; seq?: number; edges?: { node: string; applied: boolean }[] };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(os.tmpdir(), 'anycdn-bench-purge-'));
  try {
    const originPort = await freePort();
    await writeFile(
      join(dir, 'origin.json'),
      JSON.stringify({ listen: `127.0.0.1:${originPort}`, dataDir: join(dir, 'origin'), publishToken: PUBLISH, purgeToken: PURGE, edgeToken: EDGE, logLevel: 'warn', accessLog: false }),
    );
    const profile = (name: string): string[] => (values['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof'], '--cpu-prof-name', `${name}.cpuprofile`]);
    const origin = await spawnCli('origin', dir, ['origin', '--config', join(dir, 'origin.json')], originPort, profile('origin'));
    const edges: Proc[] = [];
    for (let i = 1; i <= 3; i++) {
      const port = await freePort();
      const config = { listen: `127.0.0.1:${port}`, upstream: origin.url, edgeToken: EDGE, pop: `p${i}`, node: `edge-${i}`, cacheDir: join(dir, `edge-${i}`), logLevel: 'warn', accessLog: false, drain: 0 };
      await writeFile(join(dir, `edge-${i}.json`), JSON.stringify(config));
      edges.push(await spawnCli(`edge-${i}`, dir, ['edge', '--config', join(dir, `edge-${i}.json`)], port, i === 1 ? profile('edge-1') : []));
    }

    const publisher = new Pool(origin.url, { connections: IN_FLIGHT, pipelining: 1 });
    const put = async (path: string, body: string): Promise<void> => {
      const res = await publisher.request({ path: `/_cdn/assets/${path}`, method: 'PUT', headers: { authorization: `Bearer ${PUBLISH}` }, body });
      await res.body.dump();
      if (res.statusCode !== 201 && res.statusCode !== 200) throw new Error(`PUT ${path}: ${res.statusCode}`);
    };
    const purge = async (body: object, wait: boolean): Promise<PurgeAnswer> => {
      const res = await publisher.request({
        path: `/_cdn/purge${wait ? '?wait=10' : ''}`,
        method: 'POST',
        headers: { authorization: `Bearer ${PURGE}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.statusCode, json: (await res.body.json()) as PurgeAnswer['json'] };
    };
    const allApplied = (a: PurgeAnswer): boolean => a.json.complete === true && a.json.edges?.filter((e) => e.applied).length === 3;

    // Objects every edge holds, so each purge takes something at each of them.
    const paths = Array.from({ length: OBJECTS }, (_, i) => `bench/o${i}.txt`);
    for (const p of paths) await put(p, `object ${p} `.repeat(40));
    for (const edge of edges) {
      const pool = new Pool(edge.url, { connections: 8 });
      await Promise.all(
        paths.map(async (p) => {
          const res = await pool.request({ path: `/${p}`, method: 'GET', headers: { host: 'cdn.example' } });
          await res.body.dump();
        }),
      );
      await pool.close();
    }
    // Every edge follows the stream: a purge with ?wait answers with all three.
    for (let i = 0; ; i++) {
      if (allApplied(await purge({ urls: ['/bench/none.txt'] }, true))) break;
      if (i > 50) throw new Error('the edges did not all follow the purge stream');
      await new Promise((r) => setTimeout(r, 100));
    }

    // The edges' own measure of the first half: origin logged it (before its fsync) → edge applied it.
    const delays = async (): Promise<{ sum: number; count: number }> => {
      let sum = 0;
      let count = 0;
      for (const edge of edges) {
        const pool = new Pool(edge.url, { connections: 1 });
        const res = await pool.request({ path: '/_cdn/metrics', method: 'GET' });
        const text = await res.body.text();
        await pool.close();
        sum += Number(/^anycdn_edge_purge_delay_seconds_sum(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? NaN);
        count += Number(/^anycdn_edge_purge_delay_seconds_count(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? NaN);
      }
      return { sum, count };
    };
    const meanDelayMs = (before: { sum: number; count: number }, after: { sum: number; count: number }): string => fixed(((after.sum - before.sum) / (after.count - before.count)) * 1000, 2);

    const pids = [origin, ...edges].map((p) => ({ name: p.name, pid: p.child.pid! }));
    const cpu = (): number[] => pids.map((p) => processCpuSeconds(p.pid));
    const cpuDelta = (before: number[]): string[] => cpu().map((c, i) => fixed(c - before[i]!, 2));
    const report: string[] = [];
    report.push(`date: ${new Date().toISOString()}; node ${process.version}; ${os.availableParallelism()} x ${os.cpus()[0]?.model ?? '?'}`);
    report.push(`load average at start: ${loadAverage()}`);
    {
      const handle = await open(join(dir, 'fsync-probe'), 'a');
      const t: number[] = [];
      for (let i = 0; i < 300; i++) {
        const s = performance.now();
        await handle.write(`${'x'.repeat(199)}\n`);
        await handle.datasync();
        t.push(performance.now() - s);
      }
      await handle.close();
      t.sort((a, b) => a - b);
      report.push(`disk: append + fdatasync, 300 times: p50 ${fixed(percentile(t, 50), 2)} ms, p99 ${fixed(percentile(t, 99), 2)} ms, max ${fixed(t.at(-1)!, 2)} ms`);
    }
    const rows: string[][] = [];
    const cpuRows: string[][] = [];

    // 1. One at a time.
    {
      const latencies: number[] = [];
      const c0 = cpu();
      const d0 = await delays();
      const t0 = performance.now();
      for (let i = 0; i < PURGES; i++) {
        const s = performance.now();
        const a = await purge({ urls: [`/${paths[i % OBJECTS]}`] }, true);
        latencies.push(performance.now() - s);
        if (a.status !== 200 || !allApplied(a)) throw new Error(`purge ${i}: ${a.status} ${JSON.stringify(a.json)}`);
      }
      const elapsed = (performance.now() - t0) / 1000;
      latencies.sort((a, b) => a - b);
      rows.push([`${PURGES} purges, 1 in flight, ?wait`, fixed(percentile(latencies, 50), 2), fixed(percentile(latencies, 99), 2), fixed(latencies.at(-1)!, 2), meanDelayMs(d0, await delays()), fixed(PURGES / elapsed, 0)]);
      cpuRows.push(['1 in flight', ...cpuDelta(c0)]);
    }
    // 1b. One at a time without waiting: the origin's own share.
    {
      const latencies: number[] = [];
      const c0 = cpu();
      const t0 = performance.now();
      for (let i = 0; i < PURGES; i++) {
        const s = performance.now();
        const a = await purge({ urls: [`/${paths[i % OBJECTS]}`] }, false);
        latencies.push(performance.now() - s);
        if (a.status !== 200 && a.status !== 202) throw new Error(`purge ${i}: ${a.status} ${JSON.stringify(a.json)}`);
      }
      const elapsed = (performance.now() - t0) / 1000;
      latencies.sort((a, b) => a - b);
      rows.push([`${PURGES} purges, 1 in flight, no wait (origin's answer)`, fixed(percentile(latencies, 50), 2), fixed(percentile(latencies, 99), 2), fixed(latencies.at(-1)!, 2), '-', fixed(PURGES / elapsed, 0)]);
      cpuRows.push(['1 in flight, no wait', ...cpuDelta(c0)]);
      // Let the edges finish before the next phase.
      if (!allApplied(await purge({ urls: ['/bench/none.txt'] }, true))) throw new Error('the edges did not catch up');
    }
    // 2. Many at once, each waiting for every acknowledgement.
    {
      const latencies: number[] = [];
      let next = 0;
      const c0 = cpu();
      const d0 = await delays();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < BURST) {
            const i = next++;
            const s = performance.now();
            const a = await purge({ urls: [`/${paths[i % OBJECTS]}`] }, true);
            latencies.push(performance.now() - s);
            if (a.status !== 200 || !allApplied(a)) throw new Error(`purge ${i}: ${a.status} ${JSON.stringify(a.json)}`);
          }
        }),
      );
      const elapsed = (performance.now() - t0) / 1000;
      latencies.sort((a, b) => a - b);
      rows.push([`${BURST} purges, ${IN_FLIGHT} in flight, ?wait`, fixed(percentile(latencies, 50), 2), fixed(percentile(latencies, 99), 2), fixed(latencies.at(-1)!, 2), meanDelayMs(d0, await delays()), fixed(BURST / elapsed, 0)]);
      cpuRows.push([`${IN_FLIGHT} in flight, ?wait`, ...cpuDelta(c0)]);
    }
    // 3. Many at once without waiting; then until the last is acknowledged everywhere.
    {
      let next = 0;
      const c0 = cpu();
      const d0 = await delays();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < BURST) {
            const i = next++;
            const a = await purge({ urls: [`/${paths[i % OBJECTS]}`] }, false);
            if (a.status !== 200 && a.status !== 202) throw new Error(`purge ${i}: ${a.status} ${JSON.stringify(a.json)}`);
          }
        }),
      );
      const logged = (performance.now() - t0) / 1000;
      const last = await purge({ urls: ['/bench/none.txt'] }, true);
      if (!allApplied(last)) throw new Error(`the last purge: ${JSON.stringify(last.json)}`);
      const elapsed = (performance.now() - t0) / 1000;
      rows.push([`${BURST} purges, ${IN_FLIGHT} in flight, no wait (logged in ${fixed(logged, 2)} s)`, '-', '-', '-', meanDelayMs(d0, await delays()), fixed((BURST + 1) / elapsed, 0)]);
      cpuRows.push([`${IN_FLIGHT} in flight, no wait`, ...cpuDelta(c0)]);
    }
    report.push(`load average at end: ${loadAverage()}`);
    report.push('');
    report.push(table(['publisher → every edge acknowledged', 'p50 ms', 'p99 ms', 'max ms', 'logged → applied, mean ms', 'purges/s'], rows));
    report.push('');
    report.push(table(['CPU seconds per phase', ...pids.map((p) => p.name)], cpuRows));
    await publisher.close();
    process.stdout.write(report.join('\n') + '\n');
  } finally {
    for (const p of procs) await stopChild(p.child);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
