/**
 * The anycast lab on one machine: the plan (topology.ts) made real with network namespaces and
 * veth pairs, every PoP's BIRD, edge and agent configured from `anycdn bgp render` and the lab
 * inventory, client routers running BIRD with configs from router-config.ts, an origin with one
 * file, and clients that request it through the anycast address. `deploy/lab/up` and
 * `deploy/lab/down` drive it by hand; test/lab and test/bench/failover.ts drive it from code.
 *
 * Every process is started in its namespace and known by its PID (processes.ts); `stop()` ends
 * them and runs `deploy/lab/down`, which also clears what a crashed run left behind.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, copyFile, cp, mkdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AnnounceState } from '../../bgp/announce.js';
import { readAnnounceFile } from '../../bgp/announce-file.js';
import { BirdControl } from '../../bgp/bird-control.js';
import { replyText } from '../../bgp/bird-reply.js';
import { CLI, DOWN_SCRIPT, findBird, labPrerequisites, ROOT } from './checkout.js';
import { removeStaleLabs, runFolder, teardown } from './cleanup.js';
import { bfdNotUp, parseBfdSessions, type BfdState } from './bfd-sessions.js';
import { answeredBy, startClient, type ClientOptions, type ClientRun } from './client-run.js';
import { LAB_TIMINGS, popFolder, type LabTimings } from './inventory.js';
import { originConfig, PUBLISH_TOKEN, routerFolder, writeLabFiles } from './lab-files.js';
import type { ClientRecord } from './measure.js';
import { createNetwork, runCommand } from './netns.js';
import { sizeOf, startDaemon, waitFor, waitForLog, type Daemon } from './processes.js';
import { routerPeerProtocol } from './router-config.js';
import { ANYCAST_ADDRESS, EDGE_PORT, LAB_BODY, LAB_PATH, labPlan, ORIGIN_ADDRESS, ORIGIN_PORT, servedBy, type LabPlan, type LabPop, type LabRouter } from './topology.js';

/**
 * The most a daemon may take to start (listening, its control socket there). Seconds on an idle
 * machine; Node.js alone took 5 s and more to start at load 13–20 with the lab at nice 10.
 */
const DAEMON_START_TIMEOUT_MS = 60_000;

export interface LabOptions {
  timings?: LabTimings;
  /** Daemons keep running after this process exits (`deploy/lab/up`); only the teardown script ends them. */
  detached?: boolean;
  /** Progress lines. Default: none. */
  log?: (line: string) => void;
}

export interface PopNode {
  pop: LabPop;
  folder: ReturnType<typeof popFolder>;
  /** The `anycdn` executable its edge and agent start from (a release, see installRelease). */
  cli: string;
  bird: Daemon | undefined;
  edge: Daemon | undefined;
  agent: Daemon | undefined;
  control: BirdControl;
}

export interface RouterNode {
  router: LabRouter;
  bird: Daemon;
  control: BirdControl;
}

export class Lab {
  readonly pops = new Map<string, PopNode>();
  readonly routers = new Map<string, RouterNode>();
  origin: Daemon | undefined;
  private readonly clients = new Set<ClientRun>();
  private clientCount = 0;
  /** PoPs frozen now: their freeze and thaw are noted in logs/lab.log, with the time. */
  private readonly frozen = new Set<string>();
  private readonly bird: string;
  private stopped = false;

  private constructor(
    readonly plan: LabPlan,
    readonly runDir: string,
    readonly timings: LabTimings,
    private readonly options: LabOptions,
  ) {
    this.bird = findBird()!;
  }

  /** Build the whole lab and wait until every client network is routed to its nearest PoP. */
  static async start(options: LabOptions = {}): Promise<Lab> {
    const missing = labPrerequisites();
    if (missing !== undefined) throw new Error(`the lab cannot start: ${missing}`);
    await removeStaleLabs(options.log);
    const id = `${process.pid}-${randomBytes(2).toString('hex')}`;
    const runDir = runFolder(id);
    await mkdir(runDir, { recursive: false });
    if (options.detached) await writeFile(join(runDir, 'detached'), 'started by deploy/lab/up; removed by deploy/lab/down\n');
    const lab = new Lab(labPlan(id), runDir, options.timings ?? LAB_TIMINGS, options);
    try {
      await lab.build();
    } catch (err) {
      // A lab left to itself (deploy/lab/up) stays for inspection; deploy/lab/down removes it.
      if (options.detached) throw new Error(`${(err as Error).message}\nthe lab is left as it is for inspection: ${DOWN_SCRIPT} ${id}`);
      await lab.stop().catch(() => undefined);
      throw err;
    }
    return lab;
  }

  /** A progress line, also kept with its time in logs/lab.log (how long each phase took on a busy machine). */
  private note(line: string): void {
    this.options.log?.(line);
    void appendFile(join(this.runDir, 'logs', 'lab.log'), `${new Date().toISOString()} ${line}\n`).catch(() => undefined);
  }

  private async build(): Promise<void> {
    const { plan, runDir } = this;
    await mkdir(join(runDir, 'logs'));
    this.note(`lab ${plan.id}: ${plan.namespaces.length} namespaces, ${plan.links.length} links (${runDir})`);
    await createNetwork(plan);
    this.note('namespaces, links and routes created');
    await writeLabFiles(plan, runDir, this.timings, this.bird);
    for (const pop of plan.pops) {
      const folder = popFolder(runDir, pop);
      this.pops.set(pop.name, { pop, folder, cli: CLI, bird: undefined, edge: undefined, agent: undefined, control: new BirdControl(join(folder.run, 'bird.ctl'), { timeoutMs: 5000 }) });
    }
    this.note('configs rendered and checked with bird -p');
    this.origin = await this.startOrigin();
    await this.publish();
    this.note('origin up, lab file published');
    await Promise.all([...plan.routers.map((r) => this.startRouter(r)), ...plan.pops.map((p) => this.startBird(p.name))]);
    await Promise.all(plan.pops.map((p) => this.startEdge(p.name)));
    await Promise.all(plan.pops.map((p) => this.startAgent(p.name)));
    this.note('daemons started; waiting for every router to reach every PoP');
    await this.steady(30_000);
    this.note('converged: each client network is routed to its nearest PoP, every BFD session up');
  }

  /** Start a daemon; `from` is where its log ended before (a restarted daemon appends to it). */
  private async daemon(name: string, ns: string, command: string, args: string[]): Promise<{ daemon: Daemon; from: number }> {
    const log = join(this.runDir, 'logs', `${name.replace('/', '-')}.log`);
    const from = await sizeOf(log);
    const daemon = startDaemon({ name, ns, command, args, env: { MALLOC_ARENA_MAX: '2' }, log });
    if (this.options.detached) daemon.unref();
    return { daemon, from };
  }

  async startOrigin(): Promise<Daemon> {
    const { daemon: origin, from } = await this.daemon('origin', this.plan.origin.ns, process.execPath, [CLI, 'origin', '--config', originConfig(this.runDir)]);
    await waitForLog(origin, (l) => l['msg'] === 'origin listening', DAEMON_START_TIMEOUT_MS, from);
    this.origin = origin;
    return origin;
  }

  private async publish(): Promise<void> {
    const file = join(this.runDir, 'origin', 'lab.txt');
    await writeFile(file, LAB_BODY);
    const env = { ANYCDN_ORIGIN: `http://${ORIGIN_ADDRESS}:${ORIGIN_PORT}`, ANYCDN_PUBLISH_TOKEN: PUBLISH_TOKEN };
    // Not spawnSync: that held this process's event loop for the whole upload. 2 minutes: on a
    // loaded machine (load 19, the lab at nice 10) the upload was done but the CLI had not
    // exited 30 s after its start.
    await runCommand('ip', ['netns', 'exec', this.plan.origin.ns, process.execPath, CLI, 'upload', file, LAB_PATH.slice(1)], 120_000, env).catch((err: Error) => {
      throw new Error(`upload to the lab origin failed: ${err.message}`);
    });
  }

  private async startRouter(router: LabRouter): Promise<void> {
    const dir = routerFolder(this.runDir, router);
    const socket = join(dir, 'bird.ctl');
    const { daemon: bird } = await this.daemon(`${router.name}/bird`, router.ns, this.bird, ['-f', '-c', join(dir, 'bird.conf'), '-s', socket, '-P', join(dir, 'bird.pid')]);
    await waitForSocket(bird, socket);
    this.routers.set(router.name, { router, bird, control: new BirdControl(socket, { timeoutMs: 5000 }) });
  }

  pop(name: string): PopNode {
    const node = this.pops.get(name);
    if (node === undefined) throw new Error(`no PoP ${name} in the lab`);
    return node;
  }

  router(name: string): RouterNode {
    const node = this.routers.get(name);
    if (node === undefined) throw new Error(`no router ${name} in the lab`);
    return node;
  }

  /** Start a PoP's BIRD the way anycdn-bird.service does: withdrawn include first, then `bird -f`. */
  async startBird(popName: string): Promise<Daemon> {
    const node = this.pop(popName);
    if (node.bird?.running) throw new Error(`${popName}: BIRD is running (pid ${node.bird.pid})`);
    await copyFile(join(node.folder.config, 'announce.conf'), join(node.folder.state, 'announce.conf'));
    const socket = join(node.folder.run, 'bird.ctl');
    await rm(socket, { force: true });
    ({ daemon: node.bird } = await this.daemon(`${popName}/bird`, node.pop.ns, this.bird, ['-f', '-c', join(node.folder.config, 'bird.conf'), '-s', socket, '-P', join(node.folder.run, 'bird.pid')]));
    await waitForSocket(node.bird, socket);
    return node.bird;
  }

  /**
   * Start a PoP's edge (`anycdn edge` with its rendered edge.yaml); resolves once it listens,
   * with the time its "edge listening" line was logged.
   */
  async startEdge(popName: string): Promise<{ edge: Daemon; listeningAt: number }> {
    const node = this.pop(popName);
    if (node.edge?.running) throw new Error(`${popName}: the edge is running (pid ${node.edge.pid})`);
    const { daemon: edge, from } = await this.daemon(`${popName}/edge`, node.pop.ns, process.execPath, [node.cli, 'edge', '--config', join(node.folder.config, 'edge.yaml')]);
    node.edge = edge;
    const line = await waitForLog(edge, (l) => l['msg'] === 'edge listening', DAEMON_START_TIMEOUT_MS, from);
    return { edge, listeningAt: Date.parse(String(line['time'])) };
  }

  /** Start a PoP's agent (`anycdn bgp agent` with its rendered agent.yaml). */
  async startAgent(popName: string): Promise<Daemon> {
    const node = this.pop(popName);
    if (node.agent?.running) throw new Error(`${popName}: the agent is running (pid ${node.agent.pid})`);
    const { daemon: agent, from } = await this.daemon(`${popName}/agent`, node.pop.ns, process.execPath, [node.cli, 'bgp', 'agent', '--config', join(node.folder.config, 'agent.yaml')]);
    node.agent = agent;
    await waitForLog(agent, (l) => l['msg'] === 'agent started: withdrawn until the edge proves healthy', DAEMON_START_TIMEOUT_MS, from);
    return agent;
  }

  /**
   * Bring the lab back to where it started, whatever a scenario left: every process running and
   * thawed, the origin up, every client network routed to its nearest PoP, and nothing left to
   * happen (`steady`: no BFD session about to expire from a freeze).
   */
  async restore(timeoutMs = 30_000): Promise<void> {
    for (const node of this.pops.values()) this.thaw(node.pop.name);
    if (!this.origin?.running) await this.startOrigin();
    await Promise.all(
      [...this.pops.values()].map(async (node) => {
        if (!node.bird?.running) await this.startBird(node.pop.name);
        if (!node.edge?.running) await this.startEdge(node.pop.name);
        if (!node.agent?.running) await this.startAgent(node.pop.name);
      }),
    );
    await this.steady(timeoutMs);
  }

  /**
   * Install another release of anycdn beside the running one, as an upgrade would: this build's
   * `dist/` copied into the run folder (its `node_modules` linked, not copied). Returns the new
   * `anycdn` executable; `useRelease` makes a PoP start from it. The lab has only this build to
   * install, so a "new" release runs the same code from other files.
   */
  async installRelease(name: string): Promise<string> {
    if (!/^[a-z0-9-]{1,32}$/.test(name)) throw new Error(`release name ${JSON.stringify(name)}: letters, digits and -`);
    const dir = join(this.runDir, 'releases', name);
    await mkdir(dir, { recursive: true });
    await cp(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true, filter: (src) => !src.startsWith(join(ROOT, 'dist', 'test')) });
    await copyFile(join(ROOT, 'package.json'), join(dir, 'package.json'));
    await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    return join(dir, 'dist/src/cli/anycdn.cjs');
  }

  /** The PoP's edge and agent start from `cli` from now on (a release from installRelease). */
  useRelease(popName: string, cli: string): void {
    this.pop(popName).cli = cli;
  }

  /** GET /_cdn/healthz of a PoP's edge from inside its namespace, as its agent sees it. */
  async health(popName: string): Promise<{ status: number; body: string }> {
    const script = `require('node:http').get('http://127.0.0.1:${EDGE_PORT}/_cdn/healthz', (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body: b }))); }).on('error', (e) => console.log(JSON.stringify({ status: 0, body: e.code })));`;
    const { stdout } = await runCommand('ip', ['netns', 'exec', this.pop(popName).pop.ns, process.execPath, '-e', script], 15_000);
    return JSON.parse(stdout) as { status: number; body: string };
  }

  /** Byte offset of a daemon's log now: pass it to `waitForLog` to see only what comes next. */
  logMark(daemon: Daemon): Promise<number> {
    return sizeOf(daemon.spec.log);
  }

  /** A hung host: every process of the PoP stopped (SIGSTOP), its kernel still up. */
  freeze(popName: string): void {
    const node = this.pop(popName);
    for (const d of [node.bird, node.agent, node.edge]) d?.signal('SIGSTOP');
    this.frozen.add(popName);
    this.note(`${popName} frozen`);
  }

  thaw(popName: string): void {
    const node = this.pop(popName);
    for (const d of [node.bird, node.agent, node.edge]) d?.signal('SIGCONT');
    if (this.frozen.delete(popName)) this.note(`${popName} thawed`);
  }

  /** What the PoP's announce include says (the agent's decision as BIRD reads it). */
  announceState(popName: string): Promise<AnnounceState | undefined> {
    return readAnnounceFile(join(this.pop(popName).folder.state, 'announce.conf'));
  }

  /** One command on a PoP's or a router's control socket; the reply's text, or an error for an error code. */
  async birdCommand(name: string, command: string): Promise<string> {
    const control = this.pops.get(name)?.control ?? this.router(name).control;
    const reply = await control.command(command);
    if (reply.code >= 8000) throw new Error(`${name}: ${command}: ${reply.code} ${replyText(reply)}`);
    return replyText(reply);
  }

  /** The PoPs a router has a path to the anycast prefix from, best first; [] when it has none. */
  async pathsAt(routerName: string): Promise<string[]> {
    const reply = await this.router(routerName).control.command(`show route for ${ANYCAST_ADDRESS}`);
    if (reply.code === 8001) return []; // Network not found: no route at all
    if (reply.code >= 8000) throw new Error(`${routerName}: show route: ${reply.code} ${replyText(reply)}`);
    const paths: { pop: string; best: boolean }[] = [];
    for (const { text } of reply.lines) {
      const m = /\[(lab_[A-Za-z0-9_]+) [^\]]*\]\s*(\*)?/.exec(text);
      if (m === null) continue;
      const pop = this.plan.pops.find((p) => routerPeerProtocol(p.name) === m[1]);
      if (pop !== undefined) paths.push({ pop: pop.name, best: m[2] === '*' });
    }
    return [...paths.filter((p) => p.best), ...paths.filter((p) => !p.best)].map((p) => p.pop);
  }

  /** Wait until every router has a path from every PoP whose agent should announce, and prefers its nearest. */
  async converged(timeoutMs = 15_000, withdrawn: string[] = []): Promise<void> {
    await waitFor(`every router routed to its nearest PoP${withdrawn.length > 0 ? ` (${withdrawn.join(', ')} withdrawn)` : ''}`, async () => ((await this.misrouted(withdrawn)) === undefined ? true : undefined), timeoutMs, 50);
  }

  /** The first router whose paths are not what they should be, described; undefined when none. */
  private async misrouted(withdrawn: string[] = []): Promise<string | undefined> {
    for (const client of this.plan.clients) {
      const paths = await this.pathsAt(client.router);
      const expected = client.preference.filter((p) => !withdrawn.includes(p));
      if (paths[0] !== expected[0] || paths.length !== expected.length) return `${client.router} has [${paths.join(', ')}], not [${expected.join(', ')}]`;
    }
    return undefined;
  }

  /**
   * Wait until the lab is at rest, as a scenario must find it: converged, and every router's BFD
   * session with every PoP Up at both ends. Routes alone can look right while a router's session
   * is Up on a PoP session that no longer exists (after a freeze, bfd-sessions.ts): it expires
   * seconds later and takes that PoP's BGP session, and its path, with it.
   */
  async steady(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      'every router routed to its nearest PoP, every BFD session Up at both ends',
      async () => {
        const misrouted = await this.misrouted();
        if (misrouted !== undefined) throw new Error(misrouted);
        if (!this.timings.bfd.enabled) return true;
        const notUp = bfdNotUp(this.plan, await this.bfdSessions([...this.routers.keys()]), await this.bfdSessions([...this.pops.keys()]));
        if (notUp.length > 0) throw new Error(`BFD ${notUp.join('; ')}`);
        return true;
      },
      timeoutMs,
      50,
    );
  }

  /** Each named daemon's BFD sessions (`show bfd sessions`), by name. */
  private async bfdSessions(names: string[]): Promise<Map<string, Map<string, BfdState>>> {
    return new Map(
      await Promise.all(
        names.map(async (name) => {
          const reply = await (this.pops.get(name)?.control ?? this.router(name).control).command('show bfd sessions');
          if (reply.code >= 8000) throw new Error(`${name}: show bfd sessions: ${reply.code} ${replyText(reply)}`);
          return [name, parseBfdSessions(reply.lines.map((l) => l.text))] as const;
        }),
      ),
    );
  }

  /**
   * Start a client in its network: requests to the anycast address until stopped (by the
   * scenario, by `stopClients` after it, by `stop` at the latest).
   */
  startClient(name: string, options: ClientOptions = {}): ClientRun {
    const client = this.plan.clients.find((c) => c.name === name);
    if (client === undefined) throw new Error(`no client ${name} in the lab`);
    const log = join(this.runDir, 'logs', `client-${client.name}-${++this.clientCount}.jsonl`);
    const run = startClient(client, { log, ...options });
    this.clients.add(run);
    return run;
  }

  /**
   * Stop every client still running: what a scenario that failed half-way left sending. Its
   * requests would load the machine and keep going through the next scenario's events.
   */
  async stopClients(): Promise<void> {
    const runs = [...this.clients];
    this.clients.clear();
    // stop() is idempotent: the clients a scenario stopped itself are only waited for again.
    await Promise.all(runs.map((run) => run.stop().catch(() => undefined)));
  }

  /** Wait until a client has had a successful answer from `by` to a request sent after `after`. */
  answeredBy(run: ClientRun, by: string, after: number, timeoutMs: number): Promise<ClientRecord> {
    return answeredBy(run, by, after, timeoutMs);
  }

  servedBy(popName: string): string {
    return servedBy(this.pop(popName).pop);
  }

  /**
   * End every process and remove the namespaces and the run folder (deploy/lab/down);
   * `keepLogsIn`: copy the daemons' logs and configs there first (a failed test's evidence).
   */
  async stop(keepLogsIn?: string): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.stopClients();
    for (const node of this.pops.values()) node.control.close();
    for (const node of this.routers.values()) node.control.close();
    const daemons = [this.origin, ...[...this.pops.values()].flatMap((n) => [n.edge, n.agent, n.bird]), ...[...this.routers.values()].map((r) => r.bird)];
    for (const d of daemons) if (d?.running) d.signal('SIGKILL');
    await Promise.all(daemons.map((d) => (d === undefined ? undefined : Promise.race([d.exited, new Promise((r) => setTimeout(r, 5000))]))));
    if (keepLogsIn !== undefined) {
      await mkdir(keepLogsIn, { recursive: true });
      await cp(this.runDir, keepLogsIn, { recursive: true, filter: (src) => !/\/(cache|data)(\/|$)/.test(src) && !src.endsWith('.ctl') }).catch(() => undefined);
    }
    await teardown(this.plan.id);
  }
}

async function waitForSocket(daemon: Daemon, socket: string): Promise<void> {
  await waitFor(
    `${daemon.spec.name}: control socket ${socket}`,
    async () => {
      if (!daemon.running) throw new Error(`${daemon.spec.name} ended: ${await daemon.logTail()}`);
      return (await stat(socket).then((s) => s.isSocket(), () => false)) ? true : undefined;
    },
    DAEMON_START_TIMEOUT_MS,
    25,
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await daemon.logTail()}`);
  });
}
