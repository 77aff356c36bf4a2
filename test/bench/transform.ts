/**
 * Transform throughput: the anycdn origin making image variants over HTTP, against two references
 * measured in the same run — sharp doing exactly the origin's pipeline work in this process (the
 * `transformImage` the origin calls, same options, no HTTP, no storage) and ipx 3.1.1 over HTTP.
 *
 *   npm run bench:transform -- [--seconds 10] [--reps 1] [--formats jpeg,webp,avif] [--in-flight 2,4]
 *                              [--quiet-wait 60] [--tmp DIR] [--origin-images JSON] [--origin-node-args ARGS]
 *
 * `--quiet-wait S`: the machine may be shared; before each run wait up to S s for a second in
 * which other processes use under 0.15 cores (each run prints how much they used). `--tmp DIR`
 * and `--origin-images '{"concurrency":4}'` are diagnostics: where the origin's data lives, and
 * image settings that differ from the defaults (the raw reference follows them);
 * `--origin-node-args='--cpu-prof --cpu-prof-dir=DIR'` profiles the origin's main thread.
 *
 * Set-up (see BENCHMARKS.md for why):
 * - The origin runs as a child process through the real CLI (`node dist/src/cli/anycdn.cjs origin`)
 *   with MALLOC_ARENA_MAX=2, default image settings, JSON request logs to a file. ipx runs in a
 *   second child (`--serve-ipx DIR`, below): it bundles sharp 0.34, which must not share a process
 *   with our sharp 0.35. This process re-runs itself with MALLOC_ARENA_MAX=2, calls
 *   `configureSharp()` like the origin, and runs the raw reference and the load generator.
 * - The origin stores a variant once and serves it from disk afterwards, so every request asks for
 *   a variant never asked before: `w=400&h=H&fit=inside` with H counting up from 400 (and w moving
 *   by a pixel every 7793 requests). Any H ≥ 327 leaves width as the binding side, so every
 *   request is the same work, 2725×2225 → 400×327, under a new name. The raw reference and ipx get
 *   the same sequence of parameters. The origin's own metrics confirm every answer was generated.
 * - Formats and qualities are the origin's defaults (JPEG q80 progressive, WebP q80 effort 4,
 *   AVIF q50 at the origin's AVIF effort). ipx passes only `quality` to sharp, so its AVIF runs at
 *   sharp's default effort 4: the like-for-like row runs ipx with `sharpOptions.heifEffort` set
 *   to the origin's effort; the defaults row shows ipx as shipped.
 * - Runs are interleaved (raw, origin, ipx, …, then again) and medians are taken over `--reps`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import {
  closedLoop,
  fixed,
  foreignCpu,
  httpGetter,
  loadAverage,
  machineReport,
  median,
  photoLikeJpeg,
  procMemory,
  processCpuSeconds,
  threadCpuSeconds,
  REPO_ROOT,
  rerunWithArenaMax,
  startOriginChild,
  stopChild,
  table,
  waitForQuiet,
  type LoadResult,
  type OriginChild,
} from './bench-lib.js';

const FIXTURE = resolve(REPO_ROOT, '../shared/fixtures/images/2569067123_aca715a2ee_o.jpg');
const WIDTH = 400;
const H_FIRST = 400;
const H_LAST = 8192; // the origin's default maxOutputDimension
const W_STEPS = [0, 1, -1, 2, -2, 3, -3];
const WARMUP_MS = 2_000;

type Format = 'jpeg' | 'webp' | 'avif';
type System = 'raw' | 'origin' | 'ipx' | 'ipxDefaults';
const LABELS: Record<System, string> = {
  raw: 'raw sharp (transformImage)',
  origin: 'anycdn origin, HTTP',
  ipx: 'ipx 3.1.1, HTTP',
  ipxDefaults: 'ipx 3.1.1, HTTP, its defaults',
};

/**
 * One run's numbers, plus the CPU the serving process spent per operation (this process for the
 * raw reference, the child for the origin and ipx; warm-up included): unlike ops/s it barely
 * moves when other processes share the cores.
 */
type Measured = LoadResult & { serverCpuMs: number };

/** The parameters of the `k`-th request of a sequence: all different, all 400 px wide ± 3. */
function variantAt(k: number): { w: number; h: number } {
  const span = H_LAST - H_FIRST + 1;
  const step = W_STEPS[Math.floor(k / span) % W_STEPS.length]!;
  return { w: WIDTH + step, h: H_FIRST + (k % span) };
}

// ---------------------------------------------------------------- ipx child

/**
 * `--serve-ipx DIR --ipx-avif-effort N`: serves DIR with ipx twice on loopback ports, as shipped
 * and with AVIF effort N, and prints one JSON line with both URLs and the sharp ipx loaded.
 * Imports nothing that loads our sharp.
 */
async function serveIpx(dir: string, avifEffort: number): Promise<void> {
  const { createIPX, createIPXNodeServer, ipxFSStorage } = await import('ipx');
  // The sharp ipx itself resolves (node_modules/ipx/node_modules/sharp), not ours.
  const ipxEntry = createRequire(import.meta.url).resolve('ipx');
  const sharp = createRequire(ipxEntry)('sharp') as { versions: Record<string, string | undefined>; concurrency(): number };
  const serveWith = (sharpOptions: Record<string, unknown>): Promise<http.Server> => {
    // `sharpOptions` is assigned onto sharp's internal options before ipx calls toFormat(), which
    // sets only the quality: `heifEffort` therefore becomes the AVIF encoder's effort.
    const ipx = createIPX({ storage: ipxFSStorage({ dir }), sharpOptions: sharpOptions as never });
    const server = http.createServer(createIPXNodeServer(ipx));
    return new Promise((done) => server.listen(0, '127.0.0.1', () => done(server)));
  };
  const servers = [await serveWith({}), await serveWith({ heifEffort: avifEffort })];
  const urlOf = (s: http.Server): string => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  const ready = {
    defaults: urlOf(servers[0]!),
    likeForLike: urlOf(servers[1]!),
    sharp: sharp.versions['sharp'],
    vips: sharp.versions['vips'],
    aom: sharp.versions['aom'],
    concurrency: sharp.concurrency(),
  };
  process.stdout.write(JSON.stringify(ready) + '\n');
  process.once('SIGTERM', () => {
    for (const s of servers) s.closeAllConnections();
    Promise.all(servers.map((s) => new Promise((done) => s.close(done)))).then(() => process.exit(0));
  });
}

interface IpxChild {
  child: ChildProcess;
  pid: number;
  defaults: string;
  likeForLike: string;
  describe: string;
}

async function startIpxChild(dir: string, avifEffort: number, env: NodeJS.ProcessEnv): Promise<IpxChild> {
  const child = spawn(process.execPath, [process.argv[1]!, '--serve-ipx', dir, '--ipx-avif-effort', String(avifEffort)], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const first = await Promise.race([
    new Promise<string>((done) => lines.once('line', done)),
    new Promise<never>((_, fail) => child.once('exit', (code) => fail(new Error(`ipx child exited (${code})`)))),
    new Promise<never>((_, fail) => setTimeout(() => fail(new Error('ipx child did not start in 20 s')), 20_000).unref()),
  ]);
  lines.on('line', (line) => process.stdout.write(`[ipx] ${line}\n`));
  const ready = JSON.parse(first) as { defaults: string; likeForLike: string; sharp: string; vips: string; aom: string; concurrency: number };
  return {
    child,
    pid: child.pid!,
    defaults: ready.defaults,
    likeForLike: ready.likeForLike,
    describe: `ipx loads sharp ${ready.sharp} (libvips ${ready.vips}, aom ${ready.aom}), sharp.concurrency() = ${ready.concurrency}`,
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      reps: { type: 'string', default: '1' },
      formats: { type: 'string', default: 'jpeg,webp,avif' },
      'in-flight': { type: 'string', default: '2,4' },
      'serve-ipx': { type: 'string' },
      'ipx-avif-effort': { type: 'string', default: '2' },
      // Diagnostics: where the temporary folders (the origin's data) go, and origin image settings.
      tmp: { type: 'string', default: os.tmpdir() },
      // The machine is shared: before each run, wait up to this many seconds for other processes to go quiet.
      'quiet-wait': { type: 'string', default: '60' },
      'origin-images': { type: 'string', default: '{}' },
      'origin-node-args': { type: 'string', default: '' },
    },
  });
  if (values['serve-ipx'] !== undefined) return serveIpx(values['serve-ipx'], Number(values['ipx-avif-effort']));
  const rerun = await rerunWithArenaMax();
  if (rerun !== undefined) {
    process.exitCode = rerun;
    return;
  }
  const seconds = Number(values.seconds);
  const quietWait = Number(values['quiet-wait']);
  const reps = Number(values.reps);
  const formats = values.formats.split(',') as Format[];
  const inFlights = values['in-flight'].split(',').map(Number);
  if (!(seconds > 0 && reps >= 1 && inFlights.every((n) => n >= 1) && formats.every((f) => ['jpeg', 'webp', 'avif'].includes(f)))) {
    throw new Error('usage: transform.js [--seconds N>0] [--reps N>=1] [--formats jpeg,webp,avif] [--in-flight 2,4]');
  }

  // Our sharp and the origin's modules are loaded here only, never in the ipx child.
  const { default: sharp } = await import('sharp');
  const { configureSharp } = await import('../../origin/server.js');
  const { originConfigSchema } = await import('../../origin/config.js');
  const { transformImage } = await import('../../origin/variants/pipeline.js');
  const { probeImage } = await import('../../origin/variants/probe.js');
  configureSharp();

  for (const line of await machineReport()) console.log(line);
  let source: Buffer;
  try {
    source = await readFile(FIXTURE);
    console.log(`input: ${FIXTURE}`);
  } catch {
    source = await photoLikeJpeg(2725, 2225);
    console.log(`input: ${FIXTURE} is missing; using a generated 2725x2225 photo-like JPEG (${source.length} bytes) instead`);
  }

  // The origin's settings (its defaults unless --origin-images), from its own schema.
  const originImages = JSON.parse(values['origin-images']) as Record<string, unknown>;
  const images = originConfigSchema.parse({ dataDir: '-', publishToken: 'x'.repeat(16), purgeToken: 'x'.repeat(16), images: originImages }).images;
  const options = {
    quality: images.quality,
    avifEffort: images.avifEffort,
    limits: { maxInputPixels: images.maxInputPixels, maxInputBytes: images.maxInputBytes, maxOutputDimension: images.maxOutputDimension, timeoutMs: images.transformTimeout },
  };
  const probed = await probeImage(source, options.limits);
  console.log(`source ${probed.width}x${probed.height} ${probed.format}, ${source.length} bytes; origin defaults: quality ${JSON.stringify(images.quality)}, AVIF effort ${images.avifEffort}, concurrency ${images.concurrency}`);

  const tmp = await mkdtemp(join(values.tmp, 'anycdn-bench-transform-'));
  const childEnv = { ...process.env, MALLOC_ARENA_MAX: '2' };
  let origin: OriginChild | undefined;
  let ipx: IpxChild | undefined;
  const clients = new Map<string, ReturnType<typeof httpGetter>>();
  try {
    await mkdir(join(tmp, 'ipx'));
    await mkdir(join(tmp, 'origin'));
    await writeFile(join(tmp, 'ipx', 'photo.jpg'), source); // a copy in a temporary folder, never in the repo
    // Both start at once; when one fails, the other is still waited for, so that `finally` stops it.
    const starting = [
      startOriginChild(join(tmp, 'origin'), childEnv, { images: originImages, nodeArgs: values['origin-node-args'].split(' ').filter((a) => a !== '') }).then((c) => (origin = c)),
      startIpxChild(join(tmp, 'ipx'), images.avifEffort, childEnv).then((c) => (ipx = c)),
    ];
    for (const started of await Promise.allSettled(starting)) if (started.status === 'rejected') throw started.reason;
    if (origin === undefined || ipx === undefined) throw new Error('origin or ipx did not start');
    console.log(`origin: pid ${origin.pid} ${origin.url} (node dist/src/cli/anycdn.cjs origin, MALLOC_ARENA_MAX=2, log level info to a file, data in ${tmp}, image settings ${JSON.stringify(originImages)})`);
    console.log(`ipx: pid ${ipx.pid} ${ipx.defaults} (defaults), ${ipx.likeForLike} (AVIF effort ${images.avifEffort}); ${ipx.describe}; MALLOC_ARENA_MAX=2`);
    await origin.put('bench/photo.jpg', source);

    const counters: Record<string, number> = {};
    const next = (system: System, format: Format): { w: number; h: number } => {
      const key = `${system}/${format}`;
      const k = counters[key] ?? 0;
      counters[key] = k + 1;
      return variantAt(k);
    };
    const client = (base: string, inFlight: number): ReturnType<typeof httpGetter> => {
      const key = `${base} ${inFlight}`;
      let found = clients.get(key);
      if (found === undefined) clients.set(key, (found = httpGetter(base, inFlight)));
      return found;
    };
    const o = origin;
    const x = ipx;
    const ops = (system: System, format: Format, inFlight: number): (() => Promise<Buffer>) => {
      const q = images.quality[format];
      switch (system) {
        case 'raw':
          return async () => {
            const { w, h } = next(system, format);
            return (await transformImage(source, probed, { w, h, fit: 'inside', fmt: format, q }, format, options)).data;
          };
        case 'origin': {
          const c = client(o.url, inFlight);
          return () => {
            const { w, h } = next(system, format);
            return c.get(`/bench/photo.jpg?w=${w}&h=${h}&fit=inside&fmt=${format}&q=${q}`);
          };
        }
        case 'ipx':
        case 'ipxDefaults': {
          const c = client(system === 'ipx' ? x.likeForLike : x.defaults, inFlight);
          return () => {
            const { w, h } = next(system, format);
            return c.get(`/w_${w},h_${h},fit_inside,f_${format},q_${q}/photo.jpg`);
          };
        }
      }
    };

    // Every system must answer with the format asked for, 400 px wide.
    for (const format of formats) {
      for (const system of systemsFor(format)) {
        const out = await ops(system, format, 1)();
        const meta = await sharp(out).metadata();
        const okFormat = meta.format === format || (format === 'avif' && meta.format === 'heif');
        if (!okFormat || meta.width !== WIDTH || meta.height !== Math.round((probed.height * WIDTH) / probed.width)) {
          throw new Error(`${system} ${format}: got ${meta.format} ${meta.width}x${meta.height}`);
        }
      }
    }

    const results = new Map<string, Partial<Record<System, Measured[]>>>();
    const foreign = new Map<string, number[]>();
    const cases = formats.flatMap((format) => inFlights.map((inFlight) => ({ format, inFlight, key: `${format} ${inFlight}` })));
    const pids = [process.pid, o.pid, x.pid];
    for (let rep = 1; rep <= reps; rep++) {
      for (const { format, inFlight, key } of cases) {
        const byCase = results.get(key) ?? {};
        results.set(key, byCase);
        for (const system of systemsFor(format)) {
          const calm = await waitForQuiet(pids, quietWait * 1000);
          const before = system === 'origin' ? await o.outcomes() : undefined;
          const cpu = foreignCpu(pids);
          const server = system === 'raw' ? process.pid : system === 'origin' ? o.pid : x.pid;
          const serverCpu0 = processCpuSeconds(server);
          const threads0 = threadCpuSeconds(server);
          const client0 = processCpuSeconds(process.pid);
          const op = ops(system, format, inFlight);
          const result = await closedLoop({ inFlight, durationMs: seconds * 1000, warmupMs: WARMUP_MS, op: async () => (await op()).length });
          const perOp = (secondsUsed: number): string => fixed((secondsUsed * 1000) / result.started);
          const serverCpuMs = ((processCpuSeconds(server) - serverCpu0) * 1000) / result.started;
          const threads = threadCpuSeconds(server);
          const clientMs = system === 'raw' ? '' : `, load generator ${perOp(processCpuSeconds(process.pid) - client0)}`;
          const split = `main ${perOp(threads.main - threads0.main)}, libvips ${perOp(threads.vips - threads0.vips)}, other threads ${perOp(threads.other - threads0.other)}${clientMs}`;
          const others = cpu.stop();
          foreign.set(key, [...(foreign.get(key) ?? []), others]);
          (byCase[system] ??= []).push({ ...result, serverCpuMs });
          let note = '';
          if (before !== undefined) {
            const after = await o.outcomes();
            const generated = (after['variant-generated'] ?? 0) - (before['variant-generated'] ?? 0);
            const stored = (after['variant-stored'] ?? 0) - (before['variant-stored'] ?? 0);
            note = `; origin generated ${generated} of ${result.started}, served ${stored} from storage`;
            if (generated !== result.started || stored !== 0) note += '  <-- NOT every request was a new transform';
          }
          console.log(
            `rep ${rep} ${key.padEnd(7)} ${system.padEnd(11)} ${fixed(result.opsPerSec).padStart(6)} ops/s  p50 ${fixed(result.p50Ms)} ms  p99 ${fixed(result.p99Ms)} ms  ` +
              `server CPU ${fixed(serverCpuMs)} ms/op (${split}; ${result.ops} in ${seconds} s; other processes used ${fixed(others, 2)} cores` +
              `${calm.quiet ? '' : `, still busy after waiting ${fixed(calm.waited, 0)} s`}${note})`,
          );
        }
      }
    }

    console.log(`\n# Results: median of ${reps} run(s) of ${seconds} s per case, ${WIDTH} px wide from ${probed.width}x${probed.height}; load average now ${loadAverage()}`);
    const summary: string[][] = [];
    for (const { format, inFlight, key } of cases) {
      const byCase = results.get(key)!;
      const med = (system: System, pick: (r: Measured) => number): number => median((byCase[system] ?? []).map(pick));
      const rows = systemsFor(format).map((system) => {
        const runs = byCase[system] ?? [];
        const rates = runs.map((r) => r.opsPerSec);
        return [
          LABELS[system],
          fixed(med(system, (r) => r.opsPerSec)),
          `${fixed(Math.min(...rates))}–${fixed(Math.max(...rates))}`,
          fixed(med(system, (r) => r.p50Ms)),
          fixed(med(system, (r) => r.p99Ms)),
          fixed(med(system, (r) => r.serverCpuMs)),
          fixed(med(system, (r) => r.meanBytes) / 1024),
        ];
      });
      console.log(`\n## ${describeFormat(format, images)}, ${inFlight} in flight (other processes: ${fixed(median(foreign.get(key) ?? []), 2)} cores, median)`);
      console.log(table(['system', 'ops/s', 'range', 'p50 ms', 'p99 ms', 'CPU ms/op', 'KiB/op'], rows));
      // Ratios of medians, and the range of the ratios paired within each repetition.
      const ratio = (a: System, b: System): string => {
        const ra = byCase[a];
        const rb = byCase[b];
        if (ra === undefined || rb === undefined) return '-';
        const paired = ra.map((r, i) => r.opsPerSec / rb[i]!.opsPerSec);
        const main = med(a, (r) => r.opsPerSec) / med(b, (r) => r.opsPerSec);
        return reps > 1 ? `${fixed(main, 2)} (${fixed(Math.min(...paired), 2)}–${fixed(Math.max(...paired), 2)})` : fixed(main, 2);
      };
      console.log(`ops/s origin/raw ${ratio('origin', 'raw')} (target ≥ 0.90)   origin/ipx ${ratio('origin', 'ipx')} (target ≥ 1.00)` + (format === 'avif' ? `   origin/ipx-defaults ${ratio('origin', 'ipxDefaults')}` : ''));
      const cpuRatio = (a: System, b: System): string => fixed(med(a, (r) => r.serverCpuMs) / med(b, (r) => r.serverCpuMs), 2);
      console.log(`server CPU per op origin/raw ${cpuRatio('origin', 'raw')}   origin/ipx ${cpuRatio('origin', 'ipx')}`);
      summary.push([key, fixed(med('raw', (r) => r.opsPerSec)), fixed(med('origin', (r) => r.opsPerSec)), fixed(med('ipx', (r) => r.opsPerSec)), format === 'avif' ? fixed(med('ipxDefaults', (r) => r.opsPerSec)) : '', ratio('origin', 'raw'), ratio('origin', 'ipx')]);
    }
    console.log('\n## Summary (ops/s, medians)');
    console.log(table(['case', 'raw', 'origin', 'ipx', 'ipx e4', 'origin/raw', 'origin/ipx'], summary));
    const mem = (pid: number): string => {
      const m = procMemory(pid);
      return `VmHWM ${fixed(m.hwmMiB, 0)} MiB, VmRSS now ${fixed(m.rssMiB, 0)} MiB`;
    };
    console.log(`\n## Memory\norigin (pid ${o.pid}): ${mem(o.pid)}\nipx, both instances (pid ${x.pid}): ${mem(x.pid)}\nthis process (raw reference + load generator): ${mem(process.pid)}`);
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
    await Promise.all([origin?.stop(), ipx === undefined ? undefined : stopChild(ipx.child)]);
    await rm(tmp, { recursive: true, force: true });
  }
}

function systemsFor(format: Format): System[] {
  return format === 'avif' ? ['raw', 'origin', 'ipx', 'ipxDefaults'] : ['raw', 'origin', 'ipx'];
}

function describeFormat(format: Format, images: { quality: Record<Format, number>; avifEffort: number }): string {
  switch (format) {
    case 'jpeg':
      return `JPEG q${images.quality.jpeg}`;
    case 'webp':
      return `WebP q${images.quality.webp}`;
    case 'avif':
      return `AVIF q${images.quality.avif} effort ${images.avifEffort} (ipx e4 = ipx as shipped, sharp's default effort 4)`;
  }
}

await main();
