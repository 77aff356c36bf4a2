/**
 * The fast hit path (EdgePipeline.fastHit) must answer exactly what the full pipeline answers for
 * the same request, and must decline every request and object it is not made for. Both paths are
 * asked directly for the same stored objects, from an upstream whose answers the test scripts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeEdgeRequest } from '../../../edge/app.js';
import type { PipelineResult } from '../../../edge/edge-request.js';
import { startTestEdge, type TestEdge } from '../../support/edge.js';
import type { TieredBlobStore } from '../../../src/blob/tiered-blob-store.js';
import { RawClient } from '../../support/raw-client.js';

interface Scripted {
  status?: number;
  headers: Record<string, string>;
  body: Buffer;
}

const scripts = new Map<string, Scripted>();
let upstream: Server;
let edge: TestEdge;
let host: string;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const s = scripts.get(req.url ?? '');
    if (s === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no script');
      return;
    }
    res.writeHead(s.status ?? 200, { 'content-length': String(s.body.length), ...s.headers });
    res.end(req.method === 'HEAD' ? undefined : s.body);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  // Objects over 2 KiB stay on disk only, to check that those never take the fast path.
  edge = await startTestEdge(url, { memory: { maxBytes: '1MiB', maxEntrySize: '2KiB' } });
  host = edge.url.slice('http://'.length);
});
afterAll(async () => {
  await edge.destroy();
  await new Promise((r) => upstream.close(r));
});

const dated = (extra: Record<string, string>): Record<string, string> => ({ date: new Date(edge.clock.now()).toUTCString(), ...extra });

/** Script a path, request it until the edge has stored it, and return what a plain GET gets now. */
async function stored(path: string, script: Scripted): Promise<void> {
  scripts.set(path, script);
  await edge.get(path);
}

function fast(path: string, headers: Record<string, string> = {}, method = 'GET', closeConnection = false): PipelineResult | undefined {
  const fields = { host, ...headers };
  return edge.server.pipeline.fastHit({ method, url: path, rawHeaders: Object.entries(fields).flat(), headers: fields }, closeConnection);
}

async function full(path: string, headers: Record<string, string> = {}, method = 'GET', closeConnection = false): Promise<PipelineResult> {
  const incoming = { headers: { host, ...headers }, socket: { remoteAddress: '127.0.0.1' } } as unknown as ConstructorParameters<typeof NodeEdgeRequest>[0];
  return edge.server.pipeline.handle(new NodeEdgeRequest(incoming, method, path, performance.now(), closeConnection));
}

/** A result without Server-Timing: the full path reports its duration, a fast hit has none to report. */
function comparable(result: PipelineResult, timing: RegExp): unknown {
  const headers = { ...result.reply.headers };
  expect(headers['server-timing']).toMatch(timing);
  delete headers['server-timing'];
  return { status: result.reply.status, headers, body: result.reply.body, outcome: result.outcome, bytes: result.bytes };
}

async function expectSame(path: string, method = 'GET', closeConnection = false, headers: Record<string, string> = {}): Promise<PipelineResult> {
  const quick = fast(path, headers, method, closeConnection);
  expect(quick, `${method} ${path} takes the fast path`).toBeDefined();
  const slow = await full(path, headers, method, closeConnection);
  expect(comparable(quick!, /^cdn-cache;desc=hit$/)).toEqual(comparable(slow, /^cdn-cache;desc=hit, edge;dur=\d+\.\d$/));
  return quick!;
}

describe('fast hits answer what the full pipeline answers', () => {
  it('for a plain object, on GET and HEAD', async () => {
    await stored('/f/plain.bin', { headers: dated({ 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=60', etag: '"p1"', 'last-modified': 'Tue, 01 Sep 2026 10:00:00 GMT', 'x-custom': 'kept' }), body: Buffer.alloc(1000, 1) });
    edge.clock.advance(7_600); // ages and ttls are whole seconds, rounded down
    const get = await expectSame('/f/plain.bin');
    expect(get.reply.headers).toMatchObject({ 'cache-status': 'anycdn; hit; ttl=52', age: '7', 'x-custom': 'kept', 'content-length': '1000', 'accept-ranges': 'bytes' });
    expect(get.bytes).toBe(1000);
    const head = await expectSame('/f/plain.bin', 'HEAD');
    expect(head.reply.body).toBeNull();
    expect(head.bytes).toBe(0);
  });

  it('with an upstream Cache-Status, an Age from upstream, CDN-Cache-Control and s-maxage', async () => {
    await stored('/f/shielded.bin', { headers: dated({ 'content-type': 'image/png', 'cache-control': 'public, max-age=5', 'cdn-cache-control': 'max-age=300', 'cache-status': 'shield; hit', age: '30' }), body: Buffer.alloc(10, 2) });
    const got = await expectSame('/f/shielded.bin');
    expect(got.reply.headers['cache-status']).toBe('shield; hit, anycdn; hit; ttl=270');
    expect(got.reply.headers['age']).toBe('30');
    // Passed on (RFC 9213), for caches below this one.
    expect(got.reply.headers['cdn-cache-control']).toBe('max-age=300');
    await stored('/f/smaxage.bin', { headers: dated({ 'content-type': 'image/png', 'cache-control': 'max-age=5, s-maxage=90' }), body: Buffer.alloc(10, 3) });
    // The clock is 0.6 s past a whole second, which the Date field cannot say: 0.6 s of apparent age.
    expect((await expectSame('/f/smaxage.bin')).reply.headers['cache-status']).toBe('anycdn; hit; ttl=89');
  });

  it('for Expires-based freshness, an empty body and while draining', async () => {
    const expires = new Date(edge.clock.now() + 120_000).toUTCString();
    await stored('/f/expires.bin', { headers: dated({ 'content-type': 'image/gif', expires }), body: Buffer.alloc(5, 4) });
    await expectSame('/f/expires.bin');
    await stored('/f/empty.bin', { headers: dated({ 'content-type': 'image/gif', 'cache-control': 'max-age=60' }), body: Buffer.alloc(0) });
    const empty = await expectSame('/f/empty.bin');
    expect(empty.reply.body).toBeNull();
    expect(empty.reply.headers['content-length']).toBe('0');
    const draining = await expectSame('/f/plain.bin', 'GET', true);
    expect(draining.reply.headers['connection']).toBe('close');
  });

  it('for If-None-Match: a 304 when a tag matches (weakly, or *), the 200 when none does', async () => {
    await stored('/f/tagged.bin', { headers: dated({ 'content-type': 'image/png', 'cache-control': 'public, max-age=60', etag: '"t1"', 'last-modified': 'Tue, 01 Sep 2026 10:00:00 GMT', 'surrogate-key': 'f/tagged.bin', 'x-custom': 'not in a 304' }), body: Buffer.alloc(50, 1) });
    for (const tags of ['"t1"', 'W/"t1"', '"x", "t1"', '*']) {
      for (const method of ['GET', 'HEAD']) {
        const got = await expectSame('/f/tagged.bin', method, false, { 'if-none-match': tags });
        expect(got.reply.status, `${method} ${tags}`).toBe(304);
        expect(got.reply.body).toBeNull();
        expect(got.bytes).toBe(0);
        expect(Object.keys(got.reply.headers).sort()).toEqual(['age', 'cache-control', 'cache-status', 'date', 'etag', 'last-modified', 'server-timing', 'surrogate-key', 'x-served-by']);
      }
    }
    const closing = await expectSame('/f/tagged.bin', 'GET', true, { 'if-none-match': '"t1"' });
    expect(closing.reply.headers['connection']).toBe('close');
    const other = await expectSame('/f/tagged.bin', 'GET', false, { 'if-none-match': '"t2", W/"t0"' });
    expect(other.reply.status).toBe(200);
    expect(other.bytes).toBe(50);
    await stored('/f/untagged.bin', { headers: dated({ 'content-type': 'image/png', 'cache-control': 'max-age=60' }), body: Buffer.alloc(5, 1) });
    expect((await expectSame('/f/untagged.bin', 'GET', false, { 'if-none-match': '"t1"' })).reply.status).toBe(200);
    expect((await expectSame('/f/untagged.bin', 'GET', false, { 'if-none-match': '*' })).reply.status).toBe(304);
  });

  it('from one frozen header record per object and second, which draining never changes', async () => {
    await stored('/f/shared.bin', { headers: dated({ 'content-type': 'image/png', 'cache-control': 'max-age=60' }), body: Buffer.alloc(10, 5) });
    edge.clock.advance(400);
    const a = fast('/f/shared.bin')!;
    const b = fast('/f/shared.bin', {}, 'HEAD')!;
    expect(b.reply.headers).toBe(a.reply.headers);
    expect(Object.isFrozen(a.reply.headers)).toBe(true);
    const closing = fast('/f/shared.bin', {}, 'GET', true)!;
    expect(closing.reply.headers).toMatchObject({ ...a.reply.headers, connection: 'close' });
    expect(a.reply.headers['connection']).toBeUndefined();
    // A second later Age and ttl move, and with them the record.
    edge.clock.advance(1_000);
    const later = fast('/f/shared.bin')!;
    expect(later.reply.headers).not.toBe(a.reply.headers);
    expect(Number(later.reply.headers['age'])).toBe(Number(a.reply.headers['age']) + 1);
    await expectSame('/f/shared.bin');
  });
});

describe('on the wire: the quick front and Node answer a hit alike', () => {
  it('for GET and HEAD, a negotiated image, and a client asking to close', async () => {
    const body = Buffer.alloc(1500, 6);
    await stored('/f/wire.bin', { headers: dated({ 'content-type': 'application/octet-stream', 'cache-control': 'max-age=60', etag: '"w1"' }), body });
    scripts.set('/f/wire.img', { headers: dated({ 'content-type': 'image/webp', 'cache-control': 'max-age=60', vary: 'Accept' }), body: Buffer.alloc(12, 9) });
    await edge.get('/f/wire.img', { accept: 'image/webp,*/*' });
    const port = Number(new URL(edge.url).port);
    const front = new RawClient(port);
    // A request the front leaves to Node (a control route) hands this connection to Node.
    const node = new RawClient(port);
    try {
      node.write(`GET /_cdn/healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      expect((await node.response()).status).toBe(200);
      const ask = (c: RawClient, method: string, path: string, extra = '') => c.write(`${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`);
      const cases = [
        ['GET', '/f/wire.bin', '', 200],
        ['HEAD', '/f/wire.bin', '', 200],
        ['GET', '/f/wire.img', 'Accept: image/webp,*/*\r\n', 200],
        ['GET', '/f/wire.bin', 'If-None-Match: "w1"\r\n', 304],
        ['GET', '/f/wire.bin', 'If-None-Match: "w0"\r\n', 200],
      ] as const;
      for (const [method, path, extra, status] of cases) {
        ask(front, method, path, extra);
        ask(node, method, path, extra);
        const [a, b] = [await front.response(method === 'HEAD' || status === 304), await node.response(method === 'HEAD' || status === 304)];
        expect(a.status).toBe(status);
        expect(b.status).toBe(status);
        // Every field alike, Date included: a hit carries the stored response's Date (RFC 9110 §6.6.1).
        expect(a.fields, `${method} ${path}`).toEqual(b.fields);
        expect(a.fields['cache-status']).toMatch(/^anycdn; hit; ttl=\d+$/);
        expect(a.body.equals(b.body)).toBe(true);
      }
      expect(front.unread + node.unread).toBe(0);
      ask(front, 'GET', '/f/wire.bin', 'Connection: close\r\n');
      ask(node, 'GET', '/f/wire.bin', 'Connection: close\r\n');
      const [a, b] = [await front.response(), await node.response()];
      expect(a.fields).toEqual(b.fields);
      expect(a.fields['connection']).toBe('close');
      expect(a.body.equals(body)).toBe(true);
      expect(await front.closedWithin(5_000)).toBe(true);
      expect(await node.closedWithin(5_000)).toBe(true);
    } finally {
      front.socket.destroy();
      node.socket.destroy();
    }
  });

  it('counts and sizes a hit the front answered in the request metrics', async () => {
    await stored('/f/counted.bin', { headers: dated({ 'content-type': 'application/octet-stream', 'cache-control': 'max-age=60' }), body: Buffer.alloc(700, 3) });
    const hits = async () => {
      const text = await edge.server.metrics.registry.metrics();
      const count = text.match(/^anycdn_edge_http_requests_total\{method="GET",status="200",outcome="hit"\} (\d+)$/m);
      const bytes = text.match(/^anycdn_edge_http_response_bytes_total\{outcome="hit"\} (\d+)$/m);
      return { count: Number(count?.[1] ?? 0), bytes: Number(bytes?.[1] ?? 0) };
    };
    const before = await hits();
    const c = new RawClient(Number(new URL(edge.url).port));
    try {
      for (let i = 0; i < 3; i++) {
        c.write(`GET /f/counted.bin HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
        expect((await c.response()).body.length).toBe(700);
      }
    } finally {
      c.socket.destroy();
    }
    expect(await hits()).toEqual({ count: before.count + 3, bytes: before.bytes + 2100 });
  });
});

describe('fast hits of negotiated objects (Vary: Accept)', () => {
  it('find the variant of the request\'s Accept class, and only once it is stored', async () => {
    const avif = { accept: 'image/avif,image/webp,*/*' };
    const webp = { accept: 'image/webp,*/*' };
    scripts.set('/f/vary.img', { headers: dated({ 'content-type': 'image/avif', 'cache-control': 'max-age=60', vary: 'Accept' }), body: Buffer.alloc(10, 8) });
    await edge.get('/f/vary.img', avif);
    const got = await expectSame('/f/vary.img', 'GET', false, avif);
    expect(got.reply.headers['vary']).toBe('Accept');
    expect(got.reply.headers['content-type']).toBe('image/avif');
    // Another class has no stored variant yet: the full path fetches it.
    expect(fast('/f/vary.img', webp)).toBeUndefined();
    scripts.set('/f/vary.img', { headers: dated({ 'content-type': 'image/webp', 'cache-control': 'max-age=60', vary: 'Accept' }), body: Buffer.alloc(12, 9) });
    await edge.get('/f/vary.img', webp);
    expect((await expectSame('/f/vary.img', 'GET', false, webp)).reply.headers['content-type']).toBe('image/webp');
    expect(fast('/f/vary.img', avif)?.reply.headers['content-type']).toBe('image/avif');
  });
});

describe('the fast path declines', () => {
  it('requests whose fields change the answer or what may be reused', async () => {
    await stored('/f/declines.bin', { headers: dated({ 'content-type': 'image/png', 'cache-control': 'max-age=60', etag: '"d1"' }), body: Buffer.alloc(100, 5) });
    expect(fast('/f/declines.bin')).toBeDefined();
    for (const [name, value] of [
      ['range', 'bytes=0-9'],
      ['if-modified-since', new Date(edge.clock.now()).toUTCString()],
      ['if-match', '"d1"'],
      ['if-unmodified-since', new Date(edge.clock.now()).toUTCString()],
      ['if-range', '"d1"'],
      ['cache-control', 'max-age=0'],
      ['pragma', 'no-cache'],
      ['authorization', 'Bearer x'],
    ] as const) {
      expect(fast('/f/declines.bin', { [name]: value }), name).toBeUndefined();
      // Field names are case-insensitive: the fast path reads them as received.
      const titled = name.replace(/(^|-)[a-z]/g, (c) => c.toUpperCase());
      const raw = ['Host', host, titled, value];
      expect(edge.server.pipeline.fastHit({ method: 'GET', url: '/f/declines.bin', rawHeaders: raw, headers: { host, [name]: value } }), titled).toBeUndefined();
    }
    expect(edge.server.pipeline.fastHit({ method: 'GET', url: '/f/declines.bin', rawHeaders: ['HOST', host, 'Accept', '*/*'], headers: { host, accept: '*/*' } })).toBeDefined();
    // Only the first Host counts, as in Node's parsed fields.
    expect(edge.server.pipeline.fastHit({ method: 'GET', url: '/f/declines.bin', rawHeaders: ['Host', 'elsewhere.example', 'Host', host], headers: { host: 'elsewhere.example' } })).toBeUndefined();
    // If-None-Match is the fast path's alone: with another precondition, or twice, the full path combines them.
    expect(fast('/f/declines.bin', { 'if-none-match': '"d1"', 'if-modified-since': new Date(edge.clock.now()).toUTCString() })).toBeUndefined();
    expect(fast('/f/declines.bin', { 'if-none-match': '"d1"', 'if-match': '"d1"' })).toBeUndefined();
    expect(edge.server.pipeline.fastHit({ method: 'GET', url: '/f/declines.bin', rawHeaders: ['Host', host, 'If-None-Match', '"x"', 'If-None-Match', '"d1"'], headers: { host, 'if-none-match': '"x", "d1"' } })).toBeUndefined();
    expect(fast('/f/declines.bin', {}, 'POST')).toBeUndefined();
    expect(fast('/f/never-requested.bin')).toBeUndefined();
  });

  it('objects that are stale, must be revalidated, compressed, negative or in a body file on disk', async () => {
    await stored('/f/short.bin', { headers: dated({ 'content-type': 'image/png', 'cache-control': 'max-age=2' }), body: Buffer.alloc(10, 6) });
    expect(fast('/f/short.bin')).toBeDefined();
    edge.clock.advance(3_000);
    expect(fast('/f/short.bin')).toBeUndefined();
    await stored('/f/nocache.bin', { headers: dated({ 'content-type': 'image/png', 'cache-control': 'no-cache, max-age=60' }), body: Buffer.alloc(10, 7) });
    expect(fast('/f/nocache.bin')).toBeUndefined();
    await stored('/f/style.css', { headers: dated({ 'content-type': 'text/css', 'cache-control': 'max-age=60' }), body: Buffer.from('a{color:red}'.repeat(200)) });
    expect(fast('/f/style.css')).toBeUndefined();
    await stored('/f/gone.bin', { status: 404, headers: dated({ 'content-type': 'text/plain', 'cache-control': 'max-age=60' }), body: Buffer.from('gone') });
    expect((await edge.get('/f/gone.bin')).headers['cache-status']).toMatch(/hit/);
    expect(fast('/f/gone.bin')).toBeUndefined();
    await stored('/f/large.bin', { headers: dated({ 'content-type': 'application/octet-stream', 'cache-control': 'max-age=60' }), body: Buffer.alloc(100 * 1024, 9) });
    expect((await edge.get('/f/large.bin')).headers['cache-status']).toMatch(/hit/);
    expect(fast('/f/large.bin')).toBeUndefined(); // above packing: streamed by the full path
  });

  it('answers a small object kept out of memory from its disk segment, as the full path would', async () => {
    const body = Buffer.alloc(4096, 9);
    await stored('/f/packed.bin', { headers: dated({ 'content-type': 'application/octet-stream', 'cache-control': 'max-age=60', etag: '"p"' }), body });
    const full = await edge.get('/f/packed.bin');
    expect(full.headers['cache-status']).toMatch(/^anycdn; hit/);
    expect((edge.server.store as TieredBlobStore).memory.peek(`${host}/f/packed.bin`)).toBeUndefined(); // above memory.maxEntrySize
    const quick = fast('/f/packed.bin')!;
    expect(quick.reply.status).toBe(200);
    expect(Buffer.from(quick.reply.body as Buffer).equals(body)).toBe(true);
    expect(quick.reply.headers['etag']).toBe('"p"');
    expect(quick.reply.headers['cache-status']).toBe(full.headers['cache-status']);
    expect(fast('/f/packed.bin', { 'if-none-match': '"p"' })?.reply.status).toBe(304);
  });

  it('a URL once its object is purged or replaced', async () => {
    await stored('/f/replaced.bin', { headers: dated({ 'content-type': 'image/png', 'cache-control': 'max-age=60', etag: '"r1"' }), body: Buffer.alloc(10, 1) });
    expect(fast('/f/replaced.bin')?.reply.headers['etag']).toBe('"r1"');
    await edge.server.pipeline.invalidation.invalidate(`${host}/f/replaced.bin`);
    expect(fast('/f/replaced.bin')).toBeUndefined();
    scripts.set('/f/replaced.bin', { headers: dated({ 'content-type': 'image/png', 'cache-control': 'max-age=60', etag: '"r2"' }), body: Buffer.alloc(10, 2) });
    await edge.get('/f/replaced.bin');
    expect(fast('/f/replaced.bin')?.reply.headers['etag']).toBe('"r2"');
  });
});
