/**
 * The agent driving a real BIRD: a rendered bird.conf (its neighbours on an interface this host
 * does not have, so BIRD never opens a session), a fake edge health endpoint on loopback, and
 * the agent in this process with short intervals. What BIRD would send is read with
 * `show route filter anycdn_export_peer1 all`: the neighbour's own export filter applied to
 * BIRD's table, so announce, graceful shutdown and withdrawal are checked in BIRD itself.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { parseConfigText } from '../../support/config-text.js';
import { createLogger } from '../../../src/log.js';
import { startAgent, withdrawOnce, type Agent } from '../../../bgp/agent.js';
import { agentConfigSchema } from '../../../bgp/agent-config.js';
import { createAgentMetrics, type AgentMetrics } from '../../../bgp/agent-metrics.js';
import { announceInclude, type AnnounceState } from '../../../bgp/announce.js';
import { readAnnounceFile, writeAnnounceFile } from '../../../bgp/announce-file.js';
import { BirdControl } from '../../../bgp/bird-control.js';
import { probeHealth } from '../../../bgp/health-probe.js';
import { inventorySchema } from '../../../bgp/inventory.js';
import { renderInventory } from '../../../bgp/render.js';
import { metricValue } from '../../support/edge.js';
import { assertBirdInCi, noBirdDaemon, startBird, type BirdDaemon } from '../../support/bird.js';
import { capturedLog } from '../../support/logs.js';

assertBirdInCi(noBirdDaemon);

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

type EdgeMode = 'ok' | 'broken' | 'draining';

/** A stand-in for the edge's /_cdn/healthz whose answer the test sets. */
async function fakeEdge(): Promise<{ url: string; mode: EdgeMode; server: Server }> {
  const edge = { url: '', mode: 'ok' as EdgeMode, server: undefined as unknown as Server };
  edge.server = createServer((req, res) => {
    const body = edge.mode === 'ok' ? { status: 'ok' } : edge.mode === 'draining' ? { status: 'draining' } : { status: 'store-closed' };
    res.writeHead(edge.mode === 'ok' ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => edge.server.listen(0, '127.0.0.1', r));
  edge.url = `http://127.0.0.1:${(edge.server.address() as AddressInfo).port}/_cdn/healthz`;
  return edge;
}

/** Render a one-node inventory into `dir`: bird.conf plus the withdrawn announce include. */
async function renderNode(dir: string): Promise<{ conf: string; include: string }> {
  const yaml = `
anycast: { prefixes: [203.0.113.0/24] }
origin: { url: http://origin.invalid }
bfd: { enabled: false }
paths: { state: ${dir} }
pops:
  - name: lab
    asn: 65010
    nodes:
      - name: lab-1
        routerId: 192.0.2.2
        interfaces: [{ name: anycdn-none0, addresses: [192.0.2.2/29] }]
        neighbours:
          - { name: upstream, address: 192.0.2.1, interface: anycdn-none0, asn: 65020, prepend: 1, med: 50 }
`;
  const inv = validateConfig(inventorySchema, parseConfigText('inventory.yaml', yaml), 'inventory.yaml', {});
  const files = new Map(renderInventory(inv).map((f) => [f.path, f.content]));
  const conf = join(dir, 'bird.conf');
  await writeFile(conf, files.get('lab/lab-1/bird.conf')!);
  const include = join(dir, 'announce.conf');
  await writeFile(include, files.get('lab/lab-1/announce.conf')!);
  return { conf, include };
}

interface Exported {
  routes: string[];
  asPath: string | undefined;
  med: string | undefined;
  community: string | undefined;
}

/** What BIRD's export filter for the neighbour lets through, with the attributes it sets. */
async function exported(bird: BirdControl): Promise<Exported> {
  const reply = await bird.command('show route filter anycdn_export_peer1 all');
  const texts = reply.lines.map((l) => l.text.trim());
  const attr = (name: string): string | undefined => texts.find((t) => t.startsWith(`${name}: `))?.slice(name.length + 2);
  return {
    routes: texts.filter((t) => /^\d+\.\d+\.\d+\.\d+\/\d+ /.test(t)).map((t) => t.split(/\s+/)[0]!),
    asPath: attr('BGP.as_path'),
    med: attr('BGP.med'),
    community: attr('BGP.community'),
  };
}

async function until<T>(what: string, read: () => Promise<T> | T, ok: (v: T) => boolean, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await read();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms; last ${JSON.stringify(last)}`);
}

const ANNOUNCED: Exported = { routes: ['203.0.113.0/24'], asPath: '65010', med: '50', community: undefined };
const DRAINING: Exported = { ...ANNOUNCED, community: '(65535,0)' };
const WITHDRAWN: Exported = { routes: [], asPath: undefined, med: undefined, community: undefined };

describe.skipIf(noBirdDaemon !== undefined)(`the agent with a real BIRD${noBirdDaemon ? ` (skipped: ${noBirdDaemon})` : ''}`, () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setUp(options: { startBird?: boolean } = {}) {
    const dir = await mkdtemp(join(tmpdir(), 'anycdn-agent-'));
    dirs.push(dir);
    const { conf, include } = await renderNode(dir);
    const edge = await fakeEdge();
    cleanups.push(() => new Promise<void>((r) => edge.server.close(() => r())));
    const config = validateConfig(
      agentConfigSchema,
      {
        pop: 'lab',
        node: 'lab-1',
        // Probes every 100 ms for speed. The stall limit is raised from its default (fall ×
        // interval, 200 ms): on a loaded machine (load 12) this process went unscheduled for
        // 222 ms and the agent rightly withdrew. Stalls are tested in agent-stall.test.ts.
        health: { url: edge.url, interval: 100, timeout: 90, rise: 2, fall: 2, stallLimit: '2s' },
        gracefulShutdown: 600,
        // Flap damping is table-tested; here it must not hold the node down between steps.
        damping: { maxFlips: 100 },
        bird: { socket: join(dir, 'bird.ctl'), announceFile: include, commandTimeout: 3000 },
      },
      'agent.yaml',
      {},
    );
    const log = capturedLog('debug');
    const lines = log.lines();
    const metrics: AgentMetrics = createAgentMetrics({ pop: 'lab', node: 'lab-1' });
    const birds: { daemon: BirdDaemon | undefined } = { daemon: undefined };
    const startDaemon = async (): Promise<BirdDaemon> => {
      // What anycdn-bird.service's ExecStartPre does: every start begins withdrawn.
      await writeFile(include, announceInclude('withdrawn'));
      birds.daemon = await startBird(conf, dir);
      return birds.daemon;
    };
    if (options.startBird !== false) await startDaemon();
    cleanups.push(async () => birds.daemon?.stop());
    const agentBird = new BirdControl(config.bird.socket, { timeoutMs: config.bird.commandTimeout });
    const look = new BirdControl(config.bird.socket, { timeoutMs: 3000 });
    cleanups.push(() => {
      agentBird.close();
      look.close();
    });
    const agent: Agent = startAgent({
      config,
      logger: log.logger,
      metrics,
      bird: agentBird,
      probe: () => probeHealth(config.health.url, config.health.timeout),
      writeAnnounce: (state) => writeAnnounceFile(include, state),
      readAnnounce: () => readAnnounceFile(include),
      now: () => performance.now(),
    });
    cleanups.push(async () => {
      agent.stop(true);
      await agent.done;
    });
    const announced = (state: AnnounceState) => until(`agent ${state}`, () => agent.state().announce, (s) => s === state);
    const birdExports = (want: Exported) => until(`BIRD exports ${JSON.stringify(want)}`, () => exported(look), (e) => JSON.stringify(e) === JSON.stringify(want));
    const logged = (msg: string) => lines.filter((l) => l['msg'] === msg);
    return { dir, include, edge, agent, metrics, birds, startDaemon, announced, birdExports, logged, look };
  }

  it('starts withdrawn, announces after rise, withdraws after fall, drains with graceful shutdown, stops withdrawn', async () => {
    const t = await setUp();
    // Withdrawn until the edge has passed two probes.
    expect(await exported(t.look)).toEqual(WITHDRAWN);
    await t.announced('announced');
    await t.birdExports(ANNOUNCED);
    expect(await readAnnounceFile(t.include)).toBe('announced');

    t.edge.mode = 'broken';
    await t.announced('withdrawn');
    await t.birdExports(WITHDRAWN);
    t.edge.mode = 'ok';
    await t.announced('announced');
    await t.birdExports(ANNOUNCED);

    // A draining edge: the graceful-shutdown community at once, the withdrawal 600 ms later.
    t.edge.mode = 'draining';
    const drainStart = performance.now();
    await t.birdExports(DRAINING);
    await t.birdExports(WITHDRAWN);
    expect(performance.now() - drainStart).toBeGreaterThanOrEqual(550);

    t.edge.mode = 'ok';
    await t.birdExports(ANNOUNCED);
    t.agent.stop(false);
    await t.birdExports(DRAINING);
    expect(await t.agent.done).toBe(true);
    expect(await exported(t.look)).toEqual(WITHDRAWN);
    expect(await readAnnounceFile(t.include)).toBe('withdrawn');

    const transitions = t.logged('announce state').map((l) => [l['from'], l['to'], l['reason']]);
    expect(transitions).toEqual([
      ['withdrawn', 'announced', 'healthy: 2 passing probes in a row'],
      ['announced', 'withdrawn', 'unhealthy: 2 failed probes in a row (last: status 503: {"status":"store-closed"})'],
      ['withdrawn', 'announced', 'healthy: 2 passing probes in a row'],
      ['announced', 'draining', 'the edge is draining: graceful shutdown (RFC 8326) for 600 ms, then withdraw'],
      ['draining', 'withdrawn', 'the edge is draining: graceful shutdown period over'],
      ['withdrawn', 'announced', 'healthy: 2 passing probes in a row'],
      ['announced', 'draining', 'agent stopping: graceful shutdown (RFC 8326) for 600 ms, then withdraw'],
      ['draining', 'withdrawn', 'agent stopping: graceful shutdown period over'],
    ]);
    const text = await t.metrics.registry.metrics();
    expect(metricValue(text, 'anycdn_bgp_transitions_total', { to: 'announced' })).toBe(3);
    expect(metricValue(text, 'anycdn_bgp_transitions_total', { to: 'draining' })).toBe(2);
    expect(metricValue(text, 'anycdn_bgp_announce_state', { state: 'withdrawn' })).toBe(1);
    expect(metricValue(text, 'anycdn_bgp_announce_state', { state: 'announced' })).toBe(0);
    expect(metricValue(text, 'anycdn_bgp_bird_up', {})).toBe(1);
    expect(metricValue(text, 'anycdn_bgp_probes_total', { result: 'draining' })).toBeGreaterThanOrEqual(1);
  });

  it('re-asserts the state when BIRD restarts (withdrawn by its unit) and when someone else reconfigures it', async () => {
    const t = await setUp();
    await t.birdExports(ANNOUNCED);

    await t.birds.daemon!.stop();
    await until('BIRD seen down', () => t.metrics.registry.metrics(), (m) => metricValue(m, 'anycdn_bgp_bird_up', {}) === 0);
    await t.startDaemon();
    await t.birdExports(ANNOUNCED);
    const reasons = () => t.logged('reasserted').map((l) => l['reason']);
    await until('re-assert logged', reasons, (r) => r.length === 1);
    expect(reasons()).toEqual(['BIRD restarted']);

    // Someone rewrites the include and reconfigures: the agent puts its decision back, having
    // seen the file change, the reconfiguration, or both (whichever it looked at first).
    await writeFile(t.include, announceInclude('withdrawn'));
    expect((await t.look.command('configure')).code).toBe(3);
    await t.birdExports(ANNOUNCED);
    await until('re-assert logged', reasons, (r) => r.length >= 2);
    expect(reasons()[0]).toBe('BIRD restarted');
    for (const reason of reasons().slice(1)) expect(['announce file changed', 'BIRD reconfigured']).toContain(reason);
    const text = await t.metrics.registry.metrics();
    expect(metricValue(text, 'anycdn_bgp_reasserts_total', { reason: 'BIRD restarted' })).toBe(1);
  });

  it('keeps going while BIRD is down and announces once it comes up', async () => {
    const t = await setUp({ startBird: false });
    await t.announced('announced');
    // The include says what the agent wants, ready for when BIRD reads it.
    await until('include announced', () => readAnnounceFile(t.include), (s) => s === 'announced');
    expect(t.logged('BIRD unreachable')).toHaveLength(1);
    await t.startDaemon();
    await t.birdExports(ANNOUNCED);
    // BIRD exports what the include says as it starts, maybe before the agent's next command
    // reaches it: the agent notices at its next look.
    await until('BIRD reachable logged', () => t.logged('BIRD reachable'), (l) => l.length >= 1);
    expect(t.logged('BIRD reachable')).toHaveLength(1);
    expect(t.logged('BIRD unreachable')).toHaveLength(1);
  });

  it('a BIRD that refuses the include is logged and retried, never taken as applied', async () => {
    const t = await setUp();
    await t.birdExports(ANNOUNCED);
    // Make the next configure fail: the agent's include is fine, but bird.conf is now broken.
    const conf = join(t.dir, 'bird.conf');
    const good = await readFile(conf, 'utf8');
    await writeFile(conf, good + '\nprotocol nonsense {\n');
    t.edge.mode = 'broken';
    await until('refusal logged', () => t.logged('BIRD refused the configuration').length, (n) => n >= 2);
    // BIRD kept its last good configuration: still announced, though the agent wants withdrawn.
    expect(await exported(t.look)).toEqual(ANNOUNCED);
    await writeFile(conf, good);
    await t.birdExports(WITHDRAWN);
  });
});

describe.skipIf(noBirdDaemon !== undefined)(`anycdn bgp withdraw${noBirdDaemon ? ` (skipped: ${noBirdDaemon})` : ''}`, () => {
  it('withdraws a running BIRD, and succeeds when BIRD is not running', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'anycdn-withdraw-'));
    dirs.push(dir);
    const { conf, include } = await renderNode(dir);
    await writeFile(include, announceInclude('announced'));
    const daemon = await startBird(conf, dir);
    const look = new BirdControl(daemon.socket, { timeoutMs: 3000 });
    try {
      expect(await exported(look)).toEqual(ANNOUNCED);
      const logger = createLogger({ level: 'silent' });
      const write = (state: AnnounceState) => writeAnnounceFile(include, state);
      expect(await withdrawOnce({ bird: new BirdControl(daemon.socket, { timeoutMs: 3000 }), logger, writeAnnounce: write })).toBe(true);
      expect(await exported(look)).toEqual(WITHDRAWN);
      await daemon.stop();
      await writeFile(include, announceInclude('announced'));
      expect(await withdrawOnce({ bird: new BirdControl(daemon.socket, { timeoutMs: 1000 }), logger, writeAnnounce: write })).toBe(true);
      expect(await readAnnounceFile(include)).toBe('withdrawn');
    } finally {
      look.close();
      await daemon.stop();
    }
  });
});
