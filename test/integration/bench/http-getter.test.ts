/**
 * The benchmarks' load generator (test/bench/bench-lib.ts httpGetter) against a real Node server on
 * loopback: every framing it claims to read, errors it must raise rather than count as answers,
 * and keep-alive reuse within its connection bound.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGetter } from '../../bench/bench-lib.js';

const BIG = Buffer.alloc(300_000, 7);
let server: http.Server;
let base: string;
const sockets = new Set<unknown>();
let concurrent = 0;
let maxConcurrent = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const path = req.url ?? '';
    if (path === '/length') return res.end('hello');
    if (path === '/big') return res.end(BIG);
    if (path === '/chunked') {
      res.write('hel');
      setTimeout(() => res.end('lo world'), 5);
      return;
    }
    if (path === '/missing') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('no such thing');
    }
    if (path === '/close') {
      res.setHeader('connection', 'close');
      return res.end('bye');
    }
    if (path === '/cut') {
      res.writeHead(200, { 'content-length': '100' });
      res.write('only part');
      setTimeout(() => res.destroy(), 5);
      return;
    }
    if (path === '/slow') {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      setTimeout(() => {
        concurrent--;
        res.end('slow');
      }, 20);
      return;
    }
    res.writeHead(500);
    res.end();
  });
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
});

describe('httpGetter', () => {
  it('reads Content-Length and chunked bodies, large ones split across reads included', async () => {
    const c = httpGetter(base, 1);
    try {
      expect((await c.get('/length')).toString()).toBe('hello');
      expect((await c.get('/chunked')).toString()).toBe('hello world');
      expect((await c.get('/big')).equals(BIG)).toBe(true);
      expect((await c.get('/length')).toString()).toBe('hello');
    } finally {
      await c.close();
    }
  });

  it('throws on a status other than 200, naming it, and the connection serves on', async () => {
    const c = httpGetter(base, 1);
    try {
      await expect(c.get('/missing')).rejects.toThrow(/\/missing: 404 no such thing/);
      expect((await c.get('/length')).toString()).toBe('hello');
    } finally {
      await c.close();
    }
  });

  it('opens a new connection after the server closes one, and rejects an answer cut short', async () => {
    const c = httpGetter(base, 1);
    try {
      expect((await c.get('/close')).toString()).toBe('bye');
      expect((await c.get('/length')).toString()).toBe('hello');
      await expect(c.get('/cut')).rejects.toThrow(/closed before the answer was complete|ECONNRESET/);
      expect((await c.get('/length')).toString()).toBe('hello');
    } finally {
      await c.close();
    }
  });

  it('goes on after the server closes an idle kept-alive connection, noticed or not yet', async () => {
    const c = httpGetter(base, 1);
    try {
      expect((await c.get('/length')).toString()).toBe('hello');
      server.closeIdleConnections();
      await new Promise((done) => setTimeout(done, 20));
      expect((await c.get('/length')).toString()).toBe('hello');
      server.closeIdleConnections();
      expect((await c.get('/length')).toString()).toBe('hello');
    } finally {
      await c.close();
    }
  });

  it('keeps at most `connections` requests in flight and reuses its sockets', async () => {
    const before = sockets.size;
    const c = httpGetter(base, 2);
    try {
      const answers = await Promise.all(Array.from({ length: 10 }, () => c.get('/slow')));
      expect(answers.map(String)).toEqual(Array(10).fill('slow'));
      expect(maxConcurrent).toBe(2);
      expect(sockets.size - before).toBe(2);
    } finally {
      await c.close();
    }
  });
});
