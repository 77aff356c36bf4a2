/**
 * A worker process of an edge node (edge/cluster.ts forks it): it asks its primary for the node's
 * config, opens the node's disk cache as a co-writer (before its owner, the primary, has it open
 * when the folder allows that; else once the primary owns it), answers from its
 * memory and the disk, fetches misses from upstream itself (coalesced with the other workers
 * through the primary: edge/cluster-flights.ts) and stores them, reports its hits for the disk's
 * eviction, applies and confirms purges, and drains when the primary says so.
 */
import cluster from 'node:cluster';
import type { EventEmitter } from 'node:events';
import { deepFreeze } from '../src/config/frozen.js';
import { CdnError } from '../src/errors.js';
import { lazy } from '../src/lazy.js';
import type { Logger } from '../src/log.js';
import type { Purge } from '../src/purge/purge-request.js';
import type { IndexCommits } from '../src/blob/disk-options.js';
import { IpcFlights } from './cluster-flights.js';
import { DISK_HELD_MAX_MS, DISK_TURN_MS, holdWithin, METRICS_WAIT_MS, Pending, PURGE_CONFIRM_MS, type ClusterMessage, type WorkerStart } from './cluster-protocol.js';
import type { EdgeConfig } from './config.js';
import type { PurgeCount } from './purge/purge-apply.js';
import type { EdgeServer } from './server.js';

const edgeServer = lazy(() => import('./server.js'));
// Loaded with the server already (its store): only for the check that the store is one.
const workerBlobStore = lazy(() => import('../src/blob/worker-blob-store.js'));

/**
 * The worker's start, asked of its primary, and the word that the primary has the disk cache open
 * (with the start, or later). The config is the primary's, parsed and validated once for the
 * node: a worker reads no config file (a replacement started after the file was edited runs what
 * the node runs). The primary may say the disk is owned before it answers the start (it opened
 * the disk while this worker's request waited in its queue): the start is still listened for
 * then. `channel` is the process's IPC (a test's emitter).
 */
export function requestStart(send: (message: ClusterMessage) => void, channel: EventEmitter = process): { start: Promise<WorkerStart>; diskOwned: Promise<void> } {
  let started = (_start: WorkerStart): void => undefined;
  let gone = (_err: Error): void => undefined;
  let owned = (): void => undefined;
  const start = new Promise<WorkerStart>((resolve, reject) => ((started = resolve), (gone = reject)));
  const diskOwned = new Promise<void>((resolve) => (owned = resolve));
  let startSeen = false;
  let ownedSeen = false;
  const onMessage = (m: ClusterMessage): void => {
    if (m.type === 'anycdn:start') {
      startSeen = true;
      ownedSeen ||= m.diskOwned;
      started({ config: deepFreeze(m.config), writer: m.writer, diskOwned: ownedSeen, ticketKey: m.ticketKey });
    } else if (m.type === 'anycdn:disk-owned') ownedSeen = true;
    else return;
    if (ownedSeen) owned();
    if (startSeen && ownedSeen) {
      channel.off('message', onMessage);
      channel.off('disconnect', onGone);
    }
  };
  const onGone = (): void => {
    channel.off('message', onMessage);
    gone(new CdnError('worker_orphaned', 'internal', 'the edge primary went away before this worker started'));
  };
  channel.on('message', onMessage);
  channel.once('disconnect', onGone);
  send({ type: 'anycdn:start-request' });
  return { start, diskOwned };
}

/**
 * This worker's part in the node's opens of the disk cache's index (edge/cluster.ts
 * exclusiveOpen): it holds its commits while another process opens the index (asked from its
 * first open on; with no index open yet, there is nothing to hold), and runs its own open of the
 * index when the primary says go.
 */
function diskOpens(send: (message: ClusterMessage) => void): { exclusiveOpen: <T extends IndexCommits>(open: () => T) => Promise<T> } {
  let commits: IndexCommits | undefined;
  const holds = new Map<number, () => void>();
  let go: ((id: number) => void) | undefined;
  process.on('message', (m: ClusterMessage) => {
    if (m.type === 'anycdn:disk-hold') {
      void holdWithin(commits, DISK_HELD_MAX_MS).then((release) => {
        holds.set(m.id, release);
        send({ type: 'anycdn:disk-held', id: m.id });
      });
    } else if (m.type === 'anycdn:disk-release') {
      holds.get(m.id)?.();
      holds.delete(m.id);
    } else if (m.type === 'anycdn:disk-open-go') {
      // A go that comes after this worker gave up its turn is answered at once: the others' holds end.
      if (go !== undefined) go(m.id);
      else send({ type: 'anycdn:disk-open-done', id: m.id });
    }
  });
  const exclusiveOpen = async <T extends IndexCommits>(open: () => T): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const id = await new Promise<number>((resolve, reject) => {
      go = resolve;
      timer = setTimeout(() => reject(new CdnError('disk_open_timeout', 'internal', `the edge primary gave no turn to open the disk cache in ${DISK_TURN_MS} ms`)), DISK_TURN_MS);
      send({ type: 'anycdn:disk-open' });
    }).finally(() => {
      clearTimeout(timer);
      go = undefined;
    });
    try {
      const opened = open();
      commits = opened;
      return opened;
    } finally {
      send({ type: 'anycdn:disk-open-done', id });
    }
  };
  return { exclusiveOpen };
}

/**
 * Runs this process as a cluster worker; resolves when it has drained and closed. `makeLogger`
 * makes its logger from the node's config, which comes from the primary.
 */
export async function runEdgeWorker(makeLogger: (config: EdgeConfig) => Promise<Logger>): Promise<void> {
  // Signals from a terminal reach the whole process group: the primary decides when workers stop.
  // Ignored from the start, so one that comes while this worker starts does not kill it either.
  const ignore = (): void => undefined;
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);
  const send = (message: ClusterMessage): void => {
    if (process.connected) process.send!(message);
  };
  const asked = requestStart(send);
  const opens = diskOpens(send);
  // Loading the code is most of the start (its failure surfaces where it is awaited).
  edgeServer().catch(() => undefined);
  const { config, writer, diskOwned, ticketKey } = await asked.start;
  const logger = await makeLogger(config);
  const summed = new Pending<string>();
  const metricsText = async (): Promise<string> => {
    const text = await summed.ask((id) => send({ type: 'anycdn:metrics-request', id }), METRICS_WAIT_MS * 2);
    if (text === undefined) throw new CdnError('metrics_unavailable', 'internal', 'the edge node did not sum its metrics in time', { status: 503 });
    return text;
  };
  const log = logger.child({ tier: 'worker', worker: cluster.worker?.id });
  const localPurges = new Pending<{ count?: PurgeCount; error?: string }>();
  const forwardLocalPurge = async (purge: Purge): Promise<PurgeCount> => {
    const done = await localPurges.ask((id) => send({ type: 'anycdn:purge-local', id, purge }), PURGE_CONFIRM_MS * 2);
    if (done?.count === undefined) throw new CdnError('purge_failed', 'internal', done?.error ?? 'the edge node did not apply the purge in time', { status: 503 });
    return done.count;
  };
  // Purges are taken from before the worker listens, so none can miss an object it holds: what
  // comes while it starts waits for its cache to exist (it is empty until it listens).
  let edge: EdgeServer | undefined;
  const early: ClusterMessage[] = [];
  const onPurgeMessage = (m: ClusterMessage): void => {
    if (m.type !== 'anycdn:purge' && m.type !== 'anycdn:purge-watermarks') return;
    if (edge === undefined) {
      early.push(m);
      return;
    }
    if (m.type === 'anycdn:purge-watermarks') {
      edge.pipeline.setPurgeWatermarks(m.watermarks);
      return;
    }
    // Issued together, in order, as the shield applies them; confirmed once all are done here.
    Promise.all(m.purges.map((p) => edge!.purges.applier.apply(p))).then(
      () => send({ type: 'anycdn:purge-applied', id: m.id }),
      (err: unknown) => log.error({ err }, 'applying a purge failed; the primary replaces this worker when it does not confirm'),
    );
  };
  process.on('message', onPurgeMessage);
  send({ type: 'anycdn:purge-member' });
  const { startEdge } = await edgeServer();
  // A follower waits for another worker's fetch at most as long as its own may take to begin and stream.
  const flights = new IpcFlights(send, config.timeouts.connect + config.timeouts.headers + config.timeouts.bodyIdle);
  process.on('message', (m: ClusterMessage) => void flights.onMessage(m));
  try {
    edge = await startEdge(config, log, {
      worker: { writer, beforeOwner: diskOwned ? undefined : { ownerPid: process.ppid, owned: asked.diskOwned, ask: () => send({ type: 'anycdn:disk-wanted' }) }, exclusiveOpen: opens.exclusiveOpen, flights },
      ticketKey: ticketKey === undefined ? undefined : Buffer.from(ticketKey, 'base64'),
      metricLabels: { tier: 'worker' },
      onInvalidate: (primary) => send({ type: 'anycdn:invalidate', primary }),
      metricsText,
      forwardLocalPurge,
    });
  } catch (err) {
    // Said in the node's log too (the command prints it on stderr): the primary replaces this worker, or fails its start.
    log.error({ err }, 'edge worker could not start; it exits');
    throw err;
  }
  // Its hits count for the disk's eviction, which the primary runs: sent in batches (src/blob/read-hashes.ts).
  const { WorkerBlobStore } = await workerBlobStore();
  if (edge.store instanceof WorkerBlobStore) {
    edge.store.reportReads((hashes) => send({ type: 'anycdn:reads', hashes }));
    // Its writes take the room the primary keeps free on the disk: it asks for more when they reach into it.
    edge.store.disk.onRoomWanted(() => send({ type: 'anycdn:room' }));
  }
  // Until the primary says otherwise, what the disk holds is as stale as at a start not caught up.
  if (config.edgeToken !== undefined) edge.pipeline.setPurgeWatermarks({ staleBefore: Date.now(), absentBefore: 0 });
  for (const m of early.splice(0)) onPurgeMessage(m);
  const started: EdgeServer = edge;
  // A rotation signalled to every process (the primary passes it on too): reopening twice is harmless.
  const reopen = (): void => void started.reopenLogs();
  process.on('SIGUSR1', reopen);
  // Likewise for SIGHUP (and its default would end the worker).
  const reload = (): void => void started.reloadTls();
  process.on('SIGHUP', reload);
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (drainMs: number): void => {
      if (stopping) return;
      stopping = true;
      const done = (): void => {
        // The IPC channel keeps a worker alive: let go of it so the process can end.
        if (process.connected) process.disconnect();
        resolve();
      };
      started.drain(drainMs).then(done, (err: unknown) => {
        log.error({ err }, 'worker drain failed');
        done();
      });
    };
    process.on('message', (m: ClusterMessage) => {
      switch (m.type) {
        case 'anycdn:invalidate':
          started.pipeline.invalidation.invalidate(m.primary).catch((err: unknown) => log.warn({ err, primary: m.primary }, 'invalidation failed'));
          return;
        case 'anycdn:metrics-collect':
          started.metrics.registry.getMetricsAsJSON().then((json) => send({ type: 'anycdn:metrics-json', id: m.id, json }));
          return;
        case 'anycdn:metrics-text':
          summed.answer(m.id, m.text);
          return;
        case 'anycdn:purge-local-done':
          localPurges.answer(m.id, { count: m.count, error: m.error });
          return;
        case 'anycdn:drain':
          stop(config.drain);
          return;
        case 'anycdn:reopen-logs':
          reopen();
          return;
        case 'anycdn:reload-tls':
          reload();
          return;
        default:
          return;
      }
    });
    // The primary is gone (killed): nobody relays or supervises any more, so stop at once.
    process.once('disconnect', () => stop(0));
    send({ type: 'anycdn:listening', url: started.url, https: started.https?.url });
  });
}
