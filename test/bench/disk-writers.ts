/**
 * The disk store written by several processes (disk-blob-store.ts: an owner and co-writers)
 * against one process writing alone: N distinct objects of --size bytes stored by each of
 * --writers co-writer processes (the owner open and idle beside them), against one process
 * storing writers × N. Prints wall time, objects stored per second, and µs of CPU per object
 * (every process: the owner's and the writers' own process.cpuUsage; the idle owner's apart),
 * per round, rounds alternating. `--warm W`: each writing process first stores W objects, not
 * counted (a fresh process runs unoptimised code, and a server runs warm). `--root DIR` takes the
 * store from another build (e.g. a checkout of main built in DIR) for every process, to compare
 * the cost of a store before and after a change.
 *
 *   node dist/test/bench/disk-writers.js [--objects 20000] [--size 2048] [--writers 2] [--rounds 3]
 *        [--concurrency 32] [--warm 0] [--root DIR] [--only one|many]
 */
import { fork } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

interface StoreLike {
  begin(key: string, size?: number): Promise<{ write(c: Uint8Array): Promise<void>; commit(meta: object): Promise<unknown> } | undefined>;
  flush(): Promise<void>;
  close(): Promise<void>;
}
type OpenStore = (o: { dir: string; maxBytes: number; writer?: number }) => Promise<StoreLike>;

async function storeOpener(root: string): Promise<OpenStore> {
  const mod = (await import(pathToFileURL(join(root, 'dist/src/blob/disk-blob-store.js')).href)) as { DiskBlobStore: { open: OpenStore } };
  return (o) => mod.DiskBlobStore.open(o);
}

const MAX_BYTES = 8 * 1024 ** 3;

/** Store `count` objects `${prefix}${i}` of `size` bytes, `concurrency` at a time; returns how many were refused. */
async function fill(store: StoreLike, prefix: string, count: number, size: number, concurrency: number): Promise<number> {
  const body = Buffer.alloc(size, 7);
  let next = 0;
  let refused = 0;
  const one = async () => {
    while (next < count) {
      const key = `${prefix}${next++}`;
      body.writeUInt32BE(next, 0);
      const w = await store.begin(key, size);
      if (w === undefined) {
        refused += 1;
        continue;
      }
      await w.write(body);
      const now = Date.now();
      await w.commit({ key, size, status: 200, headers: [['content-type', 'application/octet-stream']], requestTime: now, responseTime: now, storedAt: now }).catch(() => void (refused += 1));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  return refused;
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** The child: open as co-writer <id>, warm up, wait for 'go', fill, report CPU and refusals, close. */
async function child(): Promise<void> {
  const [root, dir, id, count, size, concurrency, prefix, warm] = process.argv.slice(3);
  const open = await storeOpener(root!);
  const store = await open({ dir: dir!, maxBytes: MAX_BYTES, writer: Number(id) });
  await fill(store, `${prefix}warm/`, Number(warm), Number(size), Number(concurrency));
  await store.flush();
  process.send!({ ready: true });
  process.once('message', () => {
    void (async () => {
      const cpu0 = cpuMicros();
      const refused = await fill(store, prefix!, Number(count), Number(size), Number(concurrency));
      await store.flush();
      const cpu = cpuMicros() - cpu0;
      await store.close();
      process.send!({ cpu, refused });
      process.disconnect();
    })();
  });
}

interface Round {
  ms: number;
  /** µs of CPU, every process. */
  cpu: number;
  /** µs of CPU of the owner (idle beside co-writers). */
  ownerCpu?: number;
  refused: number;
}

async function roundOne(root: string, n: number, size: number, concurrency: number, warm: number): Promise<Round> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-writers-'));
  try {
    const store = await (await storeOpener(root))({ dir, maxBytes: MAX_BYTES });
    await fill(store, 'warm/', warm, size, concurrency);
    await store.flush();
    const cpu0 = cpuMicros();
    const t0 = performance.now();
    const refused = await fill(store, 'one/', n, size, concurrency);
    await store.flush();
    const ms = performance.now() - t0;
    const cpu = cpuMicros() - cpu0;
    await store.close();
    return { ms, cpu, refused };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function roundMany(root: string, writers: number, n: number, size: number, concurrency: number, warm: number): Promise<Round> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-writers-'));
  const kids: ReturnType<typeof fork>[] = [];
  try {
    const owner = await (await storeOpener(root))({ dir, maxBytes: MAX_BYTES });
    const results: Promise<{ cpu: number; refused: number }>[] = [];
    for (let id = 1; id <= writers; id++) {
      const kid = fork(fileURLToPath(import.meta.url), ['--child', root, dir, String(id), String(n), String(size), String(concurrency), `w${id}/`, String(warm)], { stdio: 'inherit' });
      kids.push(kid);
      await new Promise((r) => kid.once('message', r));
      results.push(new Promise((r) => kid.once('message', (m) => r(m as { cpu: number; refused: number }))));
    }
    const cpu0 = cpuMicros();
    const t0 = performance.now();
    for (const kid of kids) kid.send({ go: true });
    const done = await Promise.all(results);
    await owner.flush();
    const ms = performance.now() - t0;
    const ownerCpu = cpuMicros() - cpu0;
    const cpu = ownerCpu + done.reduce((s, d) => s + d.cpu, 0);
    await owner.close();
    return { ms, cpu, ownerCpu, refused: done.reduce((s, d) => s + d.refused, 0) };
  } finally {
    for (const kid of kids) if (kid.exitCode === null && kid.signalCode === null) process.kill(kid.pid!, 'SIGKILL');
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      objects: { type: 'string', default: '20000' },
      size: { type: 'string', default: '2048' },
      writers: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '32' },
      root: { type: 'string', default: REPO_ROOT },
      only: { type: 'string', default: '' },
      warm: { type: 'string', default: '0' },
    },
  });
  const n = Number(values.objects);
  const size = Number(values.size);
  const writers = Number(values.writers);
  const concurrency = Number(values.concurrency);
  const warm = Number(values.warm);
  const root = resolve(values.root);
  const line = (name: string, total: number, r: Round) =>
    console.log(
      `| ${name} | ${total} | ${r.ms.toFixed(0)} | ${Math.round((total / r.ms) * 1000)} | ${(r.cpu / total).toFixed(1)} | ${r.ownerCpu === undefined ? '' : (r.ownerCpu / total).toFixed(1)} | ${r.refused} |`,
    );
  console.log(`- ${new Date().toISOString()}; node ${process.version}; the store of ${root}; ${warm} objects per writing process to warm up`);
  console.log('| writers | objects | ms | objects/s | µs CPU per object (all processes) | of which the idle owner | refused |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (let round = 0; round < Number(values.rounds); round++) {
    if (values.only !== 'many') line('1 process', writers * n, await roundOne(root, writers * n, size, concurrency, warm * writers));
    if (values.only !== 'one') line(`${writers} co-writers + idle owner`, writers * n, await roundMany(root, writers, n, size, concurrency, warm));
  }
}

if (process.argv[2] === '--child') {
  void child();
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
