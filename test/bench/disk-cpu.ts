/**
 * CPU time of the edge per cold miss (test/bench/disk.ts `--cpu N`): utime + stime of every edge
 * process, read from /proc, over N distinct objects requested once each by 64 keep-alive clients,
 * after a warm-up of N other objects in the same processes (a fresh process runs unoptimised code
 * for its first thousands of requests). With `workers: 2` the primary and its workers are counted
 * apart.
 *
 * The warm-up is spread over the processes that serve it: with `workers: 2` each worker has seen
 * about half of it, and V8 compiles (TurboFan, on its background threads, counted here) and runs
 * unoptimised code for longer in each. `--cpu-warm W` warms each serving process with W objects
 * instead (W × workers in all), so that both edges are measured equally warm.
 *
 * `--cpu-base DIR`: another checkout, built, whose edge runs beside this tree's in every round
 * (interleaved, every other round in the reverse order: the same load from other work falls on
 * both), reported as `base`, with this tree's CPU over the base's in each round and the median of
 * those ratios. `--cpu-workers
 * 2,1`: which edges. Each round prints the edge's process ids and the measured window on the
 * monotonic clock (µs, as a `--cpu-prof` profile's timestamps), so a profile can be cut to it.
 *
 * Garbage collections per 1000 objects over the same window, by kind (minor: scavenges; major:
 * mark-compacts), are read from the edge's /_cdn/metrics (every process summed) before and after:
 * a major GC per miss's worth of garbage is CPU the profile spreads thinly over V8's threads.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import os from 'node:os';
import { fixed, median } from './bench-lib.js';
import { fetchAll } from './disk-cold.js';
import { processTree, startEdge, type ServerProcess } from './edge-peers.js';

export interface CpuOptions {
  objects: number;
  /** Body size of each object, bytes. */
  size: number;
  reps: number;
  /** Extra node flags for the edge, e.g. `--cpu-prof`. */
  nodeArgs: string[];
  /** Warm-up objects per serving process (× workers in all); undefined: `objects` in all. */
  warmPerProcess?: number | undefined;
  /** The `workers` settings measured, in this order in each round. */
  workers: number[];
  /** Another checkout's root whose build is measured beside this tree's (`--cpu-base`). */
  base?: string | undefined;
}

/** What runs in a round: this tree's edge, and the base's when given. */
function builds(base: string | undefined): { label: string; cli?: string }[] {
  return base === undefined ? [{ label: '' }] : [{ label: 'this tree, ' }, { label: 'base, ', cli: join(base, 'dist/src/cli/anycdn.cjs') }];
}

/** The monotonic clock in µs: the time base of V8's CPU profiles. */
function monotonicUs(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/** CPU ticks (USER_HZ = 100) of the root process and of the rest of its tree. */
function ticks(root: number): { root: number; others: number } {
  const out = { root: 0, others: 0 };
  for (const p of processTree(root)) out[p.pid === root ? 'root' : 'others'] += p.ticks;
  return out;
}

type GcCounts = Map<string, number>;

/** Garbage collections so far by kind (`minor`, `major`, …), every process of the edge summed. */
async function gcCounts(url: string): Promise<GcCounts> {
  const text = await (await fetch(`${url}/_cdn/metrics`)).text();
  const counts: GcCounts = new Map();
  // A cluster's lines carry a `tier` label too (primary, workers): summed.
  for (const m of text.matchAll(/^anycdn_edge_nodejs_gc_duration_seconds_count\{[^}]*\bkind="(\w+)"[^}]*\} (\d+)/gm)) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + Number(m[2]));
  return counts;
}

/** Runs the measure and returns the report's lines (a markdown table). */
export async function coldMissCpu(dir: string, origin: string, env: NodeJS.ProcessEnv, o: CpuOptions, started: ServerProcess[]): Promise<string[]> {
  const rows = new Map<string, { total: number[]; root: number[]; others: number[]; rate: number[]; minor: number[]; major: number[] }>();
  const runs = builds(o.base).flatMap((build, b) => o.workers.map((workers) => ({ build, b, workers })));
  for (let rep = 0; rep < o.reps; rep++) {
    // Every other round in the reverse order: whichever edge runs first in a round would otherwise
    // always meet the same state of the machine (the previous round's writes still being flushed).
    for (const { build, b, workers } of rep % 2 === 0 ? runs : [...runs].reverse()) {
      const name = `${build.label}${workers === 1 ? '1 process' : `\`workers: ${workers}\``}`;
      const where = join(dir, `b${b}-w${workers}-${rep}`);
      await mkdir(where, { recursive: true });
      const edge = await startEdge(where, { upstream: origin, env, accessLog: 'off', workers, nodeArgs: o.nodeArgs, config: { logLevel: 'warn' }, cli: build.cli });
      started.push(edge);
      try {
        const paths = (round: string, count = o.objects) => Array.from({ length: count }, (_, i) => `/cpu/${workers}-${rep}-${round}/${i}-${o.size}.bin`);
        await fetchAll(edge.url, paths('warm', o.warmPerProcess === undefined ? o.objects : o.warmPerProcess * workers));
        const gcBefore = await gcCounts(edge.url);
        const before = ticks(edge.pid);
        const from = monotonicUs();
        const ms = await fetchAll(edge.url, paths('measured'));
        const to = monotonicUs();
        const after = ticks(edge.pid);
        const gcAfter = await gcCounts(edge.url);
        const gcPerThousand = (kind: string) => (((gcAfter.get(kind) ?? 0) - (gcBefore.get(kind) ?? 0)) * 1000) / o.objects;
        const us = (t: number) => (t * 10_000) / o.objects;
        const row = rows.get(name) ?? { total: [], root: [], others: [], rate: [], minor: [], major: [] };
        row.root.push(us(after.root - before.root));
        row.others.push(us(after.others - before.others));
        row.total.push(row.root.at(-1)! + row.others.at(-1)!);
        row.rate.push((o.objects / ms) * 1000);
        row.minor.push(gcPerThousand('minor'));
        row.major.push(gcPerThousand('major'));
        rows.set(name, row);
        console.log(`  cpu ${name} round ${rep + 1}: ${fixed(row.total.at(-1)!, 0)} µs/object (primary ${fixed(row.root.at(-1)!, 0)}, workers ${fixed(row.others.at(-1)!, 0)}), ${fixed(row.rate.at(-1)!, 0)}/s, GCs per 1000 minor ${fixed(row.minor.at(-1)!, 1)} major ${fixed(row.major.at(-1)!, 1)}, load ${os.loadavg()[0]!.toFixed(2)}; pids ${processTree(edge.pid).map((p) => p.pid).join(',')}, window ${from}-${to} µs`);
      } finally {
        started.splice(started.indexOf(edge), 1);
        await edge.stop();
      }
    }
  }
  const lines = [
    '',
    `#### CPU per cold miss: ${o.objects} × ${o.size} B after a warm-up of ${o.warmPerProcess === undefined ? 'as many' : `${o.warmPerProcess} per serving process`}, 64 keep-alive clients`,
    '',
    '| edge | µs of CPU per object (median) | runs | of which the primary / the workers | objects/s | GCs per 1000 objects, minor / major (medians) |',
    '| --- | ---: | --- | --- | --- | --- |',
  ];
  for (const [name, r] of rows) {
    const split = name.endsWith('1 process') ? '' : `${fixed(median(r.root), 0)} / ${fixed(median(r.others), 0)}`;
    lines.push(`| ${name} | ${fixed(median(r.total), 0)} | ${r.total.map((v) => fixed(v, 0)).join(', ')} | ${split} | ${r.rate.map((v) => fixed(v, 0)).join(', ')} | ${fixed(median(r.minor), 1)} / ${fixed(median(r.major), 1)} |`);
  }
  // With a base: this tree's CPU over the base's within each round (both met the same load), then their median.
  for (const [name, r] of rows) {
    if (!name.startsWith('this tree, ')) continue;
    const base = rows.get(name.replace('this tree, ', 'base, '));
    if (base === undefined) continue;
    const ratios = r.total.map((v, i) => v / base.total[i]!);
    lines.push(`- this tree / base, ${name.slice('this tree, '.length)}: ${fixed(median(ratios), 3)} (rounds ${ratios.map((v) => fixed(v, 3)).join(', ')})`);
  }
  return lines;
}
