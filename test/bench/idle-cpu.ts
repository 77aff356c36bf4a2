/**
 * CPU of an idle edge: `anycdn edge` with `workers: 2` and one process, started and left alone
 * (no requests), then each of its processes' CPU (utime + stime from /proc) over `--seconds`, in %
 * of a core, beside an idle nginx (master and 1 worker) measured in the same window.
 *
 *   npm run build && node dist/test/bench/idle-cpu.js [--reference /path/to/other/checkout]
 *        [--seconds 30] [--settle 20] [--rounds 2]
 *
 * `--reference` is another built checkout (e.g. a git worktree of main): every round measures
 * its edges and this tree's at once, so both see the same machine. Nothing listens at upstream (a
 * request-less edge does not ask it) and no purge stream is configured. `--settle` waits past V8's
 * collections of the first seconds after start-up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fixed, loadAverage, median, REPO_ROOT, stopChild } from './bench-lib.js';
import { freePort, processTree, startNginx, type ServerProcess } from './edge-peers.js';

interface Running {
  label: string;
  pid: number;
  stop(): Promise<void>;
}

async function startEdge(root: string, dir: string, workers: number, label: string): Promise<Running> {
  const port = await freePort();
  const configFile = join(dir, `edge-${label.replace(/\W+/g, '-')}.json`);
  const config = { listen: `127.0.0.1:${port}`, upstream: 'http://127.0.0.1:9', pop: 'bench', node: 'idle', cacheDir: join(dir, `cache-${port}`), logLevel: 'warn', accessLog: false, workers, disk: { maxBytes: '1GiB' } };
  await writeFile(configFile, JSON.stringify(config));
  const child: ChildProcess = spawn(process.execPath, [join(root, 'dist/src/cli/anycdn.cjs'), 'edge', '--config', configFile], { env: { ...process.env, MALLOC_ARENA_MAX: '2' }, stdio: 'ignore' });
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/_cdn/healthz`).then((r) => r.ok, () => false);
    if (ok && processTree(child.pid!).length === (workers > 1 ? workers + 1 : 1)) return { label, pid: child.pid!, stop: () => stopChild(child) };
    await new Promise((r) => setTimeout(r, 50));
  }
  await stopChild(child);
  throw new Error(`${label}: not healthy within 30 s`);
}

/** % of a core used by each process of each tree over `seconds`. */
async function measure(runs: Running[], seconds: number): Promise<Map<string, number[]>> {
  const before = new Map(runs.flatMap((r) => processTree(r.pid).map((p) => [p.pid, p.ticks] as const)));
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const elapsed = (performance.now() - t0) / 1000;
  const out = new Map<string, number[]>();
  for (const r of runs) {
    // USER_HZ is 100: ticks per second are % of a core. The primary first, then its workers.
    const tree = processTree(r.pid).sort((a, b) => (a.pid === r.pid ? -1 : b.pid === r.pid ? 1 : a.pid - b.pid));
    out.set(r.label, tree.map((p) => (p.ticks - (before.get(p.pid) ?? p.ticks)) / elapsed));
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { reference: { type: 'string' }, seconds: { type: 'string', default: '30' }, settle: { type: 'string', default: '20' }, rounds: { type: 'string', default: '2' }, tmp: { type: 'string', default: os.tmpdir() } } });
  const here = resolve(REPO_ROOT);
  const roots: [string, string][] = [...(values.reference === undefined ? [] : ([[resolve(values.reference), 'reference']] as [string, string][])), [here, 'this tree']];
  const dir = await mkdtemp(join(values.tmp, 'anycdn-bench-idle-'));
  const loadAtStart = loadAverage();
  const results = new Map<string, number[][]>();
  let nginx: ServerProcess | undefined;
  const runs: Running[] = [];
  try {
    nginx = await startNginx(join(dir, 'nginx'), { origin: 'http://127.0.0.1:9', workers: 1 });
    runs.push({ label: 'nginx, 1 worker', pid: nginx.pid, stop: () => nginx!.stop() });
    for (const [root, name] of roots) for (const workers of [2, 1]) runs.push(await startEdge(root, dir, workers, `${name}, ${workers === 1 ? '1 process' : `workers: ${workers}`}`));
    await new Promise((r) => setTimeout(r, Number(values.settle) * 1000));
    for (let round = 0; round < Number(values.rounds); round++) {
      const load = os.loadavg()[0]!.toFixed(1);
      for (const [label, pcts] of await measure(runs, Number(values.seconds))) {
        results.set(label, [...(results.get(label) ?? []), pcts]);
        console.log(`  round ${round + 1} (load ${load}): ${label}: ${pcts.map((p) => `${fixed(p, 2)}%`).join(' + ')}`);
      }
    }
  } finally {
    for (const r of runs.reverse()) await r.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`\n#### Idle CPU, % of a core per process over ${values.seconds} s, ${values.rounds} rounds (node ${process.version}, ${os.availableParallelism()} CPUs)`);
  console.log(`load average at start ${loadAtStart}, at end ${loadAverage()}\n`);
  console.log('| system | per process, median of rounds (primary first) | all processes, median (range) |');
  console.log('| --- | --- | --- |');
  for (const [label, rounds] of results) {
    // nginx's cache loader exits after its first minute: processes a round does not have are left out.
    const perProcess = rounds[0]!.map((_, i) => median(rounds.flatMap((r) => (i < r.length ? [r[i]!] : []))));
    const totals = rounds.map((r) => r.reduce((s, v) => s + v, 0));
    console.log(`| ${label} | ${perProcess.map((p) => `${fixed(p, 2)}%`).join(' + ')} | ${fixed(median(totals), 2)}% (${fixed(Math.min(...totals), 2)}–${fixed(Math.max(...totals), 2)}) |`);
  }
}

await main();
