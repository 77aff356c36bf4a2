/**
 * `anycdn purge` as a publisher runs it (the built CLI as a child process) against a real origin
 * with fake edges, and against `anycdn demo` with the token the demo prints.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cliBuilt, exited, startCli, stopAll } from '../../support/process.js';
import { freePortPair } from '../../support/ports.js';
import { PURGE_TOKEN, startTestOrigin, type TestOrigin } from '../../support/origin.js';
import { EDGE_TOKEN, startFakeEdge, type FakeEdge } from '../../support/purge-stream.js';

let origin: TestOrigin;
const edges: FakeEdge[] = [];
beforeAll(async () => {
  origin = await startTestOrigin({ edgeToken: EDGE_TOKEN });
});
afterEach(() => {
  for (const e of edges.splice(0)) e.close();
});
afterAll(async () => {
  await stopAll();
  await origin.stop();
});

function run(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const merged: NodeJS.ProcessEnv = { ...process.env, ANYCDN_ORIGIN: origin.url, ANYCDN_PURGE_TOKEN: PURGE_TOKEN, ...env };
    for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
    const child = spawn(process.execPath, [CLI, ...args], { env: merged, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z';

describe.skipIf(!cliBuilt)('anycdn purge (needs dist/, built by npm test)', () => {
  it('purges URLs, prefixes and tags and prints the purge id, with no edge live', async () => {
    const r = await run(['purge', '--url', '/a.jpg', '--url', 'https://cdn.example/b.jpg', '--prefix', '/photos/', '--tag', 'cats', '--soft']);
    const seq = origin.server.purges.log.lastSeq;
    expect(r).toEqual({ code: 0, stdout: `purge ${origin.server.purges.log.id}-${seq} (seq ${seq}): logged; no edge is live (each applies it when it connects)\n`, stderr: '' });
    expect(origin.server.purges.log.get(seq)).toMatchObject({ source: 'api', soft: true, all: false, urls: [{ path: '/a.jpg' }, { host: 'cdn.example', path: '/b.jpg' }], prefixes: [{ path: '/photos' }], tags: ['cats'] });
  });

  it('--wait: prints per edge when it applied the purge, and exits 0 once all live edges did', async () => {
    edges.push(await startFakeEdge(origin.url, 'ams/edge-1'), await startFakeEdge(origin.url, 'fra/e2'));
    const r = await run(['purge', '--all', '--wait', '10']);
    const seq = origin.server.purges.log.lastSeq;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^purge ${origin.server.purges.log.id}-${seq} \\(seq ${seq}\\): applied by all 2 live edges\\n  ams/edge-1  applied ${ISO}\\n  fra/e2      applied ${ISO}\\n$`));
  });

  it('--wait: exits 1 naming the live edges that did not apply it in time; offline edges are listed as such', async () => {
    edges.push(await startFakeEdge(origin.url, 'ams/edge-1'), await startFakeEdge(origin.url, 'sin/slow', { after: origin.server.purges.log.lastSeq, acking: false }));
    const r = await run(['purge', '--tag', 'x', '--wait', '0.5']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`: applied by 1 of 2 live edges\\n  ams/edge-1  applied ${ISO}\\n  fra/e2      offline \\(applies it when it reconnects\\)\\n  sin/slow    pending\\n$`));
    expect(r.stderr).toBe('anycdn purge: not applied in time by sin/slow\n');
  });

  it('without --wait, says how many live edges applied it so far', async () => {
    edges.push(await startFakeEdge(origin.url, 'sin/slow', { after: origin.server.purges.log.lastSeq, acking: false }));
    const r = await run(['purge', '--url', '/x']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/: applied by 0 of 1 live edges so far \(--wait N waits for them\)$/);
  });

  it('fails clearly on bad input, a wrong token, and nothing to purge', async () => {
    const bad = await run(['purge', '--url', 'photos/cat.jpg']);
    expect([bad.code, bad.stderr]).toEqual([1, 'anycdn purge: HTTP 400: urls[0]: "photos/cat.jpg" is neither a path starting with / nor an http(s) URL; a url looks like /photos/cat.jpg or https://cdn.example/photos/cat.jpg\n']);
    const wrong = await run(['purge', '--all'], { ANYCDN_PURGE_TOKEN: 'wrong-token-wrong-token' });
    expect([wrong.code, wrong.stderr]).toEqual([1, 'anycdn purge: HTTP 403: the purge token is not valid\n']);
    const nothing = await run(['purge', '--soft']);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('anycdn: nothing to purge: give --url, --prefix, --tag or --all');
    const noToken = await run(['purge', '--all'], { ANYCDN_PURGE_TOKEN: undefined });
    expect([noToken.code, noToken.stderr]).toEqual([2, 'anycdn: a purge token is needed: --token or $ANYCDN_PURGE_TOKEN\n']);
    const help = await run(['purge', '--help']);
    expect([help.code, help.stdout.split('\n')[0]]).toEqual([0, 'Usage: anycdn purge (--url U | --prefix P | --tag T | --all) [--soft] [--wait N]']);
  });

  it('works against the demo with the tokens it prints: its edge follows the purge stream', async () => {
    const port = await freePortPair();
    const data = await mkdtemp(join(tmpdir(), 'anycdn-purge-demo-'));
    try {
      const demo = startCli(['demo', '--port', String(port), '--data', data], { ANYCDN_PURGE_TOKEN: undefined, ANYCDN_PUBLISH_TOKEN: undefined, ANYCDN_ADMIN_TOKEN: undefined });
      await demo.waitForOutput('Press Ctrl-C to stop.', 45_000);
      const token = /Purge token: +(\S+)/.exec(demo.output())?.[1];
      const admin = /Edge admin token: +(\S+)/.exec(demo.output())?.[1];
      expect(demo.output()).toContain(`ANYCDN_ORIGIN=http://127.0.0.1:${port + 1} ANYCDN_PURGE_TOKEN=${token}`);
      const edge = `http://127.0.0.1:${port}`;
      const photo = async (): Promise<string> => {
        const res = await fetch(`${edge}/photos/landscape.jpg?w=64`);
        await res.arrayBuffer();
        return res.headers.get('cache-status') ?? '';
      };
      await photo();
      expect(await photo()).toMatch(/^anycdn; hit/);
      const r = await run(['purge', '--url', '/photos/landscape.jpg', '--wait', '5'], { ANYCDN_ORIGIN: `http://127.0.0.1:${port + 1}`, ANYCDN_PURGE_TOKEN: token });
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(r.stdout).toMatch(new RegExp(`^purge [0-9a-f]{12}-1 \\(seq 1\\): applied by all 1 live edge\\n  demo/edge-1  applied ${ISO}\\n$`));
      expect(await photo()).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      // The edge-local purge, with the admin token the demo printed.
      const local = await fetch(`${edge}/_cdn/purge`, { method: 'POST', headers: { authorization: `Bearer ${admin}` }, body: '{"urls":["/photos/landscape.jpg"]}' });
      expect([local.status, await local.json()]).toEqual([200, { node: 'demo/edge-1', removed: 1, markedStale: 0 }]);
      demo.child.kill('SIGTERM');
      expect(await exited(demo.child, 20_000)).toBe(0);
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });
});
