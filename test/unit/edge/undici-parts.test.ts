/**
 * edge/undici-parts.ts loads undici's pool, request method and errors from paths inside the
 * package: they must be the objects undici's index exports, and a pool must answer through them.
 * (That the pool's code is loaded only at the first pool made: test/integration/edge/upstream-load.test.ts.)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { clientParts, newPool, poolRequest, undiciErrors } from '../../../edge/undici-parts.js';

describe('undici parts', () => {
  it('are the pool, client, request method and error classes undici exports', async () => {
    const undici = await import('undici');
    const { Pool, Client, requestMethod } = clientParts();
    expect(Pool).toBe(undici.Pool);
    expect(Client).toBe(undici.Client);
    expect(undiciErrors).toBe(undici.errors);
    // The index adds its request method to every dispatcher: the same function this module calls.
    expect((undici.Dispatcher.prototype as unknown as { request: unknown }).request).toBe(requestMethod);
  });

  it('answer a request through a pool, and fail with undici errors', async () => {
    const server = createServer((req, res) => res.end(`got ${req.url}`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const pool = newPool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1, headersTimeout: 50 });
    try {
      const res = await poolRequest(pool, { method: 'GET', path: '/a?b=1' });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('got /a?b=1');
      server.removeAllListeners('request');
      server.on('request', () => undefined); // never answers: the headers timeout fires
      const err = await poolRequest(pool, { method: 'GET', path: '/slow' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(undiciErrors.HeadersTimeoutError);
    } finally {
      await pool.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
