/**
 * An upstream's Age with several values (RFC 9111 §5.1), through a real edge: the first value of the
 * first line counts, whether the values share a line or come on two lines.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEdge, type TestEdge } from '../../support/edge.js';

let upstream: Server;
let edge: TestEdge;
const gets = new Map<string, number>();
/** The Age each path is sent with: one string is one line, an array one line per value. */
const ages: Record<string, string | string[]> = {
  '/one-line-old.txt': '7200, 0',
  '/two-lines-old.txt': ['7200', '0'],
  '/one-line-new.txt': '0, 7200',
  '/two-lines-new.txt': ['0', '7200'],
  '/parameters.txt': '7200;foo=bar',
  '/invalid.txt': '7200.0',
};

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const path = req.url ?? '';
    gets.set(path, (gets.get(path) ?? 0) + 1);
    res.setHeader('content-type', 'text/plain');
    res.setHeader('cache-control', 'max-age=3600');
    res.setHeader('age', ages[path] ?? '0');
    res.end(`body of ${path}`);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  edge = await startTestEdge(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
});
afterAll(async () => {
  await edge.destroy();
  await new Promise((r) => upstream.close(r));
});

describe('Age with several values (RFC 9111 §5.1)', () => {
  it.each(['/one-line-old.txt', '/two-lines-old.txt', '/parameters.txt'])('%s: two hours old under max-age=3600 is not a fresh hit', async (path) => {
    const first = await edge.get(path);
    expect(first.status).toBe(200);
    expect(first.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
    expect(first.headers['age']).toBe('7200');
    const second = await edge.get(path);
    expect(second.body.toString()).toBe(`body of ${path}`);
    expect(second.headers['cache-status']).toBe('anycdn; fwd=stale; fwd-status=200; stored');
    expect(gets.get(path)).toBe(2);
  });

  it.each(['/one-line-new.txt', '/two-lines-new.txt', '/invalid.txt'])('%s: counted as new, served fresh', async (path) => {
    expect((await edge.get(path)).headers['age']).toBe('0');
    const second = await edge.get(path);
    expect(second.headers['cache-status']).toBe('anycdn; hit; ttl=3600');
    expect(second.headers['age']).toBe('0');
    expect(gets.get(path)).toBe(1);
  });
});
