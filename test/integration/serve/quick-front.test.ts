/**
 * The quick front on a real Node HTTP server on loopback, spoken to over raw sockets: what it
 * answers itself, what it hands to Node and how (every byte, in order), and how its connections
 * end. The responder answers GET/HEAD /quick/*; Node's handler answers everything, saying so.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, type RunningServer } from '../../../src/serve/listen.js';
import { readHead, type QuickReply, type QuickRequest } from '../../../src/serve/quick-front.js';
import { ReadBuffers } from '../../../src/blob/read-buffers.js';
import { RawClient } from '../../support/raw-client.js';

const QUICK_BODY = Buffer.from('quick body\n');
const BIG_BODY = Buffer.alloc(1024 * 1024, 7);
const QUICK_FIELDS = Object.freeze({ 'content-type': 'text/plain', 'content-length': String(QUICK_BODY.length), 'x-by': 'front' });
const BIG_FIELDS = Object.freeze({ 'content-type': 'application/octet-stream', 'content-length': String(BIG_BODY.length), 'x-by': 'front' });

let running: RunningServer | undefined;
const open: Socket[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) s.destroy();
  await running?.close(1000);
  running = undefined;
});

interface Options {
  quick?: (req: QuickRequest) => QuickReply | undefined;
  keepAliveTimeoutMs?: number;
  headersTimeoutMs?: number;
}

async function start(options: Options = {}): Promise<{ port: number; seen: QuickRequest[] }> {
  const seen: QuickRequest[] = [];
  const quick =
    options.quick ??
    ((req: QuickRequest): QuickReply | undefined => {
      seen.push(req);
      if (req.url === '/quick/big') return { status: 200, headers: BIG_FIELDS, body: BIG_BODY };
      if (req.url.startsWith('/quick/')) return { status: 200, headers: QUICK_FIELDS, body: QUICK_BODY };
      return undefined;
    });
  running = await listen({
    address: { host: '127.0.0.1', port: 0 },
    quick,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs,
    headersTimeoutMs: options.headersTimeoutMs,
    handler: (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        if (req.url === '/node/slow') await new Promise((done) => setTimeout(done, 300));
        const body = Buffer.from(`node ${req.method} ${req.url} body=${Buffer.concat(chunks).toString()}\n`);
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'x-by': 'node' });
        res.end(body);
      });
    },
  });
  return { port: running.port, seen };
}

function client(port: number): RawClient {
  const c = new RawClient(port);
  open.push(c.socket);
  return c;
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: cdn.test\r\n${extra}\r\n`;

describe('quick front', () => {
  it('answers a quick request itself: status line, the reply fields, Date, keep-alive, the body', async () => {
    const { port, seen } = await start({ keepAliveTimeoutMs: 65_000 });
    const c = client(port);
    c.write(get('/quick/a', 'Accept: */*\r\n'));
    const r = await c.response();
    const lines = r.head.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 200 OK');
    expect(lines.slice(1, 4)).toEqual(['content-type: text/plain', `content-length: ${QUICK_BODY.length}`, 'x-by: front']);
    expect(lines[4]).toMatch(/^Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(Math.abs(Date.parse(r.fields['date']!) - Date.now())).toBeLessThan(2000);
    expect(lines.slice(5)).toEqual(['Connection: keep-alive', 'Keep-Alive: timeout=65']);
    expect(r.body.equals(QUICK_BODY)).toBe(true);
    expect(seen.map((q) => [q.method, q.url, q.rawHeaders])).toEqual([['GET', '/quick/a', ['Host', 'cdn.test', 'Accept', '*/*']]]);
    // Node's handler never saw it; the connection stays open for the next request.
    c.write(`HEAD /quick/b HTTP/1.1\r\nHost: cdn.test\r\n\r\n`);
    const h = await c.response(true);
    expect(h.fields['x-by']).toBe('front');
    expect(h.fields['content-length']).toBe(String(QUICK_BODY.length));
    c.write(get('/quick/c'));
    expect((await c.response()).body.equals(QUICK_BODY)).toBe(true);
    expect(c.unread).toBe(0);
  });

  it('hands a connection to Node at the first request it does not answer, and Node keeps it', async () => {
    const { port } = await start();
    const c = client(port);
    c.write(get('/quick/1'));
    expect((await c.response()).fields['x-by']).toBe('front');
    c.write(get('/other'));
    const handed = await c.response();
    expect(handed.fields['x-by']).toBe('node');
    expect(handed.body.toString()).toBe('node GET /other body=\n');
    // From now on Node answers every request on this connection, quick ones included.
    c.write(get('/quick/2'));
    const after = await c.response();
    expect(after.fields['x-by']).toBe('node');
    expect(after.body.toString()).toBe('node GET /quick/2 body=\n');
  });

  it('answers pipelined requests in order, handing over the rest of the bytes with the first it leaves', async () => {
    const { port } = await start();
    const c = client(port);
    const body = 'x=1&y=2';
    c.write(get('/quick/1') + get('/quick/2') + `POST /form HTTP/1.1\r\nHost: cdn.test\r\nContent-Length: ${body.length}\r\n\r\n${body}` + get('/quick/3'));
    const answers = [await c.response(), await c.response(), await c.response(), await c.response()];
    expect(answers.map((a) => a.fields['x-by'])).toEqual(['front', 'front', 'node', 'node']);
    expect(answers[2]!.body.toString()).toBe(`node POST /form body=${body}\n`);
    expect(answers[3]!.body.toString()).toBe('node GET /quick/3 body=\n');
  });

  it('hands over a request whose body arrives later, and Node reads that body, not the front', async () => {
    const { port, seen } = await start();
    const c = client(port);
    // A body that looks like a quick request must never be read as one (request smuggling).
    const smuggled = get('/quick/smuggled');
    c.write(`GET /quick/x HTTP/1.1\r\nHost: cdn.test\r\nContent-Length: ${smuggled.length}\r\n\r\n`);
    await new Promise((r) => setTimeout(r, 100));
    c.write(smuggled);
    const r = await c.response();
    expect(r.fields['x-by']).toBe('node');
    expect(r.body.toString()).toBe(`node GET /quick/x body=${smuggled}\n`);
    await new Promise((r2) => setTimeout(r2, 100));
    expect(c.unread).toBe(0);
    expect(seen.map((q) => q.url)).not.toContain('/quick/smuggled');
  });

  it('hands over a head that arrives in pieces, whole', async () => {
    const { port, seen } = await start();
    const c = client(port);
    c.write('GET /quick/split HT');
    await new Promise((r) => setTimeout(r, 50));
    c.write('TP/1.1\r\nHost: cdn.test\r\n');
    await new Promise((r) => setTimeout(r, 50));
    c.write('\r\n');
    const r = await c.response();
    expect(r.fields['x-by']).toBe('node');
    expect(r.body.toString()).toBe('node GET /quick/split body=\n');
    expect(seen).toEqual([]);
  });

  it('leaves a malformed request to Node, which refuses it with a 400', async () => {
    const { port, seen } = await start();
    const c = client(port);
    c.write('GET /quick/x HTTP/1.1\r\nHost: cdn.test\r\nBad Field: 1\r\n\r\n');
    const r = await c.response();
    expect(r.status).toBe(400);
    expect(seen).toEqual([]);
  });

  it('closes the connection after answering a request with Connection: close, and says so', async () => {
    const { port } = await start();
    const c = client(port);
    c.write(get('/quick/1', 'Connection: close\r\n') + get('/quick/never'));
    const r = await c.response();
    expect(r.fields['x-by']).toBe('front');
    expect(r.fields['keep-alive']).toBeUndefined();
    expect(await c.closedWithin(5_000)).toBe(true);
    expect(c.unread).toBe(0);
  });

  it('closes after a reply that carries Connection: close (a draining server)', async () => {
    const fields = Object.freeze({ ...QUICK_FIELDS, connection: 'close' });
    const { port } = await start({ quick: () => ({ status: 200, headers: fields, body: QUICK_BODY }) });
    const c = client(port);
    c.write(get('/quick/1'));
    const r = await c.response();
    expect(r.head.split('\r\n').filter((l) => /^connection:/i.test(l))).toEqual(['Connection: close']);
    expect(await c.closedWithin(5_000)).toBe(true);
  });

  it('never writes a reply field carrying a line break: Node answers such a request instead', async () => {
    const fields = Object.freeze({ ...QUICK_FIELDS, 'x-bad': 'a\r\nSet-Cookie: injected=1' });
    const { port } = await start({ quick: (req) => (req.url === '/quick/bad' ? { status: 200, headers: fields, body: QUICK_BODY } : undefined) });
    const c = client(port);
    c.write(get('/quick/bad'));
    const r = await c.response();
    expect(r.fields['x-by']).toBe('node');
    expect(r.head).not.toContain('injected');
  });

  it('answers everything a client pipelines without reading, once it reads, in order and whole', async () => {
    const { port } = await start();
    const c = client(port);
    c.socket.pause();
    const count = 64;
    c.write(Array.from({ length: count }, (_, i) => get(i % 2 === 0 ? '/quick/big' : `/quick/${i}`)).join(''));
    await new Promise((r) => setTimeout(r, 300));
    c.socket.resume();
    for (let i = 0; i < count; i++) {
      const r = await c.response(false, 10_000);
      expect(r.fields['x-by']).toBe('front');
      if (i % 2 === 0) expect(r.body.equals(BIG_BODY)).toBe(true);
      else expect(r.body.equals(QUICK_BODY)).toBe(true);
    }
    expect(c.unread).toBe(0);
  });

  it('stops answering a client that does not read, however its requests arrive, and answers them all once it reads', async () => {
    const { port, seen } = await start();
    const c = client(port);
    c.socket.setNoDelay(true); // each request in its own segment, so each arrives in its own read
    c.socket.pause();
    for (let i = 0; i < 30; i++) {
      c.write(get('/quick/big'));
      await new Promise((r) => setTimeout(r, 15));
    }
    // Each answer is 1 MiB: the socket's buffer is full after the first few, and the rest wait unread.
    expect(seen.length).toBeLessThanOrEqual(4);
    c.socket.resume();
    for (let i = 0; i < 30; i++) expect((await c.response(false, 10_000)).body.equals(BIG_BODY)).toBe(true);
    expect(seen.length).toBe(30);
  });

  it.each([
    ['no room for the head', 0],
    ['the head written into the room before the body', 1024],
    ['a room too small for the head', 16],
  ])('gives a lent body back only once the socket is done with it: a client slow to read still gets every body whole (%s)', async (_case, headroom) => {
    // Each answer's body is memory lent from a pool of two buffers and filled for its request: given
    // back before the socket wrote it, the next answer would overwrite bytes still waiting to go out.
    // With room before the body, the front copies the head there and writes head and body as one.
    const pool = new ReadBuffers(256 * 1024, 2, headroom);
    const size = 256 * 1024;
    let lent = 0;
    let given = 0;
    const fields = Object.freeze({ 'content-type': 'application/octet-stream', 'content-length': String(size), 'x-by': 'front' });
    const { port } = await start({
      quick: (req) => {
        const n = Number(req.url.slice('/lent/'.length));
        const body = pool.take(size).fill(n);
        lent += 1;
        const release = () => {
          given += 1;
          pool.give(body);
        };
        return { status: 200, headers: fields, body: req.method === 'HEAD' ? null : body, release, headroom: pool.roomBefore(body) };
      },
    });
    const c = client(port);
    c.socket.setNoDelay(true);
    c.socket.pause();
    for (let i = 1; i <= 24; i++) {
      c.write(i % 6 === 0 ? `HEAD /lent/${i} HTTP/1.1\r\nHost: cdn.test\r\n\r\n` : get(`/lent/${i}`));
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(given).toBeLessThan(lent); // the socket still holds answers the client has not read
    c.socket.resume();
    for (let i = 1; i <= 24; i++) {
      const r = await c.response(i % 6 === 0, 10_000);
      expect(r.status).toBe(200);
      expect(r.fields['content-length']).toBe(String(size));
      expect(r.fields['x-by']).toBe('front');
      if (i % 6 === 0) expect(r.body.length).toBe(0);
      else expect(r.body.equals(Buffer.alloc(size, i)), `body ${i}`).toBe(true);
    }
    await new Promise((r) => setTimeout(r, 50));
    expect({ lent, given }).toEqual({ lent: 24, given: 24 });
    // Every buffer came back (one, or two when an answer was still queued as the next was read).
    expect(pool.idle).toBeGreaterThanOrEqual(1);
  });

  it('gives a lent body back within the write when the kernel takes every byte: pipelined answers reuse one buffer', async () => {
    // Twelve requests in one packet are answered in one turn: a body given back only in a write
    // callback (a later tick) would have made each answer take a fresh buffer.
    const pool = new ReadBuffers(16 * 1024, 4, 1024);
    const size = 16 * 1024;
    const memories = new Set<ArrayBufferLike>();
    let given = 0;
    const fields = Object.freeze({ 'content-type': 'application/octet-stream', 'content-length': String(size), 'x-by': 'front' });
    const { port } = await start({
      quick: (req) => {
        const n = Number(req.url.slice('/lent/'.length));
        const body = pool.take(size).fill(n);
        memories.add(body.buffer);
        const release = () => {
          given += 1;
          pool.give(body);
        };
        return { status: 200, headers: fields, body, release, headroom: pool.roomBefore(body) };
      },
    });
    const c = client(port);
    c.write(Array.from({ length: 12 }, (_, i) => get(`/lent/${i + 1}`)).join(''));
    for (let i = 1; i <= 12; i++) {
      const r = await c.response();
      expect(r.status).toBe(200);
      expect(r.body.equals(Buffer.alloc(size, i)), `body ${i}`).toBe(true);
    }
    expect(given).toBe(12);
    expect(memories.size).toBe(1);
    expect(pool.idle).toBe(1);
  });

  it('lets a closing connection go once its answer is out, even if the client keeps its side open', async () => {
    const { port } = await start();
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    open.push(socket);
    socket.on('data', () => undefined);
    socket.write(get('/quick/1', 'Connection: close\r\n'));
    const deadline = Date.now() + 2000;
    let count = -1;
    await new Promise((r) => setTimeout(r, 50));
    while (Date.now() < deadline) {
      count = await new Promise<number>((resolve) => running!.server.getConnections((_e, n) => resolve(n)));
      if (count === 0) break;
      socket.write('x'); // a client trickling bytes must not keep it open either
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(count).toBe(0);
  });

  it('ends its side after the answers when the client half-closes, whoever answers them', async () => {
    const { port } = await start();
    const c = client(port);
    c.socket.end(get('/quick/1'));
    expect((await c.response()).fields['x-by']).toBe('front');
    expect(await c.closedWithin(5_000)).toBe(true);
    // Requests waiting for the client to read, then one for Node, then the client's end.
    const d = client(port);
    d.socket.pause();
    d.socket.end(Array.from({ length: 8 }, () => get('/quick/big')).join('') + get('/other'));
    await new Promise((r) => setTimeout(r, 200));
    d.socket.resume();
    for (let i = 0; i < 8; i++) expect((await d.response(false, 10_000)).body.equals(BIG_BODY)).toBe(true);
    // Node hears of the end too and closes (it drops a request still being read then, as it
    // does without the front: its server does not allow half-open connections).
    expect(await d.closedWithin(5_000)).toBe(true);
  });

  it('closes a silent new connection after the first-request time, and an idle one after keep-alive', async () => {
    const { port } = await start({ headersTimeoutMs: 300, keepAliveTimeoutMs: 600 });
    const silent = client(port);
    const used = client(port);
    used.write(get('/quick/1'));
    await used.response();
    const t0 = Date.now();
    expect(await silent.closedWithin(3000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await used.closedWithin(3000)).toBe(true);
  });

  it('lets close() end its idle connections at once', async () => {
    const { port } = await start();
    const c = client(port);
    c.write(get('/quick/1'));
    await c.response();
    const t0 = Date.now();
    await running!.close(5000);
    running = undefined;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await c.closedWithin(1000)).toBe(true);
  });

  it('lets a connection busy when close() began go as soon as its answer is out, not at the grace deadline', async () => {
    const { port } = await start();
    const c = client(port);
    c.write(get('/node/slow'));
    await new Promise((done) => setTimeout(done, 100));
    const t0 = Date.now();
    const closing = running!.close(5000);
    running = undefined;
    const r = await c.response();
    expect(r.body.toString()).toBe('node GET /node/slow body=\n');
    expect(await c.closedWithin(1000)).toBe(true);
    await closing;
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('answers a request Node reads after close() began with Connection: close', async () => {
    const { port } = await start();
    const c = client(port);
    c.socket.pause();
    // Quick answers the client does not read hold back the last request, which is Node's.
    c.write(Array.from({ length: 8 }, () => get('/quick/big')).join('') + get('/node/last'));
    await new Promise((r) => setTimeout(r, 200));
    const closing = running!.close(5000);
    running = undefined;
    c.socket.resume();
    for (let i = 0; i < 8; i++) expect((await c.response(false, 10_000)).body.equals(BIG_BODY)).toBe(true);
    const last = await c.response();
    expect(last.body.toString()).toBe('node GET /node/last body=\n');
    expect(last.fields['connection']).toBe('close');
    expect(await c.closedWithin(1000)).toBe(true);
    await closing;
  });

  it('reads every head it accepts as Node\'s parser does: mutated requests, compared field by field', async () => {
    // Node's server says what it parsed; the front must never read a request Node would refuse or read otherwise.
    running = await listen({
      address: { host: '127.0.0.1', port: 0 },
      handler: (req, res) => {
        const body = JSON.stringify({ method: req.method, url: req.url, raw: req.rawHeaders });
        res.writeHead(200, { 'content-length': Buffer.byteLength(body), connection: 'close' });
        res.end(body);
      },
    });
    const base = 'GET /a/b.jpg?w=1 HTTP/1.1\r\nHost: cdn.example\r\nAccept: image/webp,*/*\r\nUser-Agent: x y\r\n\r\n';
    const pieces = [' ', '\t', '\r', '\n', '\r\n', ':', '\0', '\x7f', '\xe9', '"', '/', 'a', '\x0b', ' \r\n', '\r\n ', 'HTTP/1.1'];
    let seed = 12345;
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    let compared = 0;
    for (let i = 0; i < 1500; i++) {
      let text = base;
      for (let k = 1 + random(3); k > 0; k--) {
        const at = random(text.length - 4);
        const piece = pieces[random(pieces.length)]!;
        const op = random(3);
        text = op === 0 ? text.slice(0, at) + piece + text.slice(at) : op === 1 ? text.slice(0, at) + text.slice(at + 1) : text.slice(0, at) + piece + text.slice(at + 1);
      }
      const bytes = Buffer.from(text, 'latin1');
      const read = readHead(bytes, 0);
      if (read === undefined) continue;
      const c = client(running.port);
      c.write(bytes.subarray(0, read.end));
      const r = await c.response();
      expect(r.status, JSON.stringify(text)).toBe(200);
      expect(JSON.parse(r.body.toString()), JSON.stringify(text)).toEqual({ method: read.request.method, url: read.request.url, raw: read.request.rawHeaders });
      c.socket.destroy();
      compared++;
    }
    expect(compared).toBeGreaterThan(100);
  });
});
