/**
 * The leader's fetch (edge/fetcher.ts) with a store whose commits wait on the test: the readers of
 * a shared body get their last byte when it arrives, not when the store has committed the copy
 * (the disk index commits in batches, every ~10 ms), and the flight's `done` still follows the
 * commit. No sockets: the upstream answer is a stream made here.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { BlobStore, BlobWriter, CommitMeta, CommitOptions, StoredMeta } from '../../../src/blob/blob-store.js';
import { MemoryBlobStore } from '../../../src/blob/memory-blob-store.js';
import { silentLogger } from '../../../src/log.js';
import { fetchForCache } from '../../../edge/fetcher.js';
import { FlightTable } from '../../../edge/flights.js';
import type { Upstream, UpstreamResponse } from '../../../edge/upstream.js';
import { VaryIndex } from '../../../edge/vary-index.js';

/**
 * A memory store whose commits each wait until `release()`, then commit (or fail, with
 * `failWith`). With `readableEarly`, a commit first says the object is readable (as the disk store
 * does once its bytes are written and its index record pending) and resolves `readable`.
 */
function gatedStore(options: { failWith?: Error; readableEarly?: boolean } = {}): { store: BlobStore; release(): void; commits: () => number; readable: Promise<void> } {
  const inner = new MemoryBlobStore({ maxBytes: 1 << 20, maxEntrySize: 1 << 19 });
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let readableNow!: () => void;
  const readable = new Promise<void>((r) => (readableNow = r));
  let commits = 0;
  const store = Object.create(inner) as BlobStore;
  store.begin = async (key: string, size?: number): Promise<BlobWriter | undefined> => {
    const writer = await inner.begin(key, size);
    if (writer === undefined) return undefined;
    return {
      write: (chunk) => writer.write(chunk),
      abort: () => writer.abort(),
      async commit(meta: CommitMeta, commitOptions?: CommitOptions): Promise<StoredMeta> {
        if (options.readableEarly) {
          commitOptions?.onReadable?.();
          readableNow();
        }
        await gate;
        commits += 1;
        if (options.failWith !== undefined) {
          await writer.abort();
          throw options.failWith;
        }
        return writer.commit(meta);
      },
    };
  };
  return { store, release: () => open(), commits: () => commits, readable };
}

/** A byte stream (as undici's body is) holding `buffered` now and `later`, if any, after a turn of the event loop. */
function byteStream(buffered: Buffer, later?: Buffer): Readable {
  const stream = new Readable({ read() {} });
  stream.push(buffered);
  if (later === undefined) stream.push(null);
  else
    setImmediate(() => {
      stream.push(later);
      stream.push(null);
    });
  return stream;
}

function upstreamAnswering(body: Buffer, stream?: () => Readable): Upstream {
  return {
    async request(): Promise<UpstreamResponse> {
      const now = Date.now();
      return {
        status: 200,
        headers: [
          ['content-type', 'application/octet-stream'],
          ['content-length', String(body.length)],
          ['cache-control', 'public, max-age=60'],
        ],
        body: stream?.() ?? Readable.from([body.subarray(0, 1000), body.subarray(1000)]),
        requestTime: now,
        responseTime: now,
        elapsedMs: 1,
      };
    },
  } as unknown as Upstream;
}

/** The whole stream, or a rejection naming the wait when it does not end within a second. */
async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  let timer: NodeJS.Timeout | undefined;
  const read = (async () => {
    for await (const chunk of stream) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  })();
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the body did not end within 1 s (${Buffer.concat(parts).length} bytes read)`)), 1000);
  });
  try {
    return await Promise.race([read, late]);
  } finally {
    clearTimeout(timer);
    stream.destroy();
  }
}

const deps = (store: BlobStore, body: Buffer) => ({ upstream: upstreamAnswering(body), store, varyIndex: new VaryIndex(store), logger: silentLogger(), now: Date.now, negativeTtlMs: 0 });
const request = { primary: 'example.test/a.bin', path: '/a.bin', clientHeaders: new Headers(), upstreamHeaders: {} };

describe('fetchForCache', () => {
  it("ends the shared body once every byte is in, without waiting for the store's commit", async () => {
    const body = Buffer.alloc(3000, 5);
    const { store, release, commits } = gatedStore();
    const { outcome, done } = await fetchForCache(deps(store, body), request);
    expect(outcome.kind).toBe('shared');
    if (outcome.kind !== 'shared') return;
    let settled = false;
    void done.then(() => (settled = true));
    expect((await readAll(outcome.body.createReader())).equals(body)).toBe(true);
    // The reader has it all; the copy is not committed yet, and the flight is not over.
    expect(commits()).toBe(0);
    expect(settled).toBe(false);
    expect(await store.get('example.test/a.bin')).toBeUndefined();
    release();
    await done;
    expect(commits()).toBe(1);
    expect((await store.get('example.test/a.bin'))?.data?.equals(body)).toBe(true);
  });

  it('hands a body that came whole with its head out as bytes before answering, not as a stream', async () => {
    const body = Buffer.alloc(2048, 3);
    const source = byteStream(body);
    const { store, release } = gatedStore();
    const { outcome, done } = await fetchForCache({ ...deps(store, body), upstream: upstreamAnswering(body, () => source) }, request);
    if (outcome.kind !== 'shared') throw new Error(`expected a shared outcome, got ${outcome.kind}`);
    expect(outcome.body.whole()?.equals(body)).toBe(true);
    expect(source.readableLength).toBe(0);
    expect((await readAll(outcome.body.createReader())).equals(body)).toBe(true);
    release();
    await done;
    expect((await store.get('example.test/a.bin'))?.data?.equals(body)).toBe(true);
    // The flight is over and takes no new readers; who holds its outcome still has the bytes.
    expect(outcome.body.whole()?.equals(body)).toBe(true);
  });

  it('streams a body that is not all there when its head arrives', async () => {
    const body = Buffer.alloc(3000, 4);
    const { store, release } = gatedStore();
    const upstream = upstreamAnswering(body, () => byteStream(body.subarray(0, 1000), body.subarray(1000)));
    const { outcome, done } = await fetchForCache({ ...deps(store, body), upstream }, request);
    if (outcome.kind !== 'shared') throw new Error(`expected a shared outcome, got ${outcome.kind}`);
    expect(outcome.body.whole()).toBeUndefined();
    expect((await readAll(outcome.body.createReader())).equals(body)).toBe(true);
    release();
    await done;
    expect((await store.get('example.test/a.bin'))?.data?.equals(body)).toBe(true);
  });

  it('keeps the flight until the commit is done: a request in between finds the flight, not a miss', async () => {
    const body = Buffer.alloc(3000, 7);
    const { store, release } = gatedStore();
    const flights = new FlightTable(10, 10);
    const flight = flights.start('example.test/a.bin', () => fetchForCache(deps(store, body), request))!;
    const outcome = await flight.outcome;
    if (outcome.kind !== 'shared') throw new Error(`expected a shared outcome, got ${outcome.kind}`);
    expect((await readAll(outcome.body.createReader())).equals(body)).toBe(true);
    expect(flights.get('example.test/a.bin')).toBe(flight);
    // A request in this window reads the delivered body whole, as a hit would.
    expect((await readAll(outcome.body.createReader())).equals(body)).toBe(true);
    release();
    await flight.done;
    expect(flights.has('example.test/a.bin')).toBe(false);
    expect((await store.get('example.test/a.bin'))?.data?.equals(body)).toBe(true);
  });

  it('lets the body go once the store finds the object, and the Vary index learns its variant key then, not at the commit', async () => {
    const body = Buffer.alloc(3000, 6);
    const { store, release, readable } = gatedStore({ readableEarly: true });
    const upstream = upstreamAnswering(body);
    const varying = {
      async request(...args: Parameters<Upstream['request']>): Promise<UpstreamResponse> {
        const res = await upstream.request(...args);
        return { ...res, headers: [...res.headers, ['vary', 'Accept']] };
      },
    } as unknown as Upstream;
    const d = { ...deps(store, body), upstream: varying };
    const { outcome, done } = await fetchForCache(d, { ...request, clientHeaders: new Headers({ accept: 'image/webp' }) });
    if (outcome.kind !== 'shared') throw new Error(`expected a shared outcome, got ${outcome.kind}`);
    expect(outcome.key).not.toBe(request.primary);
    expect((await readAll(outcome.body.createReader())).equals(body)).toBe(true);
    await readable;
    await new Promise((r) => setImmediate(r));
    // The commit has not resolved: a request now must find the variant, as the body takes no readers.
    expect(outcome.body.released).toBe(true);
    expect(() => outcome.body.createReader()).toThrow();
    expect(d.varyIndex.fields(request.primary)).toEqual(['accept']);
    expect(d.varyIndex.keysFor(request.primary)).toEqual([outcome.key]);
    release();
    await done;
    expect(d.varyIndex.fields(request.primary)).toEqual(['accept']);
  });

  it('a commit that fails after the readers finished leaves nothing stored and ends the flight', async () => {
    const body = Buffer.alloc(3000, 9);
    const { store, release, commits } = gatedStore({ failWith: new Error('disk full') });
    const { outcome, done } = await fetchForCache(deps(store, body), request);
    if (outcome.kind !== 'shared') throw new Error(`expected a shared outcome, got ${outcome.kind}`);
    expect((await readAll(outcome.body.createReader())).equals(body)).toBe(true);
    release();
    await done;
    expect(commits()).toBe(1);
    expect(await store.get('example.test/a.bin')).toBeUndefined();
  });
});
