/**
 * An edge node with `workers: 2`, run through the real CLI: the worker that leads the fetch of a
 * key (edge/cluster-flights.ts) is killed with SIGKILL while upstream is still answering it; the
 * primary ends its fetches, and the requests that followed it in the other worker fetch for
 * themselves rather than wait for a leader that is gone.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http, { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliBuilt, startCli, stopAll } from '../../support/process.js';

let upstream: Server;
let dir: string;
/** The GETs upstream received: the port each came from, and its response (held until the test answers it). */
const gets: { port: number; res: ServerResponse }[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    gets.push({ port: req.socket.remotePort ?? 0, res });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  dir = await mkdtemp(join(tmpdir(), 'anycdn-cluster-leader-'));
});
afterAll(async () => {
  await stopAll();
  for (const g of gets) g.res.destroy();
  await new Promise((r) => upstream.close(r));
  await rm(dir, { recursive: true, force: true });
});

function answer(res: ServerResponse): void {
  const body = 'the body';
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600', 'content-length': String(body.length) }).end(body);
}

/** One request on a connection of its own, so the cluster may hand it to any worker. */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The process (among `pids`) that owns the loopback TCP socket bound to local `port`. */
function ownerOfPort(port: number, pids: number[]): number | undefined {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const line = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .find((l) => l.trim().split(/\s+/)[1]?.endsWith(`:${hex}`));
  const inode = line?.trim().split(/\s+/)[9];
  if (inode === undefined) return undefined;
  // A process or a descriptor may be gone by the time it is read.
  const link = (path: string): string | undefined => {
    try {
      return readlinkSync(path);
    } catch {
      return undefined;
    }
  };
  const fds = (pid: number): string[] => {
    try {
      return readdirSync(`/proc/${pid}/fd`);
    } catch {
      return [];
    }
  };
  return pids.find((pid) => fds(pid).some((fd) => link(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`));
}

describe.skipIf(!cliBuilt)('the worker leading a fetch dies (needs dist/, built by npm test)', () => {
  it('lets the requests that followed it in the other worker fetch for themselves', async () => {
    const config = join(dir, 'edge.yaml');
    const port = (upstream.address() as AddressInfo).port;
    await writeFile(config, `listen: 127.0.0.1:0\nupstream: http://127.0.0.1:${port}\npop: lab\nnode: d1\nworkers: 2\ncacheDir: ${join(dir, 'cache')}\ndrain: 0s\n`);
    const proc = startCli(['edge', '--config', config]);
    // The shield starts once both workers listen: from then on, connections go to either.
    await proc.waitForLog('shield listening', 30_000);
    const url = String((await proc.waitForLog('edge listening'))['url']);
    const workers = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    expect(workers).toHaveLength(2);
    // Requests on connections of their own until both workers have some: one leads, the rest follow.
    const answers: Promise<{ status: number; body: string }>[] = [];
    for (let i = 0; i < 16; i++) answers.push(get(`${url}/held.txt`).catch(() => ({ status: 0, body: 'connection lost with its worker' })));
    await until('the leader asking upstream', () => gets.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(gets).toHaveLength(1);
    const leader = ownerOfPort(gets[0]!.port, workers);
    expect(workers).toContain(leader);
    process.kill(leader!, 'SIGKILL');
    // The followers in the other worker are released, find nothing stored, and fetch again.
    await until('a fetch by the surviving worker', () => gets.length === 2, 10_000);
    // Fetched by a worker of the node: the surviving one, or (rarely) the dead one's replacement,
    // handed a connection the primary had queued for the dead one; never the shield.
    const now = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    const fetcher = ownerOfPort(gets[1]!.port, [...new Set([...workers, ...now, proc.pid])]);
    expect({ fetcher, workers: now.includes(fetcher!) && fetcher !== leader }).toEqual({ fetcher, workers: true });
    answer(gets[1]!.res);
    const done = await Promise.all(answers);
    const served = done.filter((a) => a.status === 200);
    // Those the dead worker held are lost with their connections; every other one has the body.
    expect(served.length).toBeGreaterThan(0);
    for (const a of done) expect(a.status === 200 ? a.body : a.status).toBe(a.status === 200 ? 'the body' : 0);
    expect(gets).toHaveLength(2);
  });
});
