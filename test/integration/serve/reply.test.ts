/**
 * writeReply on a real Node HTTP server on loopback, with a ranged answer cut from a shared body
 * still arriving (the edge's miss path: GrowingBody reader → sliceReadable → writeReply): a client
 * that goes away lets the body's reader go at once, whether its answer had started or not, and
 * whether or not the response was already gone when the reply was written.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { GrowingBody } from '../../../src/blob/streaming-body.js';
import { writeReply } from '../../../src/serve/reply.js';
import { sliceReadable } from '../../../edge/body-slice.js';
import { RawClient } from '../../support/raw-client.js';

let server: Server | undefined;
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.socket.destroy();
  server?.closeAllConnections();
  await new Promise((done) => (server === undefined ? done(undefined) : server.close(done)));
  server = undefined;
});

interface Ranged {
  port: number;
  /** The shared body's reader handed to the reply, once a request came in. */
  reader(): Readable | undefined;
  /** Settles when writeReply returned. */
  written(): Promise<number>;
  /** The response, once a request came in. */
  response(): ServerResponse | undefined;
}

/** A server answering every request with bytes `start`-`end` of `body`, as the edge does on a miss. */
async function rangedServer(body: GrowingBody, start: number, end: number, beforeWrite?: (res: ServerResponse) => Promise<void>): Promise<Ranged> {
  let reader: Readable | undefined;
  let response: ServerResponse | undefined;
  let resolveWritten!: (bytes: number) => void;
  const written = new Promise<number>((resolve) => (resolveWritten = resolve));
  server = createServer((_req, res) => {
    response = res;
    reader = body.createReader();
    const reply = { status: 206, headers: { 'content-range': `bytes ${start}-${end}/*`, 'content-length': String(end - start + 1) }, body: sliceReadable(reader, start, end) };
    void (beforeWrite?.(res) ?? Promise.resolve()).then(() => writeReply(res, reply)).then(resolveWritten);
  });
  await new Promise<void>((listening) => server!.listen(0, '127.0.0.1', listening));
  return { port: (server.address() as AddressInfo).port, reader: () => reader, written: () => written, response: () => response };
}

function connectClient(port: number): RawClient {
  const client = new RawClient(port);
  clients.push(client);
  return client;
}

/** Let I/O run until `done()` holds; bounded. */
async function until(done: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(done()).toBe(true);
}

describe('writeReply of a range of a body still arriving', () => {
  it('sends the range as its bytes arrive', async () => {
    const body = new GrowingBody();
    const srv = await rangedServer(body, 5, 14);
    const client = connectClient(srv.port);
    client.write('GET /r HTTP/1.1\r\nHost: test\r\n\r\n');
    await until(() => srv.reader() !== undefined);
    body.append(Buffer.from('0123456789'));
    body.append(Buffer.from('abcdefghij'));
    const res = await client.response();
    expect([res.status, res.fields['content-range'], res.body.toString()]).toEqual([206, 'bytes 5-14/*', '56789abcde']);
    expect(await srv.written()).toBe(10);
    await until(() => srv.reader()!.destroyed);
    body.end();
  });

  // The range has not begun to arrive: writeReply waits for its first bytes. A client gone in the
  // meantime releases the reader now, while the body is still open (it used to be held until the
  // range's bytes came, and for a stalled upstream until its body timed out).
  it('releases the reader when the client goes before the range’s first byte arrived', async () => {
    const body = new GrowingBody();
    const srv = await rangedServer(body, 1000, 1999);
    const client = connectClient(srv.port);
    client.write('GET /r HTTP/1.1\r\nHost: test\r\n\r\n');
    await until(() => srv.reader() !== undefined);
    body.append(Buffer.alloc(100));
    client.socket.destroy();
    await until(() => srv.reader()!.destroyed);
    expect(await srv.written()).toBe(0);
    expect(body.done).toBe(false);
    body.end();
  });

  it('releases the reader when the client goes midway, waiting for more of the body', async () => {
    const body = new GrowingBody();
    const srv = await rangedServer(body, 0, 1999);
    const client = connectClient(srv.port);
    client.write('GET /r HTTP/1.1\r\nHost: test\r\n\r\n');
    await until(() => srv.reader() !== undefined);
    body.append(Buffer.alloc(500, 1));
    let received = 0;
    client.socket.on('data', (chunk: Buffer) => (received += chunk.length));
    await until(() => received > 500);
    client.socket.destroy();
    await until(() => srv.reader()!.destroyed);
    expect(await srv.written()).toBe(500);
    expect(body.done).toBe(false);
    body.end();
  });

  // The client left while the answer was being prepared: the response is gone before writeReply
  // starts. (Node 23 and later refuse to pipe into a destroyed stream and leave the body alone.)
  it('releases the reader when the response was gone before the reply was written', async () => {
    const body = new GrowingBody();
    const srv = await rangedServer(body, 0, 99, async (res) => {
      await new Promise((closed) => res.once('close', closed));
    });
    const client = connectClient(srv.port);
    client.write('GET /r HTTP/1.1\r\nHost: test\r\n\r\n');
    await until(() => srv.response() !== undefined);
    client.socket.destroy();
    await until(() => srv.reader()!.destroyed);
    expect(await srv.written()).toBe(0);
    body.append(Buffer.alloc(100));
    expect(srv.reader()!.destroyed).toBe(true);
    body.end();
  });
});
