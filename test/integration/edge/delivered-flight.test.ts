/**
 * A request that arrives after a fetch's response was delivered is not a follower of that fetch:
 * it may read the body still streaming in only when the response may be used for it now (RFC 9111
 * §4: fresh, no `no-cache`), as a hit; otherwise it asks upstream itself. Each case runs 25 clients
 * at once, each sending two requests for its own URL one after the other on a kept-alive
 * connection, the second only after the first answer was read whole — the window in which the
 * first fetch is still committing its copy to disk.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'undici';
import { startTestEdge, TOPOLOGIES, type TestEdge, type Topology } from '../../support/edge.js';
import { until } from '../../support/until.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface CountingUpstream {
  url: string;
  /** Requests received per path. */
  counts: Map<string, number>;
  close(): Promise<void>;
}

async function countingUpstream(handler: Handler): Promise<CountingUpstream> {
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    counts.set(req.url!, (counts.get(req.url!) ?? 0) + 1);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const CLIENTS = 25;
/** 64 KiB: a body large enough that the copy is still being committed when the client has it all. */
const BODY = Buffer.alloc(64 * 1024, 'x');

interface Answer {
  status: number;
  cacheStatus: string;
  body: Buffer;
}

/** Two GETs of `path` in turn on one kept-alive connection. */
async function twice(edge: TestEdge, path: string): Promise<[Answer, Answer]> {
  const client = new Client(edge.url, { pipelining: 1 });
  try {
    const one = async (): Promise<Answer> => {
      const res = await client.request({ method: 'GET', path });
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, cacheStatus: String(res.headers['cache-status']), body };
    };
    const first = await one();
    const second = await one();
    return [first, second];
  } finally {
    await client.close();
  }
}

let topology: Topology = 'single';

async function run(headers: () => Record<string, string>, name: string): Promise<{ up: CountingUpstream; answers: [Answer, Answer][] }> {
  const up = await countingUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY.length, etag: '"v1"', ...headers() });
    res.end(BODY);
  });
  cleanups.push(() => up.close());
  const edge = await startTestEdge(up.url, {}, { topology });
  cleanups.push(() => edge.destroy());
  const answers = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => twice(edge, `/${name}/${i}`)));
  await edge.settled();
  return { up, answers };
}

function expectWhole(a: Answer): void {
  expect(a.status).toBe(200);
  expect(a.body.equals(BODY)).toBe(true);
}

describe.each(TOPOLOGIES)('%s', (current) => {
  beforeAll(() => {
    topology = current;
  });

  describe('a request after the response was delivered', () => {
    const mustAskAgain: [string, () => Record<string, string>][] = [
      ['no-cache', () => ({ 'cache-control': 'max-age=10000, no-cache' })],
      ['max-age=0', () => ({ 'cache-control': 'max-age=0' })],
      // Age beyond Expires − Date: stale on arrival, whether the upstream's clock is slow or fast.
      ['stale on arrival, slow Date', () => ({ date: new Date(Date.now() - 10_000).toUTCString(), expires: new Date(Date.now() + 10_000).toUTCString(), age: '25' })],
      ['stale on arrival, fast Date', () => ({ date: new Date(Date.now() + 10_000).toUTCString(), expires: new Date(Date.now() + 30_000).toUTCString(), age: '25' })],
    ];

    for (const [label, headers] of mustAskAgain) {
      it(`asks upstream again for a response it may not reuse (${label})`, async () => {
        const name = label.replace(/\W+/g, '-');
        const { up, answers } = await run(headers, name);
        for (let i = 0; i < CLIENTS; i++) {
          const [first, second] = answers[i]!;
          expectWhole(first);
          expectWhole(second);
          expect(first.cacheStatus).toBe('anycdn; fwd=miss; fwd-status=200; stored');
          // Its own fetch (a miss while the first copy is committed) or a revalidation of the
          // stored copy: never the first request's answer.
          expect(second.cacheStatus).toMatch(/^anycdn; fwd=(miss|stale); fwd-status=(200|304)(; stored)?$/);
          expect(up.counts.get(`/${name}/${i}`)).toBe(2);
        }
      });
    }

    it('serves a fresh response still streaming in as a hit, without asking upstream again', async () => {
      const { up, answers } = await run(() => ({ 'cache-control': 'public, max-age=3600' }), 'fresh');
      for (let i = 0; i < CLIENTS; i++) {
        const [first, second] = answers[i]!;
        expectWhole(first);
        expectWhole(second);
        expect(first.cacheStatus).toBe('anycdn; fwd=miss; fwd-status=200; stored');
        expect(second.cacheStatus).toMatch(/^anycdn; hit; ttl=\d+$/);
        expect(up.counts.get(`/fresh/${i}`)).toBe(1);
      }
    });
  });

  describe('a request while the body is still streaming in', () => {
    /** An upstream that sends its headers and the first half of the body, then waits for release(). */
    async function heldUpstream(cacheControl: string) {
      const held: (() => void)[] = [];
      const conditions: (string | undefined)[] = [];
      let served = 0;
      const up = await countingUpstream((req, res) => {
        conditions.push(req.headers['if-none-match']);
        // Each answer has its own validator: a revalidation says which copy was kept.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY.length, etag: `"v${++served}"`, 'cache-control': cacheControl });
        res.write(BODY.subarray(0, BODY.length / 2));
        held.push(() => res.end(BODY.subarray(BODY.length / 2)));
      });
      cleanups.push(() => up.close());
      const edge = await startTestEdge(up.url, {}, { topology });
      cleanups.push(() => edge.destroy());
      return { up, edge, conditions, release: () => held.splice(0).forEach((f) => f()) };
    }

    it('reads a fresh response as a hit before upstream has sent all of it', async () => {
      const { up, edge, release } = await heldUpstream('public, max-age=3600');
      const a = new Client(edge.url);
      const b = new Client(edge.url);
      cleanups.push(() => a.close(), () => b.close());
      const first = await a.request({ method: 'GET', path: '/slow' });
      const late = await b.request({ method: 'GET', path: '/slow' });
      expect(late.headers['cache-status']).toMatch(/^anycdn; hit; ttl=\d+$/);
      expect(first.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      release();
      const [one, two] = await Promise.all([first.body.arrayBuffer(), late.body.arrayBuffer()]);
      expect(Buffer.from(one).equals(BODY)).toBe(true);
      expect(Buffer.from(two).equals(BODY)).toBe(true);
      await edge.settled();
      expect(up.counts.get('/slow')).toBe(1);
    });

    it('asks upstream itself when the response says no-cache, and keeps the newer copy', async () => {
      const { up, edge, conditions, release } = await heldUpstream('max-age=3600, no-cache');
      const a = new Client(edge.url);
      const b = new Client(edge.url);
      cleanups.push(() => a.close(), () => b.close());
      const first = await a.request({ method: 'GET', path: '/slow-nc' });
      const pending = b.request({ method: 'GET', path: '/slow-nc' });
      await until('a second request upstream', () => up.counts.get('/slow-nc') === 2);
      release();
      const second = await pending;
      expect(second.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      expect(Buffer.from(await first.body.arrayBuffer()).equals(BODY)).toBe(true);
      expect(Buffer.from(await second.body.arrayBuffer()).equals(BODY)).toBe(true);
      await edge.settled();
      // One copy stored, revalidated on the next use (no-cache).
      const revalidating = edge.get('/slow-nc');
      await until('a third request upstream', () => up.counts.get('/slow-nc') === 3);
      release();
      const third = await revalidating;
      expect(third.headers['cache-status']).toBe('anycdn; fwd=stale; fwd-status=200; stored');
      // The copy kept is the second fetch's: the first one, ending at the same moment, gave way to it.
      expect(conditions).toEqual([undefined, undefined, '"v2"']);
    });
  });
});
