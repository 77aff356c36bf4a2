/**
 * The edge over HTTPS with real clients: certificates chosen by SNI (and the default for no name
 * or an unknown one), TLS versions and ciphers, ALPN, the same pipeline over HTTP/2 and HTTP/1.1
 * (hits, misses, 304, Range, HEAD, passes, Early Hints, Cache-Status, the access log's protocol),
 * curl with --http2 and --http1.1, the redirect from cleartext, and the drain (GOAWAY for HTTP/2,
 * Connection: close for HTTP/1.1).
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { testCa, type IssuedCert, type TestCa } from '../../support/certs.js';
import { startTestEdge, type TestEdge } from '../../support/edge.js';
import { curl, h1request, h2request, h2session, handshake } from '../../support/https-clients.js';

let upstream: Server;
let upstreamUrl: string;
let ca: TestCa;
let caPem: Buffer;
let certs: { local: IssuedCert; a: IssuedCert; b: IssuedCert };
let edge: TestEdge;
let https: { url: string; port: number };
const BODY = Buffer.alloc(1024, 'x');
const upstreamRequests: string[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    upstreamRequests.push(`${req.method} ${req.url}`);
    if (req.url === '/hints.txt') res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => res.writeHead(201, { 'content-type': 'text/plain' }).end(`got ${Buffer.concat(chunks).length}`));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=300', etag: '"v1"', 'content-length': String(BODY.length) });
    res.end(req.method === 'HEAD' ? undefined : BODY);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  ca = await testCa();
  caPem = await readFile(ca.caFile);
  certs = {
    local: await ca.issue('local', ['localhost', 'IP:127.0.0.1']),
    a: await ca.issue('a', ['a.test']),
    b: await ca.issue('b', ['*.b.test', 'b.test']),
  };
  edge = await startTestEdge(upstreamUrl, {
    compression: { enabled: false },
    tls: { listen: '127.0.0.1:0', certificates: [certs.local, certs.a, certs.b] },
  });
  https = edge.server.https!;
});

afterAll(async () => {
  await edge.destroy();
  await new Promise((r) => upstream.close(r));
  await ca.remove();
});

describe('certificates by name (SNI)', () => {
  it.each([
    ['a.test', 'DNS:a.test'],
    ['A.Test', 'DNS:a.test'],
    ['x.b.test', 'DNS:*.b.test, DNS:b.test'],
    ['b.test', 'DNS:*.b.test, DNS:b.test'],
    ['localhost', 'DNS:localhost, IP Address:127.0.0.1'],
    // One label only for a wildcard; unknown names get the default.
    ['y.x.b.test', 'DNS:localhost, IP Address:127.0.0.1'],
    ['other.example', 'DNS:localhost, IP Address:127.0.0.1'],
  ])('a client asking for %s gets the certificate for %s', async (servername, san) => {
    const h = await handshake(https.port, { servername, ca: caPem, rejectUnauthorized: false });
    expect(h.peer.subjectaltname).toBe(san);
  });

  it('a client sending no name gets the default certificate, which verifies for 127.0.0.1', async () => {
    const h = await handshake(https.port, { ca: caPem });
    expect(h.peer.subjectaltname).toBe('DNS:localhost, IP Address:127.0.0.1');
  });

  it('a client verifying a name no certificate covers refuses the default one', async () => {
    await expect(handshake(https.port, { servername: 'other.example', ca: caPem })).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });
});

describe('TLS versions, ciphers and ALPN', () => {
  it('negotiates TLS 1.3 and h2 with a modern client', async () => {
    const h = await handshake(https.port, { servername: 'localhost', ca: caPem, ALPNProtocols: ['h2', 'http/1.1'] });
    expect(h.protocol).toBe('TLSv1.3');
    expect(h.alpn).toBe('h2');
    expect(h.cipher).toBe('TLS_AES_128_GCM_SHA256');
  });

  it('speaks HTTP/1.1 to a client that asks for it, and to one that offers no ALPN', async () => {
    expect((await handshake(https.port, { servername: 'localhost', ca: caPem, ALPNProtocols: ['http/1.1'] })).alpn).toBe('http/1.1');
    expect((await handshake(https.port, { servername: 'localhost', ca: caPem })).alpn).toBe(false);
  });

  it('accepts TLS 1.2 with ECDHE and AES-GCM, refuses TLS 1.1 and CBC ciphers', async () => {
    const h = await handshake(https.port, { servername: 'localhost', ca: caPem, maxVersion: 'TLSv1.2' });
    expect(h.protocol).toBe('TLSv1.2');
    expect(h.cipher).toBe('ECDHE-ECDSA-AES128-GCM-SHA256');
    await expect(handshake(https.port, { servername: 'localhost', ca: caPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })).rejects.toThrow();
    await expect(handshake(https.port, { servername: 'localhost', ca: caPem, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256' })).rejects.toThrow();
  });
});

describe('the pipeline over HTTP/2', () => {
  it('misses, then hits, with the same headers as over HTTP/1.1', async () => {
    const session = await h2session(https.url, { ca: caPem });
    try {
      const miss = await h2request(session, '/h2/one.bin');
      expect(miss.status).toBe(200);
      expect(miss.body).toEqual(BODY);
      expect(miss.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      await edge.settled();
      const hit = await h2request(session, '/h2/one.bin');
      expect(hit.status).toBe(200);
      expect(hit.body).toEqual(BODY);
      expect(hit.headers['cache-status']).toMatch(/^anycdn; hit; ttl=\d+$/);
      expect(hit.headers['x-served-by']).toBe('test/edge-1');
      expect(hit.headers['etag']).toBe('"v1"');
      expect(hit.headers['content-length']).toBe('1024');
      expect(hit.headers['connection']).toBeUndefined();
      const h1 = await h1request(`${https.url}/h2/one.bin`, { ca: caPem });
      expect(h1.headers['cache-status']).toBe(hit.headers['cache-status']);
      expect(h1.protocol).toBe('TLSv1.3');
    } finally {
      session.close();
    }
  });

  it('answers 304, 206 and HEAD at the edge', async () => {
    const session = await h2session(https.url, { ca: caPem });
    try {
      await h2request(session, '/h2/cond.bin');
      await edge.settled();
      const notModified = await h2request(session, '/h2/cond.bin', { 'if-none-match': '"v1"' });
      expect(notModified.status).toBe(304);
      expect(notModified.body.length).toBe(0);
      const partial = await h2request(session, '/h2/cond.bin', { range: 'bytes=0-9' });
      expect(partial.status).toBe(206);
      expect(partial.headers['content-range']).toBe('bytes 0-9/1024');
      expect(partial.body).toEqual(BODY.subarray(0, 10));
      const head = await h2request(session, '/h2/cond.bin', { ':method': 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers['content-length']).toBe('1024');
      expect(head.body.length).toBe(0);
      expect(upstreamRequests.filter((r) => r.endsWith('/h2/cond.bin'))).toEqual(['GET /h2/cond.bin']);
    } finally {
      session.close();
    }
  });

  it('passes a POST with its body through, and forwards Early Hints', async () => {
    const session = await h2session(https.url, { ca: caPem });
    try {
      const posted = await h2request(session, '/h2/form', { ':method': 'POST', 'content-type': 'text/plain' }, Buffer.alloc(5000, 'p'));
      expect(posted.status).toBe(201);
      expect(posted.body.toString()).toBe('got 5000');
      const hinted = await h2request(session, '/hints.txt');
      expect(hinted.informational).toEqual([103]);
      expect(hinted.status).toBe(200);
    } finally {
      session.close();
    }
  });

  it('answers a request whose :authority is not a host with 400, and keeps the session', async () => {
    const session = await h2session(https.url, { ca: caPem });
    try {
      const bad = await h2request(session, '/x', { ':authority': 'cdn.example:99999' });
      expect(bad.status).toBe(400);
      expect(JSON.parse(bad.body.toString())).toMatchObject({ error: 'bad_request' });
      expect((await h2request(session, '/_cdn/healthz')).status).toBe(200);
    } finally {
      session.close();
    }
  });
});

describe('access log', () => {
  it('says HTTP/2.0 for streams (hits answered on the stream included) and HTTP/1.1 over TLS', async () => {
    const logFile = `${ca.dir}/access.log`;
    const logging = await startTestEdge(upstreamUrl, { tls: { listen: '127.0.0.1:0', certificates: [certs.local] }, accessLog: { path: logFile, flushInterval: '10ms' } });
    const host = `127.0.0.1:${logging.server.https!.port}`;
    try {
      const url = logging.server.https!.url;
      const session = await h2session(url, { ca: caPem });
      await h2request(session, '/log.bin');
      await logging.settled();
      await h2request(session, '/log.bin');
      session.close();
      await h1request(`${url}/log.bin`, { ca: caPem });
    } finally {
      await logging.destroy();
    }
    const lines = (await readFile(logFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    // The Host of an HTTP/2 request is its :authority.
    expect(lines.map((l) => [l['protocol'], l['outcome'], l['host'], l['client']])).toEqual([
      ['HTTP/2.0', 'miss', host, '127.0.0.1'],
      ['HTTP/2.0', 'hit', host, '127.0.0.1'],
      ['HTTP/1.1', 'hit', host, '127.0.0.1'],
    ]);
  });
});

describe('curl', () => {
  it('--http2 and --http1.1, verifying against the CA', async () => {
    const two = await curl(['--http2', '--cacert', ca.caFile, `${https.url}/curl.bin`]);
    expect(two.head).toMatch(/^HTTP\/2 200 ?\r\n/);
    expect(two.written).toBe('2 0');
    expect(two.body.length).toBe(1024);
    await edge.settled();
    const one = await curl(['--http1.1', '--cacert', ca.caFile, `${https.url}/curl.bin`]);
    expect(one.head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(one.head).toMatch(/\r\ncache-status: anycdn; hit; ttl=\d+\r\n/i);
    expect(one.written).toBe('1.1 0');
  });

  it('--resolve a.test to the edge: the a.test certificate verifies', async () => {
    const r = await curl(['--http2', '--cacert', ca.caFile, '--resolve', `a.test:${https.port}:127.0.0.1`, `https://a.test:${https.port}/_cdn/healthz`]);
    expect(r.head).toMatch(/^HTTP\/2 200 ?\r\n/);
  });
});

describe('redirectHttp', () => {
  let redirecting: TestEdge;
  beforeAll(async () => {
    redirecting = await startTestEdge(upstreamUrl, { tls: { listen: '127.0.0.1:0', certificates: [certs.local], redirectHttp: true } });
  });
  afterAll(() => redirecting.destroy());

  it('answers content with 301 to the TLS port, control routes as always', async () => {
    const port = redirecting.server.https!.port;
    const res = await request(`${redirecting.url}/photos/cat.jpg?w=100`, { headers: { host: 'cdn.example:8080' } });
    expect(res.statusCode).toBe(301);
    expect(res.headers['location']).toBe(`https://cdn.example:${port}/photos/cat.jpg?w=100`);
    await res.body.dump();
    const health = await request(`${redirecting.url}/_cdn/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
    // Over TLS: served.
    const served = await h1request(`${redirecting.server.https!.url}/photos/a.bin`, { ca: caPem });
    expect(served.status).toBe(200);
  });
});

describe('drain', () => {
  it('sends HTTP/2 clients GOAWAY and HTTP/1.1 clients Connection: close, then closes', async () => {
    const draining = await startTestEdge(upstreamUrl, { tls: { listen: '127.0.0.1:0', certificates: [certs.local] }, drain: 1_000 });
    try {
      const url = draining.server.https!.url;
      const session = await h2session(url, { ca: caPem });
      await h2request(session, '/d.bin');
      await draining.settled();
      const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
      let closed = false;
      const drained = draining.server.drain().then(() => void (closed = true));
      const during = await h2request(session, '/d.bin');
      expect(during.status).toBe(200);
      expect(during.headers['connection']).toBeUndefined();
      expect(await goaway).toBe(0);
      // Sent after the answer, not at the end of the drain period.
      expect(closed).toBe(false);
      // A miss, answered through Node's compatibility layer, ends its session the same way.
      const other = await h2session(url, { ca: caPem });
      const otherGoaway = new Promise<number>((resolve) => other.once('goaway', (code: number) => resolve(code)));
      const miss = await h2request(other, '/d-miss.bin');
      expect(miss.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      expect(await otherGoaway).toBe(0);
      expect(closed).toBe(false);
      other.destroy();
      const h1 = await h1request(`${url}/d.bin`, { ca: caPem });
      expect(h1.headers['connection']).toBe('close');
      await drained;
      await expect(h1request(`${url}/d.bin`, { ca: caPem })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      session.destroy();
    } finally {
      await draining.destroy();
    }
  });
});
