/**
 * `anycdn bgp agent` and `anycdn bgp withdraw` as systemd runs them: the built CLI as a child
 * process, a real BIRD, a stand-in edge health endpoint, metrics on loopback, SIGTERM.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { announceInclude } from '../../../bgp/announce.js';
import { readAnnounceFile } from '../../../bgp/announce-file.js';
import { assertBirdInCi, noBirdDaemon, startBird, type BirdDaemon } from '../../support/bird.js';
import { metricValue } from '../../support/edge.js';
import { cliBuilt, exited, startCli, stopAll } from '../../support/process.js';

assertBirdInCi(noBirdDaemon);

const dirs: string[] = [];
const servers: Server[] = [];
const birds: BirdDaemon[] = [];
afterAll(async () => {
  await stopAll();
  for (const b of birds) await b.stop();
  for (const s of servers) s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const skip = !cliBuilt ? 'needs dist/, built by npm test' : noBirdDaemon;

describe.skipIf(skip !== undefined)(`anycdn bgp agent and withdraw${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('announces a healthy edge, serves metrics, and on SIGTERM drains, withdraws and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'anycdn-agent-cli-'));
    dirs.push(dir);
    const include = join(dir, 'announce.conf');
    await writeFile(include, announceInclude('withdrawn'));
    const conf = join(dir, 'bird.conf');
    await writeFile(conf, `log stderr all;\nrouter id 192.0.2.1;\ninclude "${include}";\nprotocol device {}\n`);
    const bird = await startBird(conf, dir);
    birds.push(bird);
    const edge = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'));
    servers.push(edge);
    await new Promise<void>((r) => edge.listen(0, '127.0.0.1', r));
    const agentYaml = join(dir, 'agent.yaml');
    await writeFile(
      agentYaml,
      [
        'pop: lab',
        'node: lab-1',
        'health:',
        `  url: http://127.0.0.1:${(edge.address() as AddressInfo).port}/_cdn/healthz`,
        '  interval: 100ms',
        '  timeout: 100ms',
        '  rise: 2',
        '  fall: 2',
        // Not the default 200 ms (fall × interval): a loaded machine must not make this a stall test.
        '  stallLimit: 2s',
        'gracefulShutdown: 300ms',
        'bird:',
        `  socket: ${bird.socket}`,
        `  announceFile: ${include}`,
        'metrics: 127.0.0.1:0',
        '',
      ].join('\n'),
    );
    const agent = startCli(['bgp', 'agent', '--config', agentYaml]);
    const listening = await agent.waitForLog('metrics at /metrics');
    const announced = await agent.waitForLog('BIRD holds the state');
    expect(announced['state']).toBe('withdrawn'); // the first thing it does
    await agent.waitForLog('announce state');
    for (let i = 0; i < 100 && (await readAnnounceFile(include)) !== 'announced'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await readAnnounceFile(include)).toBe('announced');

    const res = await request(`http://${String(listening['address'])}/metrics`);
    const text = await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(metricValue(text, 'anycdn_bgp_announce_state', { state: 'announced', pop: 'lab', node: 'lab-1' })).toBe(1);
    expect(metricValue(text, 'anycdn_bgp_edge_healthy', {})).toBe(1);
    const other = await request(`http://${String(listening['address'])}/`);
    expect(other.statusCode).toBe(404);
    await other.body.dump();

    agent.child.kill('SIGTERM');
    expect(await exited(agent.child)).toBe(0);
    expect(await readAnnounceFile(include)).toBe('withdrawn');
    const log = agent
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['msg'] === 'announce state')
      .map((l) => `${String(l['from'])} -> ${String(l['to'])}`);
    expect(log).toEqual(['withdrawn -> announced', 'announced -> draining', 'draining -> withdrawn']);
  });

  it('withdraw: 0 when BIRD is not running, leaving the include withdrawn', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'anycdn-withdraw-cli-'));
    dirs.push(dir);
    const include = join(dir, 'announce.conf');
    await writeFile(include, announceInclude('announced'));
    const agentYaml = join(dir, 'agent.yaml');
    await writeFile(agentYaml, `pop: p\nnode: n\nhealth: { url: "http://127.0.0.1:1/_cdn/healthz" }\nbird: { socket: ${join(dir, 'none.ctl')}, announceFile: ${include} }\n`);
    const cli = startCli(['bgp', 'withdraw', '--config', agentYaml]);
    expect(await exited(cli.child)).toBe(0);
    expect(await readAnnounceFile(include)).toBe('withdrawn');
    expect(cli.output()).toContain('BIRD not reachable: the include says withdrawn for its next start');
  });

  it('withdraw: a missing folder for the include is exit 1 with the reason', async () => {
    const cliDir = await mkdtemp(join(tmpdir(), 'anycdn-withdraw-cli-'));
    dirs.push(cliDir);
    const agentYaml = join(cliDir, 'agent.yaml');
    await writeFile(agentYaml, `pop: p\nnode: n\nhealth: { url: "http://127.0.0.1:1/_cdn/healthz" }\nbird: { socket: /nonexistent/bird.ctl, announceFile: /nonexistent/announce.conf }\n`);
    const cli = startCli(['bgp', 'withdraw', '--config', agentYaml]);
    expect(await exited(cli.child)).toBe(1);
    expect(cli.output()).toContain('ENOENT');
  });
});
