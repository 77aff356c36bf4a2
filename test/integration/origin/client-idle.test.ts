/**
 * `timeouts.clientIdle` on a real origin: a connection silent both ways that long is closed,
 * whether an upload stalled mid-body or a kept-alive connection sits unused, and a stalled upload
 * leaves the stored version as it was.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient } from '../../support/raw-client.js';
import { PUBLISH_TOKEN, startTestOrigin, type TestOrigin } from '../../support/origin.js';

let origin: TestOrigin | undefined;
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.socket.destroy();
  await origin?.stop();
  origin = undefined;
});

async function start(): Promise<TestOrigin> {
  origin = await startTestOrigin({ timeouts: { clientIdle: '500ms' }, images: { transformTimeout: '200ms' } });
  return origin;
}

function client(o: TestOrigin): RawClient {
  const c = new RawClient(Number(new URL(o.url).port));
  clients.push(c);
  return c;
}

describe('origin client idle timeout', () => {
  it('closes an upload that stalls mid-body, and the stored version stays', async () => {
    const o = await start();
    expect((await o.put('notes.txt', 'version one')).status).toBe(201);
    const c = client(o);
    c.write(`PUT /_cdn/assets/notes.txt HTTP/1.1\r\nHost: origin.test\r\nAuthorization: Bearer ${PUBLISH_TOKEN}\r\nContent-Length: 1000\r\n\r\nversion tw`);
    const t0 = Date.now();
    expect(await c.closedWithin(5000)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    const res = await request(`${o.url}/notes.txt`);
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('version one');
    // The abandoned body's temporary file is gone too.
    const deadline = Date.now() + 2000;
    while ((await readdir(join(o.dataDir, 'tmp'))).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await readdir(join(o.dataDir, 'tmp'))).toEqual([]);
  });

  it('closes a kept-alive connection left unused', async () => {
    const o = await start();
    expect((await o.put('notes.txt', 'version one')).status).toBe(201);
    const c = client(o);
    c.write('GET /notes.txt HTTP/1.1\r\nHost: origin.test\r\n\r\n');
    const r = await c.response();
    expect(r.body.toString()).toBe('version one');
    const t0 = Date.now();
    expect(await c.closedWithin(5000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});
