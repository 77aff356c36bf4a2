/**
 * An edge node on several cores (`workers: N` with N > 1). Node answers requests on one core per
 * process, so the node runs N worker processes that share the listening socket (node:cluster).
 * The primary process owns the disk cache; each worker writes it too, as a co-writer
 * (src/blob/disk-blob-store.ts: its own segments, one shared LMDB index).
 *
 *   clients → worker 1..N (memory tier over the disk, coalescing) → upstream
 *                 └── primary: the disk's owner (eviction, recency, background check), the
 *                     purge stream and cursor, the coalescing of fetches across workers
 *
 * A worker answers hits from its memory or the disk, and fetches a miss from upstream itself,
 * storing it on the disk, as a single process does: a miss costs no hop through another process.
 * Concurrent misses for one key in different workers are still one upstream request: a worker's
 * leader of a key asks the primary whether another worker fetches it already, and if so waits
 * for it and reads its copy from the disk (edge/cluster-flights.ts). A worker's co-writer id is
 * its slot (1…N), which its replacement takes after it dies (the dead one's lock is stale then).
 *
 * The primary also runs a *shield*: a complete edge on an internal loopback port over the disk
 * it owns, no longer on the workers' miss path, kept for what the node does once (the purge
 * stream's subscriber and the purge cursor, applying purges to the disk, invalidations, the
 * metrics of the disk). Its port serves nobody but a debugging operator.
 *
 * Start: the primary forks the workers as soon as it has read the config file, before it validates
 * it (the validator's code alone is a fifth of a second of CPU); a worker takes the config (parsed
 * and validated once, by the primary) and the ticket key from its primary. The first worker is
 * forked alone; the other workers are forked once the config is valid. A start is CPU-bound: on
 * two cores, the workers loading together beside the primary's validation made the first answer
 * wait for all of it. Once loaded, a worker opens the disk cache as a co-writer, before its owner
 * on a restart (src/blob/disk-open.ts says when a folder allows it), or, on a first start, asks
 * for the owner's open ('anycdn:disk-wanted'), which the primary does at once (creating the
 * cache), and opens it after; then it listens. In every open of the cache, the owner's included,
 * the open of its index runs while the node's other processes hold their commits (exclusiveOpen:
 * LMDB as lmdb-js builds it loses a commit made beside another process's open). The shield loads
 * and starts once every worker listens.
 * A config that fails validation stops the forked workers before the command
 * fails with its error.
 *
 * The primary relays between processes: an invalidation in any process reaches all of them; a
 * purge (from the origin's stream, which the shield follows, or a worker's POST /_cdn/purge) is
 * applied to the disk in the shield, then in every worker (its memory, and what it committed to
 * the disk meanwhile; its fetches under way are retired, edge/purge/purge-apply.ts), and counts as
 * applied (and is acknowledged) only once every worker has confirmed it (one that does not within
 * PURGE_CONFIRM_MS is replaced); and /_cdn/metrics, answered by whichever worker takes the
 * request, is the sum over all processes (label `tier`: worker or shield). Each worker reports its
 * hits in batches (`anycdn:reads`, at most one a second unless 4096 are waiting), which the
 * primary notes as reads of the disk's entries, so eviction keeps what the workers read
 * (src/blob/read-hashes.ts). A worker whose writes reach into the room the primary keeps free on
 * the disk for co-writers asks for more (`anycdn:room`), and the primary evicts at once: the disk
 * is not polled for it. A worker that dies is replaced; on SIGTERM every worker drains
 * (health 503, `Connection: close`) and exits, then the shield closes.
 *
 * Access log: each worker appends its own lines to the file (opened with O_APPEND, each batch one
 * write, so lines of different workers never interleave). Sending them to the primary instead was
 * measured (2026-12-06, 2-core VM shared with other work): 260 µs of the worker's CPU to send a
 * 64 KiB batch over IPC and 240 µs of the primary's to receive and write it, against 48 µs for the
 * worker to write it itself — about 1.4 + 1.3 µs against 0.26 µs a line, and the primary's one
 * core would carry every worker's lines. The shield logs nothing. On SIGUSR1 the primary tells
 * every worker to reopen the file.
 *
 * This file is the primary's side; a worker's is edge/cluster-worker.ts, and the messages between
 * them are edge/cluster-protocol.ts's.
 */
import cluster, { type Worker } from 'node:cluster';
import { setTimeout as sleep } from 'node:timers/promises';
import { CdnError } from '../src/errors.js';
import { lazy } from '../src/lazy.js';
import type { Logger } from '../src/log.js';
import type { DiskBlobStore } from '../src/blob/disk-blob-store.js';
import type { IndexCommits } from '../src/blob/disk-options.js';
import { FlightLeases } from './cluster-flights.js';
import { DISK_HELD_MAX_MS, DISK_HOLD_MS, DISK_HOLD_WARN_MS, DISK_KILL_WAIT_MS, DISK_OPEN_MS, exitOf, holdWithin, MAX_WORKERS, METRICS_WAIT_MS, Pending, PURGE_CONFIRM_MS, unlessExited, WORKER_ENV, type ClusterMessage, type FlightsAnswered, type MetricsJson } from './cluster-protocol.js';
import type { EdgeConfig } from './config.js';
import type { PurgePeers } from './purge/purge-node.js';
import type { EdgeServer } from './server.js';

// Loaded after the workers are forked, so their loading overlaps the primary's.
const edgeServer = lazy(() => import('./server.js'));
const promParts = lazy(() => import('../src/prom-parts.js'));
// (node:tls with it: not needed before the fork, nor at all without `tls`.)
const ticketKeys = lazy(() => import('../src/serve/ticket-keys.js'));
// Loaded once the workers listen (or one asks for the disk's owner first), before the shield.
const diskBlobStore = lazy(() => import('../src/blob/disk-blob-store.js'));
const readHashes = lazy(() => import('../src/blob/read-hashes.js'));
const cacheKeys = lazy(() => import('./cache-keys.js'));

/** A replacement for a dead worker starts after this pause, so a crash loop costs little. */
const RESTART_DELAY_MS = 1_000;
/** The longest pause before another try at replacing a worker whose replacements fail to start. */
const RESTART_MAX_DELAY_MS = 30_000;

export interface EdgeNode {
  /** The public address the workers listen on. */
  url: string;
  /** The workers' HTTPS address (`tls`). */
  https?: string | undefined;
  /** Every worker reopens its access log file (after a rotation). */
  reopenLogs(): void;
  /** Every worker reads its certificates and ticket keys again (SIGHUP). */
  reloadTls(): void;
  /** Drain every worker (health 503 for the drain period), stop them, then close the shield (and the disk cache). */
  drain(): Promise<void>;
}

/** An edge cluster whose first worker is forked and loads its code while its config is validated. */
export interface ForkedEdgeCluster {
  /** Gives the workers the validated config (forking all but the first), opens the disk cache, starts the shield; resolves once every worker listens and the shield is up. */
  start(config: EdgeConfig, logger: Logger): Promise<EdgeNode>;
  /** The node does not start (its config was refused, or a signal came first): stops the workers; resolves once they have exited. */
  abandon(): Promise<void>;
}

/**
 * How many workers a config file asks for, read from its unvalidated data so that they can be
 * forked before the validation (src/cli/edge-command.ts): `workers` when it is a value the schema
 * accepts (edge/config.ts), else 1 — none forked early, and validation names what is wrong.
 */
export function workersAsked(raw: unknown): number {
  const workers = raw !== null && typeof raw === 'object' ? (raw as { workers?: unknown }).workers : undefined;
  return typeof workers === 'number' && Number.isInteger(workers) && workers >= 1 && workers <= MAX_WORKERS ? workers : 1;
}

/**
 * Forks the first of `count` workers at once, the others in `start`, once the config is valid.
 * Each asks for its start as soon as it runs; the answer (the config, its writer id) waits for
 * `start`.
 */
export function forkEdgeCluster(count: number): ForkedEdgeCluster {
  // Given by start(); every use below comes after it (a worker asks for nothing else before its start).
  let config!: EdgeConfig;
  let logger!: Logger;
  let ticketKey: string | undefined;
  let configured = (): void => undefined;
  const given = new Promise<void>((resolve) => (configured = resolve));
  const workers = new Set<Worker>();
  const broadcast = (message: ClusterMessage, except?: Worker): void => {
    for (const w of workers) if (w !== except && w.isConnected()) w.send(message);
  };
  /**
   * Workers that take purges (they said so before they started listening, so none can hold an
   * object a purge missed), each with a promise that resolves when it exits.
   */
  const members = new Map<Worker, Promise<true>>();
  const confirming = new Pending<true>();
  // Purges reach every worker's memory before the node counts them applied (and acknowledges them).
  const purgePeers: PurgePeers = {
    apply: async (purges) => {
      await Promise.all(
        [...members].map(async ([w, gone]) => {
          const confirmed = await Promise.race([confirming.ask((id) => w.send({ type: 'anycdn:purge', id, purges } satisfies ClusterMessage), PURGE_CONFIRM_MS), gone]);
          if (confirmed === undefined && !w.isDead()) {
            logger.error({ pid: w.process.pid, waitedMs: PURGE_CONFIRM_MS }, 'edge worker did not confirm a purge; stopping it (it is replaced)');
            w.kill('SIGKILL');
          }
        }),
      );
    },
    watermarks: (watermarks) => {
      for (const w of members.keys()) if (w.isConnected()) w.send({ type: 'anycdn:purge-watermarks', watermarks } satisfies ClusterMessage);
    },
  };
  /** Set once the shield listens; what workers ask before (but their start, and their fetches) is answered then. */
  let shield: EdgeServer | undefined;
  /** The disk cache, which this process owns (opened once the workers listen, or one asks for it): workers open it as co-writers, before or after. */
  let disk: DiskBlobStore | undefined;
  /** A worker asked for the owner's open, which it waits for (a first start: edge/cluster-worker.ts). */
  let ownerWanted = (): void => undefined;
  const wanted = new Promise<void>((resolve) => (ownerWanted = resolve));
  /** Notes a worker's batch of reads in the disk store (set with `shield`). */
  let noteReads: ((hashes: unknown) => void) | undefined;
  let shieldListening = (): void => undefined;
  const shieldUp = new Promise<void>((resolve) => (shieldListening = resolve));
  /** Each worker's slot (0…count-1): its co-writer id is slot + 1, and its replacement takes the same. */
  const slots = new Map<Worker, number>();
  /** Which worker fetches each key a worker asked about (edge/cluster-flights.ts). */
  const leases = new FlightLeases<Worker>();
  const answer = (answers: Map<Worker, FlightsAnswered>): void => {
    for (const [w, answered] of answers) if (w.isConnected()) w.send({ type: 'anycdn:flights-answer', ...answered } satisfies ClusterMessage);
  };
  let draining = false;
  const collecting = new Pending<MetricsJson>();
  /** This process's commits to the disk cache's index, once it has opened it (held while another process opens it). */
  let commits: IndexCommits | undefined;
  /** The opens of the disk cache's index, one after the other (exclusiveOpen). */
  let opening: Promise<unknown> = Promise.resolve();
  const held = new Pending<true>();
  const opened = new Pending<true>();
  /** Workers that asked to open the disk cache (and so answer holds): the others have no commits to hold. */
  const diskUsers = new Set<Worker>();

  /**
   * Runs `open`, an open of the disk cache's index (this process's, or worker `opener`'s: its
   * LMDB environment and first commit, DiskBlobStoreOptions.exclusiveEnvOpen), once every
   * other process that may commit to it holds its commits, and releases them after: the LMDB
   * lmdb-js builds loses another process's commit made while a process opens it
   * (SharedIndexState.hold). One open at a time. A worker late to hold is warned about at
   * DISK_HOLD_WARN_MS and stopped (and replaced) at DISK_HOLD_MS, so no open waits longer, nor
   * runs beside its commits.
   */
  function exclusiveOpen<T>(opener: Worker | undefined, open: () => Promise<T>): Promise<T> {
    const run = opening.then(async () => {
      // An opener gone before its turn opens nothing: nobody is held for it.
      const releases = opener?.isConnected() === false ? [] : await holdOthers(opener);
      const since = performance.now();
      try {
        return await open();
      } finally {
        for (const release of releases) release();
        // How long the node's commits waited for it: what an operator looks at when writes stall.
        logger.debug({ pid: opener?.process.pid ?? process.pid, held: releases.length, heldMs: Math.round(performance.now() - since) }, 'disk cache index opened while the other processes held their commits');
      }
    });
    opening = run.catch(() => undefined);
    return run;
  }

  /** Has every process but `opener` hold its disk commits; resolves with their releases. */
  async function holdOthers(opener: Worker | undefined): Promise<(() => void)[]> {
    const others = [...diskUsers].filter((w) => w !== opener && w.isConnected());
    return Promise.all([...(commits === undefined ? [] : [holdWithin(commits, DISK_HELD_MAX_MS)]), ...others.map(holdOf)]);
  }

  /**
   * Has worker `w` hold its disk commits; resolves with its release. A worker late to answer is
   * most likely waiting on a slow fsync: warned about, and waited for. One that has not answered
   * in DISK_HOLD_MS is stopped rather than opened beside: a commit it made during the open would
   * be lost, where a stopped worker loses nothing committed and is replaced.
   */
  async function holdOf(w: Worker): Promise<() => void> {
    let id = -1;
    const hold = held.ask((asked) => w.send({ type: 'anycdn:disk-hold', id: (id = asked) } satisfies ClusterMessage), DISK_HOLD_MS);
    const late = setTimeout(() => logger.warn({ pid: w.process.pid, waitedMs: DISK_HOLD_WARN_MS }, 'edge worker has not held its disk commits for an open yet; waiting for it'), DISK_HOLD_WARN_MS);
    const answer = await unlessExited(w, hold).finally(() => clearTimeout(late));
    if (answer === undefined && !w.isDead()) {
      logger.error({ pid: w.process.pid, waitedMs: DISK_HOLD_MS }, 'edge worker did not hold its disk commits for an open; stopping it (it is replaced)');
      w.kill('SIGKILL');
      await unlessExited(w, sleep(DISK_KILL_WAIT_MS, undefined, { ref: false }));
    }
    return () => void (w.isConnected() && w.send({ type: 'anycdn:disk-release', id } satisfies ClusterMessage));
  }

  /** Worker `from`'s open of the disk cache: told to go, done when it says so, or exits, or DISK_OPEN_MS passed. */
  async function workerOpen(from: Worker): Promise<void> {
    if (!from.isConnected()) return;
    await unlessExited(from, opened.ask((id) => from.send({ type: 'anycdn:disk-open-go', id } satisfies ClusterMessage), DISK_OPEN_MS));
  }

  async function clusterMetrics(shieldServer: EdgeServer): Promise<string> {
    const fromWorkers = [...workers].map((w) => collecting.ask((id) => w.send({ type: 'anycdn:metrics-collect', id } satisfies ClusterMessage), METRICS_WAIT_MS));
    const all = [await shieldServer.metrics.registry.getMetricsAsJSON(), ...(await Promise.all(fromWorkers))];
    const AggregatorRegistry = (await promParts()).aggregatorRegistry();
    return AggregatorRegistry.aggregate(all.filter((j): j is MetricsJson => j !== undefined)).metrics();
  }

  function onMessage(from: Worker, message: ClusterMessage): void {
    // A worker's fetches: answered at once, whatever else the primary is doing.
    if (message.type === 'anycdn:flights') {
      answer(leases.receive(from, message));
      return;
    }
    if (message.type === 'anycdn:start-request') {
      // Asked as soon as the worker runs, which may be before the config is validated.
      void given.then(() => {
        if (!from.isConnected()) return;
        from.send({ type: 'anycdn:start', config, writer: slots.get(from)! + 1, diskOwned: disk !== undefined, ticketKey } satisfies ClusterMessage);
      });
      return;
    }
    if (message.type === 'anycdn:disk-wanted') {
      ownerWanted();
      return;
    }
    if (message.type === 'anycdn:disk-open') {
      diskUsers.add(from);
      void exclusiveOpen(from, () => workerOpen(from));
      return;
    }
    if (message.type === 'anycdn:disk-held' || message.type === 'anycdn:disk-open-done') {
      (message.type === 'anycdn:disk-held' ? held : opened).answer(message.id, true);
      return;
    }
    if (message.type === 'anycdn:room') {
      // At once, shield or not: a worker that waits for room refuses what it fetched after 250 ms.
      void disk?.makeRoomForWriters();
      return;
    }
    if (message.type === 'anycdn:purge-member') {
      // From now on every purge waits for this worker's confirmation: taken at once, so no purge
      // the shield applies as it starts can miss what this worker reads from the disk meanwhile.
      members.set(from, exitOf(from).then(() => true as const));
      void shieldUp.then(() => from.isConnected() && from.send({ type: 'anycdn:purge-watermarks', watermarks: shield!.purges.node!.watermarks() } satisfies ClusterMessage));
      return;
    }
    if (shield === undefined) {
      // A worker that serves disk hits while the shield starts: its other business waits for the shield.
      void shieldUp.then(() => onMessage(from, message));
      return;
    }
    switch (message.type) {
      case 'anycdn:invalidate':
        shield.pipeline.invalidation.invalidate(message.primary).catch((err: unknown) => logger.warn({ err, primary: message.primary }, 'shield invalidation failed'));
        broadcast(message, from);
        return;
      case 'anycdn:reads':
        noteReads?.(message.hashes);
        return;
      case 'anycdn:metrics-json':
        collecting.answer(message.id, message.json);
        return;
      case 'anycdn:purge-applied':
        confirming.answer(message.id, true);
        return;
      case 'anycdn:purge-local':
        // A worker's POST /_cdn/purge: the whole node applies it (the shield's disk, every worker).
        shield.purges.node!.apply([message.purge], 'local').then(
          (count) => from.isConnected() && from.send({ type: 'anycdn:purge-local-done', id: message.id, count } satisfies ClusterMessage),
          (err: unknown) => {
            logger.error({ err }, 'edge-local purge failed');
            if (from.isConnected()) from.send({ type: 'anycdn:purge-local-done', id: message.id, error: 'the purge could not be applied' } satisfies ClusterMessage);
          },
        );
        return;
      case 'anycdn:metrics-request':
        clusterMetrics(shield).then(
          (text) => from.isConnected() && from.send({ type: 'anycdn:metrics-text', id: message.id, text } satisfies ClusterMessage),
          (err: unknown) => logger.warn({ err }, 'collecting cluster metrics failed'),
        );
        return;
      default:
        return;
    }
  }

  /**
   * Starts a worker in `slot` after `delayMs`, and another after it, twice as late (up to
   * RESTART_MAX_DELAY_MS), when it fails to start (it could not open the disk cache in time, say):
   * the node does not stay a worker short, nor spend its cores on a start that keeps failing.
   */
  function replace(slot: number, delayMs = RESTART_DELAY_MS): void {
    setTimeout(() => {
      if (draining) return;
      fork(slot).then(
        () => logger.info({ workers: workers.size }, 'edge worker replaced'),
        (err: unknown) => {
          logger.error({ err, retryInMs: Math.min(2 * delayMs, RESTART_MAX_DELAY_MS) }, 'replacement edge worker failed; starting another');
          replace(slot, Math.min(2 * delayMs, RESTART_MAX_DELAY_MS));
        },
      );
    }, delayMs).unref();
  }

  /** Starts a worker; resolves with its public URLs once it listens, rejects if it exits first. */
  function fork(slot: number): Promise<{ url: string; https?: string | undefined }> {
    // (A worker that comes up while the node drains missed the drain message: it is told again.)
    const worker = cluster.fork({ [WORKER_ENV]: '1' });
    workers.add(worker);
    slots.set(worker, slot);
    worker.on('message', (m: ClusterMessage) => onMessage(worker, m));
    return new Promise((resolve, reject) => {
      let listening = false;
      worker.on('message', (m: ClusterMessage) => {
        if (m.type !== 'anycdn:listening') return;
        listening = true;
        if (draining) worker.send({ type: 'anycdn:drain' } satisfies ClusterMessage);
        resolve({ url: m.url, https: m.https });
      });
      worker.once('exit', (code, signal) => {
        workers.delete(worker);
        diskUsers.delete(worker);
        members.delete(worker);
        slots.delete(worker);
        // Its fetches end with it: their followers look for a copy, and fetch themselves.
        answer(leases.leave(worker));
        if (!listening) {
          reject(new CdnError('worker_failed', 'internal', `edge worker ${worker.process.pid} exited (${signal ?? code}) before it listened`));
          return;
        }
        if (draining) return;
        logger.error({ pid: worker.process.pid, code, signal }, 'edge worker exited; starting another');
        replace(slot);
      });
    });
  }

  // The first worker first: loading its code is most of a process's start, and it loads its code
  // while this process validates the config. It asks for its start (the config, its writer id)
  // as soon as it runs, opens the disk once loaded (before its owner when it may), and listens:
  // the node answers from then on. The others are forked once the config is valid (start), when
  // this process's own loading is done: a start is CPU-bound, and forked together, the workers
  // shared the cores with this process's validation, so the node's first answer waited for all
  // of it (on two cores, a start with `workers: 2` took two thirds more than one process's).
  const firstListening = fork(0);
  firstListening.catch(() => undefined); // awaited in start (or the node is abandoned)

  async function abandon(): Promise<void> {
    draining = true;
    const exits = [...workers].map(exitOf);
    for (const w of workers) w.kill('SIGKILL');
    await Promise.all(exits);
  }

  async function start(validated: EdgeConfig, nodeLogger: Logger): Promise<EdgeNode> {
    config = validated;
    logger = nodeLogger;
    // Without a key file, one random ticket key for the node, made here and handed to every worker
    // (a replacement too). With a file, every worker reads (and watches) it itself.
    ticketKey = config.tls !== undefined && config.tls.ticketKeyFile === undefined ? (await ticketKeys()).randomTicketKey().toString('base64') : undefined;
    configured();
    const allListening = Promise.all([firstListening, ...Array.from({ length: count - 1 }, (_, i) => fork(i + 1))]);
    allListening.catch(() => undefined); // awaited below, once the shield is up (or has failed)
    let url: string;
    let https: string | undefined;
    try {
      // The disk cache as its owner once the first worker listens (it opened it as a co-writer
      // before), or at once when a worker cannot open it before its owner (a first start creates
      // it). Then, once every worker listens, the shield, which serves no worker's request.
      await Promise.race([firstListening, wanted]);
      const { DiskBlobStore } = await diskBlobStore();
      const pathOf = (await cacheKeys()).purgePathOfKey;
      disk = await DiskBlobStore.open({
        dir: config.cacheDir,
        maxBytes: config.disk.maxBytes,
        maxEntrySize: config.disk.maxEntrySize,
        pathOf,
        exclusiveEnvOpen: (open) =>
          exclusiveOpen(undefined, async () => {
            const opened = open();
            commits = opened;
            return opened;
          }),
      });
      broadcast({ type: 'anycdn:disk-owned' });
      await allListening;
      const [{ startEdge }, { readHashesOf }] = await Promise.all([edgeServer(), readHashes()]);
      shield = await startEdge({ ...config, listen: { host: '127.0.0.1', port: 0 } }, logger.child({ tier: 'shield' }), {
        disk,
        shield: true,
        metricLabels: { tier: 'shield' },
        onInvalidate: (primary) => broadcast({ type: 'anycdn:invalidate', primary }),
        purgePeers,
      });
      // The workers' reads count for the disk's eviction, as its owner's own would; a batch that is not one is ignored.
      const owned = disk;
      noteReads = (value) => {
        const hashes = readHashesOf(value);
        if (hashes !== undefined) owned.noteReadHashes(hashes);
      };
      shieldListening();
      const urls = await allListening;
      url = urls[0]!.url;
      https = urls[0]!.https;
    } catch (err) {
      await Promise.all([abandon(), shield === undefined ? disk?.close() : shield.close(1_000)]);
      throw err;
    }
    const started = shield;
    logger.info({ url, https, workers: config.workers, shield: started.url, upstream: config.upstream }, 'edge listening');

    return {
      url,
      https,
      reopenLogs() {
        broadcast({ type: 'anycdn:reopen-logs' });
      },
      reloadTls() {
        broadcast({ type: 'anycdn:reload-tls' });
      },
      async drain() {
        draining = true;
        logger.info({ periodMs: config.drain, workers: workers.size }, 'draining');
        const exits = [...workers].map(exitOf);
        broadcast({ type: 'anycdn:drain' });
        // Workers finish in-flight responses within their own 10 s grace; past that, they are stopped.
        const deadline = setTimeout(() => {
          for (const w of workers) w.kill('SIGKILL');
        }, config.drain + 15_000);
        await Promise.all(exits);
        clearTimeout(deadline);
        await started.close(10_000);
      },
    };
  }

  return { start, abandon };
}

