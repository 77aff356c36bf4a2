/**
 * Starting an edge: open the tiered cache (memory over disk; the disk index is on disk, so a
 * restarted edge has its cache at once), connect the upstream pool, build the app
 * and bind it. `drain()` implements the graceful stop: health turns 503 (the BGP agent withdraws
 * the route), responses carry `Connection: close`, and after the drain period the server stops
 * accepting, finishes in-flight responses and closes.
 */
import type { IncomingMessage } from 'node:http';
import { openAccessLog } from '../src/access-log/access-log.js';
import { MemoryBlobStore } from '../src/blob/memory-blob-store.js';
import { DiskBlobStore } from '../src/blob/disk-blob-store.js';
import type { DiskBlobStoreOptions } from '../src/blob/disk-options.js';
import { TieredBlobStore } from '../src/blob/tiered-blob-store.js';
import { WorkerBlobStore } from '../src/blob/worker-blob-store.js';
import type { BlobStore } from '../src/blob/blob-store.js';
import { CdnError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { listen, type RunningServer } from '../src/serve/listen.js';
import type { SecureRunningServer } from '../src/serve/listen-secure.js';
import { createEdgeApp } from './app.js';
import { purgePathOfKey } from './cache-keys.js';
import type { EdgeConfig } from './config.js';
import { startEdgeHttps, upstreamTls, type EdgeHttps } from './https.js';
import { createEdgeMetrics, type EdgeMetrics } from './metrics.js';
import type { PurgeCount } from './purge/purge-apply.js';
import { openEdgePurges, type EdgePurges } from './purge/edge-purges.js';
import type { PurgePeers } from './purge/purge-node.js';
import type { Purge } from '../src/purge/purge-request.js';
import { acrossProcesses, type CrossFlights } from './cluster-flights.js';
import { DISK_TURN_MS } from './cluster-protocol.js';
import { EdgePipeline } from './pipeline.js';
import { Upstream } from './upstream.js';
import { clientParts } from './undici-parts.js';

export interface EdgeServer extends Omit<RunningServer, 'server'> {
  /** The cleartext listener's server; the HTTPS one's when there is no cleartext listener (`listen: false`). */
  server: RunningServer['server'] | SecureRunningServer['server'];
  store: BlobStore;
  metrics: EdgeMetrics;
  pipeline: EdgePipeline;
  /** Purges: the node's purger and stream subscriber (in the process that owns the disk), this process's applier. */
  purges: EdgePurges;
  /** Health 503 from now on; resolves after the drain period, the server closed and the cache flushed. */
  drain(periodMs?: number): Promise<void>;
  isDraining(): boolean;
  /** Reopens the access log file (after a rotation: SIGUSR1). */
  reopenLogs(): Promise<void>;
  /** The HTTPS listener (`tls`): its base URL and port. */
  https?: { url: string; port: number };
  /** Reads the certificates and ticket keys again (SIGHUP); a pair that does not load keeps its previous version. */
  reloadTls(): Promise<void>;
}

export interface StartEdgeOptions {
  processMetrics?: boolean;
  now?: () => number;
  /**
   * A cluster worker (edge/cluster.ts): its own memory tier over the node's disk cache opened as a
   * co-writer (the primary owns it), fetching from upstream itself.
   */
  worker?: {
    /** Its co-writer id (DiskBlobStoreOptions.writer): unique in the node, and its replacement's after it dies. */
    writer: number;
    /**
     * The disk's owner (process `ownerPid`) has not opened the cache yet (a cluster's primary
     * opens it once its workers listen): the worker opens it before its owner when the folder
     * allows that (DiskBlobStore.openBeforeOwner), else it asks for the owner's open (`ask`) and
     * opens the cache once `owned` resolves (on a node's first start the owner creates it), within
     * OWNER_WAIT_MS. Absent: the owner has it open already.
     */
    beforeOwner?: { ownerPid: number; owned: Promise<void>; ask(): void };
    /**
     * Runs the open of the disk cache's index while the node's other processes hold their commits
     * (a cluster's primary arranges it: edge/cluster.ts exclusiveOpen); default: at once.
     */
    exclusiveOpen?: DiskBlobStoreOptions['exclusiveEnvOpen'];
    /** Its fetches coalesced with the node's other workers (edge/cluster-flights.ts); default: within this process only. */
    flights?: CrossFlights;
  };
  /** The disk cache, opened by the caller as its owner (a cluster's primary opens it before its shield starts). */
  disk?: DiskBlobStore;
  /** See PipelineDeps.onInvalidate. */
  onInvalidate?: (primary: string) => void;
  /** See EdgeAppDeps.metricsText. */
  metricsText?: () => Promise<string>;
  /** Labels added to every metric (a cluster labels its processes by tier). */
  metricLabels?: Record<string, string>;
  /**
   * The shield of a cluster (edge/cluster.ts), which owns the disk and applies purges and
   * invalidations for the node: no access log, no memory tier, no TLS listener.
   */
  shield?: boolean;
  /** The session ticket key every process of this node uses (a cluster's primary made it); default the key file or a random key. */
  ticketKey?: Buffer;
  /** A cluster worker: its `POST /_cdn/purge` is applied node-wide through the primary (edge/cluster.ts). */
  forwardLocalPurge?: (purge: Purge) => Promise<PurgeCount>;
  /** The node's other processes, when known at start (see NodePurger.setPeers for later). */
  purgePeers?: PurgePeers;
}

/** How long after it listens an edge process loads the upstream client's code (60-75 ms of CPU on two cores). */
const UPSTREAM_CODE_AFTER_MS = 1_000;

/** How long a cluster worker that cannot open the disk cache before its owner waits for the owner's open (its turn, as the worker's own). */
const OWNER_WAIT_MS = DISK_TURN_MS;

/**
 * The node's disk cache: as its owner, or as a cluster worker's co-writer: on a restart before its
 * owner has it open (so the worker serves what the cache holds at once), else after its owner.
 */
async function openDisk(config: EdgeConfig, worker: StartEdgeOptions['worker']): Promise<DiskBlobStore> {
  const options = { dir: config.cacheDir, maxBytes: config.disk.maxBytes, maxEntrySize: config.disk.maxEntrySize, pathOf: purgePathOfKey, writer: worker?.writer, exclusiveEnvOpen: worker?.exclusiveOpen };
  const early = worker?.beforeOwner;
  if (early !== undefined) {
    const store = await DiskBlobStore.openBeforeOwner(options, early.ownerPid);
    if (store !== undefined) return store;
    // A first start, or a folder the owner's open has to change first (disk-open.ts): after it.
    early.ask();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new CdnError('disk_owner_timeout', 'internal', `the disk cache's owner did not open it in ${OWNER_WAIT_MS} ms`)), OWNER_WAIT_MS)));
    await Promise.race([early.owned, late]).finally(() => clearTimeout(timer));
  }
  return DiskBlobStore.open(options);
}

export async function startEdge(config: EdgeConfig, logger: Logger, options: StartEdgeOptions = {}): Promise<EdgeServer> {
  const now = options.now ?? Date.now;
  // Read before anything is opened: a file that does not load stops the start, naming it.
  const verifyUpstream = await upstreamTls(config, logger);
  // `memory.maxEntrySize` bounds the body; the memory store also counts the metadata, so give it
  // room for headers, or a body of exactly maxEntrySize would never be kept in memory.
  const metaAllowance = 64 * 1024;
  // Over a disk store, purges find keys in the disk's index: the memory tier keeps no lists of its own.
  const newMemory = (): MemoryBlobStore => new MemoryBlobStore({ maxBytes: config.memory.maxBytes, maxEntrySize: Math.min(config.memory.maxBytes, config.memory.maxEntrySize + metaAllowance), pathOf: purgePathOfKey, keyLists: options.worker !== undefined });
  // A cluster worker writes the node's disk cache beside its owner, the primary.
  const worker = options.worker;
  const disk = options.disk ?? (await openDisk(config, worker));
  if (disk.openReport.discarded.length > 0) logger.warn({ discarded: disk.openReport.discarded }, 'disk cache of an earlier format discarded (deleted in the background)');
  /** The disk's owner (not a cluster worker) keeps the node's purge cursor and follows the purge stream. */
  const owner = worker === undefined ? disk : undefined;
  const workerStore = worker === undefined ? undefined : new WorkerBlobStore({ memory: newMemory(), disk, memoryMaxEntrySize: config.memory.maxEntrySize, admitAtCommit: 'seen' });
  // A cluster's shield keeps no memory tier: it answers no requests of the workers' (they fetch
  // and store themselves), so a copy in its memory would never be read.
  const store: BlobStore = workerStore ?? (options.shield === true ? disk : new TieredBlobStore({ memory: newMemory(), disk, memoryMaxEntrySize: config.memory.maxEntrySize, admitAtCommit: 'seen' }));
  const metrics = createEdgeMetrics({ processMetrics: options.processMetrics ?? true, store: () => store });
  if (options.metricLabels !== undefined) metrics.registry.setDefaultLabels(options.metricLabels);
  const upstream = new Upstream(
    config.upstream,
    { connectMs: config.timeouts.connect, headersMs: config.timeouts.headers, bodyIdleMs: config.timeouts.bodyIdle },
    now,
    metrics.upstreamObserver,
    64,
    verifyUpstream,
  );
  const flights = worker?.flights;
  const across = flights === undefined ? undefined : acrossProcesses(flights, store, () => pipeline.purgeWatermarks());
  const pipeline: EdgePipeline = new EdgePipeline({ config, store, upstream, metrics, logger, now, onInvalidate: options.onInvalidate, acrossProcesses: across });
  // Before the first request: until the node has caught up with the purge log, what the disk holds is revalidated first.
  // The purge stream is verified as upstream is (upstreamTls), under its own URL's name.
  const purgeFrom = config.purgeFrom ?? config.upstream;
  const purgeTls = owner !== undefined && config.edgeToken !== undefined ? await upstreamTls({ ...config, upstream: purgeFrom }, logger) : undefined;
  const purges = await openEdgePurges({ config, pipeline, store, disk: owner, registry: metrics.registry, logger, now, forwardLocal: options.forwardLocalPurge, peers: options.purgePeers, tls: purgeTls });
  // A cluster's shield answers no client request: its workers answer and log them.
  const accessLog = options.shield !== true ? await openAccessLog(config.accessLog, { fields: { pop: config.pop, node: config.node }, logger, metrics: { registry: metrics.registry, prefix: 'anycdn_edge_' } }) : undefined;
  // What the store drops by itself (eviction, corruption) leaves the Vary index too.
  const unsubscribeDrops = disk.onDrop((key) => pipeline.varyIndex.remove(key));
  let draining = false;
  let storeOpen = true;
  const appDeps = { config, pipeline, metrics, logger, accessLog, isDraining: () => draining, storeOpen: () => storeOpen, metricsText: options.metricsText, localPurge: (req: IncomingMessage) => purges.localPurge(req) };
  const app = createEdgeApp(appDeps);
  let https: EdgeHttps | undefined;
  let cleartext: RunningServer | undefined;
  let running: Pick<EdgeServer, 'server' | 'url' | 'port'>;
  try {
    // The TLS listener first: with redirectHttp, the cleartext one points at its port.
    if (config.tls !== undefined && options.shield !== true) https = await startEdgeHttps(config, app, logger, metrics, options.ticketKey);
    if (config.listen !== false) {
      const plain = https !== undefined && config.tls?.redirectHttp === true ? createEdgeApp({ ...appDeps, httpsRedirect: { port: https.port } }) : app;
      cleartext = await listen({ address: config.listen, handler: plain.handle, quick: plain.quick, socketIdleTimeoutMs: config.timeouts.clientIdle });
    }
    // The schema allows `listen: false` only with `tls`.
    running = cleartext ?? https!;
  } catch (err) {
    await https?.close(0);
    await accessLog?.close();
    await purges.close();
    throw err;
  }
  const stats = store.stats();
  // A cluster's shield listens on an internal loopback port: only its workers' "edge listening" names the public address.
  logger.info({ url: cleartext?.url, https: https?.url, upstream: config.upstream, cachedObjects: stats.entries, cachedBytes: stats.bytes }, options.shield === true ? 'shield listening' : 'edge listening');
  // undici's client code loads at the first upstream request (edge/undici-parts.ts), so a start
  // answers its first hits sooner; loaded a moment later, the first miss does not pay for it
  // (a shield goes upstream only for a worker's miss: it loads it then).
  if (options.shield !== true) setTimeout(() => clientParts(), UPSTREAM_CODE_AFTER_MS).unref();

  const closeAll = async (graceMs: number): Promise<void> => {
    await Promise.all([cleartext?.close(graceMs), https?.close(graceMs)]);
    // Every answer is out (a streamed one's line follows its last byte by a turn): write every line before going.
    await new Promise((r) => setImmediate(r));
    await accessLog?.close();
    // Fetches still storing (a client gone, the body still coming) finish before the store closes,
    // or their commits fail against a closed store; bounded like the connections.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([pipeline.settled(), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    // Purges keep being applied until the listener is closed; the cursor is written before the store closes.
    await purges.close();
    await upstream.close().catch(() => undefined);
    unsubscribeDrops();
    storeOpen = false;
    await store.close();
  };
  return {
    server: running.server,
    url: running.url,
    port: running.port,
    store,
    metrics,
    pipeline,
    purges,
    isDraining: () => draining,
    https: https === undefined ? undefined : { url: https.url, port: https.port },
    reloadTls: async () => {
      await https?.certificates.reload('SIGHUP');
    },
    async reopenLogs() {
      if (accessLog !== undefined && (await accessLog.reopen())) logger.info({ path: config.accessLog.path }, 'access log reopened');
    },
    async drain(periodMs = config.drain) {
      draining = true;
      logger.info({ periodMs }, 'draining');
      if (periodMs > 0) await new Promise((r) => setTimeout(r, periodMs));
      await closeAll(10_000);
    },
    close: (graceMs = 10_000) => closeAll(graceMs),
  };
}
