/**
 * Cold misses (test/bench/disk.ts, section 1): N distinct objects, each requested once by 64
 * keep-alive clients, through nginx `proxy_cache` (2 workers), anycdn (`workers: 2` and one
 * process) and the bare-Node miss reference (test/bench/miss-reference.ts, 2 processes and one),
 * all in front of the same counting origin, in turn within each round.
 *
 * Every system first pulls M other distinct objects per serving process (`--cold-warm`, not
 * counted; its rate is reported apart): a CDN runs warm, and a fresh Node process runs unoptimised
 * code for its first thousands of requests, so a measure from a fresh start says more about V8's
 * tiers than about the cache. The warm-up is per process because each process warms its own code:
 * with M in all, each of two workers would have seen only about M / 2 and still be compiling (V8's
 * compiler threads were ~14% of a `workers: 2` edge's CPU then, ~5% of one process's). nginx gets
 * the same (M × its 2 workers). Then N objects are measured: objects stored per second, and
 * utime + stime of the system's whole process tree per object (from /proc). The origin's counter
 * must move by exactly M + N; every 50th body is compared with what the origin sent.
 *
 * The reference is what a Node process reaches with no cache logic at all: anycdn / reference is
 * what the cache's own code costs, reference / nginx what Node itself costs.
 */
import { join } from 'node:path';
import os from 'node:os';
import { fixed, httpGetter, median } from './bench-lib.js';
import { objectBody } from './counting-origin.js';
import { processTree, startEdge, startMissReference, startNginx, type ServerProcess } from './edge-peers.js';

const KiB = 1024;

export type SystemName = 'nginx' | 'anycdn-workers' | 'anycdn-1' | 'reference-2' | 'reference-1';

/** Which reference an anycdn system is compared with: the same number of serving processes. */
const REFERENCE_OF: Partial<Record<SystemName, SystemName>> = { 'anycdn-workers': 'reference-2', 'anycdn-1': 'reference-1' };

/** Serving processes of each system: the warm-up is M for each. */
const PROCESSES_OF: Record<SystemName, number> = { nginx: 2, 'anycdn-workers': 2, 'anycdn-1': 1, 'reference-2': 2, 'reference-1': 1 };

export interface CountingOrigin {
  url: string;
  /** Object GETs the origin has served so far. */
  served(): Promise<number>;
}

/** Starts one of the systems in front of `origin`, its files under `dir`; pushed on `started` (stopped by PID at the end). */
export async function startSystem(name: SystemName, dir: string, origin: string, env: NodeJS.ProcessEnv, started: ServerProcess[], config: Record<string, unknown> = {}, nodeArgs: string[] = []): Promise<ServerProcess> {
  let s: ServerProcess;
  if (name === 'nginx') s = await startNginx(dir, { origin, workers: 2 });
  else if (name === 'reference-2' || name === 'reference-1') s = await startMissReference(dir, origin, { env, workers: name === 'reference-2' ? 2 : 1 });
  else s = await startEdge(dir, { upstream: origin, env, accessLog: 'off', nodeArgs, workers: name === 'anycdn-workers' ? 2 : 1, config: { logLevel: 'warn', ...config } });
  started.push(s);
  return s;
}

/** Requests every path once with `clients` keep-alive connections; checks every 50th body; throws on a wrong answer. The time taken, ms. */
export async function fetchAll(url: string, paths: string[], clients = 64): Promise<number> {
  const getter = httpGetter(url, clients);
  let next = 0;
  const t0 = performance.now();
  try {
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < paths.length) {
          const i = next++;
          const body = await getter.get(paths[i]!); // throws on a status other than 200
          if (i % 50 === 0 && !body.equals(objectBody(paths[i]!)!)) throw new Error(`${url}${paths[i]}: body differs`);
        }
      }),
    );
  } finally {
    await getter.close();
  }
  return performance.now() - t0;
}

const treeTicks = (root: number): number => processTree(root).reduce((sum, p) => sum + p.ticks, 0);

interface Run {
  warmRate: number;
  rate: number;
  /** µs of CPU (all processes of the system) per measured object. */
  cpuUs: number;
  exact: boolean;
}

async function runOnce(name: SystemName, dir: string, origin: CountingOrigin, o: { size: number; n: number; warm: number; tag: string }, env: NodeJS.ProcessEnv, started: ServerProcess[]): Promise<Run> {
  const server = await startSystem(name, dir, origin.url, env, started);
  try {
    const paths = (round: string, count: number) => Array.from({ length: count }, (_, i) => `/c/${name}-${o.tag}-${round}/${i}-${o.size}.bin`);
    const before = await origin.served();
    const warmMs = o.warm > 0 ? await fetchAll(server.url, paths('warm', o.warm)) : 0;
    const ticks0 = treeTicks(server.pid);
    const ms = await fetchAll(server.url, paths('cold', o.n));
    const ticks = treeTicks(server.pid) - ticks0;
    const fetched = (await origin.served()) - before;
    const run = { warmRate: o.warm > 0 ? (o.warm / warmMs) * 1000 : NaN, rate: (o.n / ms) * 1000, cpuUs: (ticks * 10_000) / o.n, exact: fetched === o.warm + o.n };
    console.log(`  cold ${o.size / KiB} KiB ${name}: warm-up ${o.warm} at ${fixed(run.warmRate, 0)}/s, then ${o.n} at ${fixed(run.rate, 0)}/s, ${fixed(run.cpuUs, 0)} µs CPU each, origin GETs ${fetched}, load ${os.loadavg()[0]!.toFixed(2)}`);
    return run;
  } finally {
    started.splice(started.indexOf(server), 1);
    await server.stop();
  }
}

/** Runs the section and returns the report's lines (a markdown table per size). */
export async function coldMisses(tmp: string, origin: CountingOrigin, o: { small: number; large: number; warm: number; reps: number }, env: NodeJS.ProcessEnv, started: ServerProcess[]): Promise<string[]> {
  const systems: SystemName[] = ['nginx', 'anycdn-workers', 'anycdn-1', 'reference-2', 'reference-1'];
  const lines = [
    '',
    `#### Cold misses: after a warm-up of ${o.warm} distinct objects per serving process (not counted), N others each requested once, 64 keep-alive clients`,
    '',
    '| objects | system | warm-up stored/s | stored/s (median) | runs | x nginx, same round (median, each) | x its reference, same round | µs CPU per miss, all its processes (median, each) | origin GETs = M + N |',
    '| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | --- |',
  ];
  for (const [size, n] of [[2 * KiB, o.small], [50 * KiB, o.large]] as const) {
    if (n === 0) continue;
    const runs = new Map<SystemName, Run[]>(systems.map((s) => [s, []]));
    for (let rep = 0; rep < o.reps; rep++) {
      for (const name of systems) runs.get(name)!.push(await runOnce(name, join(tmp, `cold-${name}-${size}-${rep}`), origin, { size, n, warm: Math.round((o.warm * n) / o.small) * PROCESSES_OF[name], tag: String(rep) }, env, started));
    }
    // Ratios are taken within a round (the systems ran back to back), then the median over rounds.
    const ratio = (name: SystemName, to: SystemName | undefined): string => {
      if (to === undefined) return '';
      const each = runs.get(name)!.map((r, i) => r.rate / runs.get(to)![i]!.rate);
      return `${fixed(median(each), 2)} (${each.map((x) => fixed(x, 2)).join(', ')})`;
    };
    for (const name of systems) {
      const rs = runs.get(name)!;
      const perMiss = `${fixed(median(rs.map((r) => r.cpuUs)), 0)} (${rs.map((r) => fixed(r.cpuUs, 0)).join(', ')})`;
      lines.push(
        `| ${n} × ${size / KiB} KiB | ${name} | ${fixed(median(rs.map((r) => r.warmRate)), 0)} | ${fixed(median(rs.map((r) => r.rate)), 0)} | ${rs.map((r) => fixed(r.rate, 0)).join(', ')} | ${ratio(name, name === 'nginx' ? undefined : 'nginx')} | ${ratio(name, REFERENCE_OF[name])} | ${perMiss} | ${rs.every((r) => r.exact) ? 'yes' : 'NO'} |`,
      );
    }
  }
  return lines;
}
