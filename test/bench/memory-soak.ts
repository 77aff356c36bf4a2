/**
 * Memory soak: does the origin's resident memory stay flat under sustained transform load?
 *
 *   npm run bench:memory -- [--seconds 120] [--compare-seconds 60] [--in-flight 4] [--flat-below 10]
 *                           [--origin-images JSON]
 *
 * Starts the origin as the `anycdn` command runs it (`node dist/src/cli/anycdn.cjs origin`, child
 * process, MALLOC_ARENA_MAX=2, fresh temporary data folder), uploads a few sources (two generated
 * by sharp: a photo-like JPEG and a PNG with an alpha channel; plus the 2725×2225 fixture photo
 * when shared/ is there) and keeps `--in-flight` requests running for `--seconds`, each for a
 * variant never asked before (source × JPEG/WebP/AVIF × widths 64–1600), so every request is a
 * transform and a store write. The origin's VmRSS is sampled from /proc every 2 s.
 *
 * Then the same soak runs again for `--compare-seconds` (0 skips it) WITHOUT MALLOC_ARENA_MAX, to
 * show what the setting changes here.
 *
 * `--origin-images '{"concurrency":4}'` runs the origin with image settings other than the defaults.
 *
 * Verdict: "flat" when the least-squares slope of RSS over the second half is under
 * `--flat-below` MiB/min (default 10). The first half is left out on purpose: RSS climbs while
 * libvips' operation cache (64 MB cap), glibc's arenas and V8's heap reach their working size, and
 * that climb stops; a leak or fragmentation creep does not. Why 10 MiB/min by default:
 * - the creep this guards against is large: without MALLOC_ARENA_MAX the origin's RSS grew at
 *   ~150 MiB/min through the second half of a 2-minute soak on the reference machine;
 * - RSS sampled every 2 s swings by 20–70 MiB as decoded images (up to 15 MB each, two at once)
 *   come and go, which puts the standard error of a 60-second slope at 12–20 MiB/min (printed
 *   with every result): a smaller threshold would judge noise in a 2-minute soak;
 * - a slow leak (1 KiB per request is ~0.4 MiB/min at the ~7 requests/s this mix runs) needs a
 *   long soak: the standard error falls as duration^-1.5, so `--seconds 1800 --flat-below 2`
 *   resolves ~0.5 MiB/min.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import {
  closedLoop,
  fixed,
  httpGetter,
  linearFit,
  loadAverage,
  machineReport,
  photoLikeJpeg,
  procMemory,
  REPO_ROOT,
  startOriginChild,
  table,
  waitForQuiet,
  type RssSample,
} from './bench-lib.js';

const FIXTURE = resolve(REPO_ROOT, '../shared/fixtures/images/2569067123_aca715a2ee_o.jpg');
const SAMPLE_MS = 2_000;
const FORMATS = ['jpeg', 'webp', 'avif'] as const;
const MIN_WIDTH = 64;
const WIDTHS = 1537; // 64 … 1600
/** Coprime with WIDTHS, so consecutive requests jump across the whole width range. */
const WIDTH_STRIDE = 617;

interface Source {
  path: string;
  data: Buffer;
}

interface SoakResult {
  label: string;
  seconds: number;
  samples: (RssSample & { ops: number })[];
  ops: number;
  generated: number;
  stored: number;
  slopeSecondHalf: { slope: number; stderr: number };
  slopeFirstHalf: { slope: number; stderr: number };
  p50Ms: number;
  p99Ms: number;
}

async function sources(): Promise<Source[]> {
  const photo = await photoLikeJpeg(2400, 1600, 7);
  // A PNG with a real alpha channel: photo-like pixels fading out towards the corners.
  const size = 1600;
  const alpha = Buffer.alloc(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const d = Math.hypot(x - size / 2, y - size / 2) / (size / 2);
      alpha[y * size + x] = Math.max(0, Math.min(255, Math.round(255 * (1.2 - d))));
    }
  }
  const rgb = await sharp(await photoLikeJpeg(size, size, 11)).raw().toBuffer();
  const png = await sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
    .joinChannel(alpha, { raw: { width: size, height: size, channels: 1 } })
    .png()
    .toBuffer();
  const list: Source[] = [
    { path: 'soak/generated-photo.jpg', data: photo },
    { path: 'soak/generated-alpha.png', data: png },
  ];
  const fixture = await readFile(FIXTURE).catch(() => undefined);
  if (fixture !== undefined) list.push({ path: 'soak/fixture-photo.jpg', data: fixture });
  return list;
}

/** The `k`-th request's URL path: every (source, format, width) once before any repeats. */
function variantPath(list: readonly Source[], k: number): string {
  const source = list[k % list.length]!;
  const rest = Math.floor(k / list.length);
  const format = FORMATS[rest % FORMATS.length]!;
  const w = MIN_WIDTH + ((Math.floor(rest / FORMATS.length) * WIDTH_STRIDE) % WIDTHS);
  return `/${source.path}?w=${w}&fmt=${format}`;
}

async function soak(label: string, env: NodeJS.ProcessEnv, list: readonly Source[], seconds: number, inFlight: number, images: Record<string, unknown>): Promise<SoakResult> {
  const tmp = await mkdtemp(join(os.tmpdir(), 'anycdn-bench-soak-'));
  const origin = await startOriginChild(tmp, env, { images });
  try {
    for (const s of list) await origin.put(s.path, s.data);
    const client = httpGetter(origin.url, inFlight);
    let next = 0;
    let done = 0;
    const samples: SoakResult['samples'] = [];
    const t0 = performance.now();
    const take = (): void => {
      samples.push({ t: (performance.now() - t0) / 1000, ops: done, ...procMemory(origin.pid) });
    };
    take();
    const timer = setInterval(take, SAMPLE_MS);
    let result;
    try {
      result = await closedLoop({
        inFlight,
        durationMs: seconds * 1000,
        warmupMs: 0,
        op: async () => {
          const body = await client.get(variantPath(list, next++));
          done++;
          return body.length;
        },
      });
    } finally {
      clearInterval(timer);
      await client.close();
    }
    take();
    const outcomes = await origin.outcomes();
    const points = (from: number, to: number) => samples.filter((s) => s.t >= from && s.t <= to).map((s) => ({ x: s.t / 60, y: s.rssMiB }));
    return {
      label,
      seconds,
      samples,
      ops: result.started,
      generated: outcomes['variant-generated'] ?? 0,
      stored: outcomes['variant-stored'] ?? 0,
      slopeFirstHalf: linearFit(points(0, seconds / 2)),
      slopeSecondHalf: linearFit(points(seconds / 2, Infinity)),
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
    };
  } finally {
    await origin.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

function report(r: SoakResult, flatBelow: number): string[] {
  const rss = r.samples.map((s) => s.rssMiB);
  const last = r.samples[r.samples.length - 1]!;
  const lines = [
    `\n## ${r.label}: ${r.seconds} s, ${r.ops} requests (${fixed(r.ops / r.seconds)} /s, p50 ${fixed(r.p50Ms, 0)} ms, p99 ${fixed(r.p99Ms, 0)} ms); origin generated ${r.generated}, served ${r.stored} from storage`,
    'RSS timeline (t s: MiB):',
  ];
  for (let i = 0; i < r.samples.length; i += 8) {
    lines.push('  ' + r.samples.slice(i, i + 8).map((s) => `${fixed(s.t, 0).padStart(4)}: ${fixed(s.rssMiB, 0).padStart(4)}`).join('  '));
  }
  const { slope, stderr } = r.slopeSecondHalf;
  const perThousand = (slope * r.seconds) / 60 / (r.ops / 1000); // MiB per 1000 requests at this rate
  lines.push(
    `first ${fixed(rss[0]!, 0)} MiB, min ${fixed(Math.min(...rss), 0)}, max ${fixed(Math.max(...rss), 0)}, last ${fixed(last.rssMiB, 0)}; VmHWM ${fixed(last.hwmMiB, 0)} MiB`,
    `slope first half ${fixed(r.slopeFirstHalf.slope)} MiB/min; second half ${fixed(slope)} ± ${fixed(stderr)} MiB/min (${fixed(perThousand, 2)} MiB per 1000 requests)`,
    `verdict: ${slope < flatBelow ? 'flat' : 'GROWING'} (flat = second-half slope under ${flatBelow} MiB/min)`,
  );
  return lines;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '120' },
      'compare-seconds': { type: 'string', default: '60' },
      'in-flight': { type: 'string', default: '4' },
      'flat-below': { type: 'string', default: '10' },
      'origin-images': { type: 'string', default: '{}' },
    },
  });
  const seconds = Number(values.seconds);
  const compareSeconds = Number(values['compare-seconds']);
  const inFlight = Number(values['in-flight']);
  const flatBelow = Number(values['flat-below']);
  const images = JSON.parse(values['origin-images']) as Record<string, unknown>;
  if (!(seconds > 0 && compareSeconds >= 0 && inFlight >= 1 && flatBelow > 0)) {
    throw new Error('usage: memory-soak.js [--seconds N>0] [--compare-seconds N>=0] [--in-flight N>=1] [--flat-below MiB/min]');
  }
  for (const line of await machineReport()) console.log(line);
  const list = await sources();
  console.log(`sources: ${list.map((s) => `${s.path} (${s.data.length} bytes)`).join(', ')}${list.length < 3 ? `; ${FIXTURE} missing` : ''}`);
  console.log(`${inFlight} requests in flight; ${list.length * FORMATS.length * WIDTHS} distinct variants available; RSS sampled every ${SAMPLE_MS / 1000} s`);

  const { MALLOC_ARENA_MAX: _unused, ...plainEnv } = process.env;
  const results: SoakResult[] = [];
  const calm = await waitForQuiet([process.pid], 60_000);
  console.log(`other processes ${calm.quiet ? 'quiet' : 'STILL BUSY'} after ${fixed(calm.waited, 0)} s; load average ${loadAverage()}`);
  results.push(await soak('MALLOC_ARENA_MAX=2 (as the anycdn command runs)', { ...plainEnv, MALLOC_ARENA_MAX: '2' }, list, seconds, inFlight, images));
  for (const line of report(results[0]!, flatBelow)) console.log(line);
  if (compareSeconds > 0) {
    console.log(`\nload average ${loadAverage()}; now the same without MALLOC_ARENA_MAX`);
    results.push(await soak('MALLOC_ARENA_MAX unset (glibc default: up to 8 arenas per core)', plainEnv, list, compareSeconds, inFlight, images));
    for (const line of report(results[1]!, flatBelow)) console.log(line);
  }
  console.log(`\n## Summary (load average now ${loadAverage()})`);
  console.log(
    table(
      ['configuration', 's', 'req/s', 'first', 'min', 'max', 'last', 'VmHWM', 'slope 2nd half', 'verdict'],
      results.map((r) => {
        const rss = r.samples.map((s) => s.rssMiB);
        const last = r.samples[r.samples.length - 1]!;
        return [
          r.label.startsWith('MALLOC_ARENA_MAX=2') ? 'MALLOC_ARENA_MAX=2' : 'MALLOC_ARENA_MAX unset',
          String(r.seconds),
          fixed(r.ops / r.seconds),
          fixed(rss[0]!, 0),
          fixed(Math.min(...rss), 0),
          fixed(Math.max(...rss), 0),
          fixed(last.rssMiB, 0),
          fixed(last.hwmMiB, 0),
          `${fixed(r.slopeSecondHalf.slope)} ± ${fixed(r.slopeSecondHalf.stderr)} MiB/min`,
          r.slopeSecondHalf.slope < flatBelow ? 'flat' : 'GROWING',
        ];
      }),
    ),
  );
}

await main();
