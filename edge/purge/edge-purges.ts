/**
 * The purge machinery of one edge process, put together by edge/server.ts:
 *
 * - the process that owns the disk cache (a single-process edge, or a cluster's shield) gets the
 *   node's purger (purge-node.ts: cursor, watermarks, applying on every process) and, with an
 *   `edgeToken`, the subscriber to the origin's purge stream (purge-subscriber.ts, from
 *   `purgeFrom`, default `upstream`), and the purge metrics;
 * - a cluster worker gets only an applier for its own store (its memory, and the disk it writes
 *   too): its primary tells it what to apply (edge/cluster.ts), and its `POST /_cdn/purge` is
 *   applied node-wide through the primary.
 */
import type { IncomingMessage } from 'node:http';
import type { Registry } from 'prom-client';
import type { BlobStore } from '../../src/blob/blob-store.js';
import { CdnError } from '../../src/errors.js';
import type { Logger } from '../../src/log.js';
import type { Purge } from '../../src/purge/purge-request.js';
import type { Reply } from '../../src/serve/reply.js';
import type { EdgeConfig } from '../config.js';
import type { EdgePipeline } from '../pipeline.js';
import type { UpstreamTls } from '../upstream.js';
import { PurgeApplier, type PurgeableStore, type PurgeCount } from './purge-apply.js';
import { PurgeCursorFile } from './purge-cursor.js';
import { createPurgeMetrics } from './purge-metrics.js';
import { NodePurger, type PurgePeers } from './purge-node.js';
import { localPurgeReply } from './purge-route.js';
import { PurgeSubscriber } from './purge-subscriber.js';

export interface EdgePurges {
  /** This process's cache: what a purge takes here. */
  applier: PurgeApplier;
  /** The node's purger (the process that owns the disk only). */
  node: NodePurger | undefined;
  /** The purge stream's subscriber (with an edgeToken, in the process that owns the disk). */
  subscriber: PurgeSubscriber | undefined;
  /** `POST /_cdn/purge` (the edge-local purge). */
  localPurge(req: IncomingMessage): Promise<Reply>;
  /** Stop following the stream and write the cursor. */
  close(): Promise<void>;
}

export interface EdgePurgesDeps {
  config: EdgeConfig;
  pipeline: EdgePipeline;
  store: BlobStore;
  /** The disk store this process owns (absent in a cluster worker). */
  disk: { stats(): { entries: number }; durable(): Promise<void> } | undefined;
  registry: Registry;
  logger: Logger;
  now: () => number;
  /** A cluster worker: applies a local purge node-wide through its primary. */
  forwardLocal?: (purge: Purge) => Promise<PurgeCount>;
  /** How an https `purgeFrom` is verified (the edge's `upstreamTls`). */
  tls?: UpstreamTls;
  /** The node's other processes, when they are known at start (tests wire a worker in-process). */
  peers?: PurgePeers;
}

export async function openEdgePurges(deps: EdgePurgesDeps): Promise<EdgePurges> {
  const { config, pipeline, logger } = deps;
  const applier = new PurgeApplier(purgeable(deps.store), pipeline, logger);
  const servedBy = `${config.pop}/${config.node}`;
  const local = (apply: (purge: Purge) => Promise<PurgeCount>) => (req: IncomingMessage) => localPurgeReply(req, { adminToken: config.adminToken, maxEntries: config.purge.maxEntries, servedBy, apply });
  if (deps.disk === undefined) {
    const forward = deps.forwardLocal ?? ((purge: Purge) => applier.apply(purge));
    return { applier, node: undefined, subscriber: undefined, localPurge: local(forward), close: () => applier.stop() };
  }
  const disk = deps.disk;
  const following = config.edgeToken !== undefined;
  let subscriber: PurgeSubscriber | undefined;
  const metrics = createPurgeMetrics(deps.registry, () => subscriber?.status());
  const node = await NodePurger.open({
    applier,
    pipeline,
    storedObjects: () => disk.stats().entries,
    cursorFile: new PurgeCursorFile(config.cacheDir),
    durable: () => disk.durable(),
    peers: deps.peers,
    following,
    now: deps.now,
    logger,
    counters: { applied: metrics.applied, objects: metrics.objects },
  });
  if (config.edgeToken !== undefined) {
    subscriber = new PurgeSubscriber({ url: config.purgeFrom ?? config.upstream, token: config.edgeToken, node: servedBy, purger: node, metrics, logger, now: deps.now, tls: deps.tls });
    subscriber.start();
  }
  return {
    applier,
    node,
    subscriber,
    localPurge: local((purge) => node.apply([purge], 'local')),
    async close() {
      await subscriber?.close();
      await applier.stop();
      await node.persist().catch((err: unknown) => logger.warn({ err }, 'writing the purge cursor at close failed'));
    },
  };
}

function purgeable(store: BlobStore): PurgeableStore {
  if (store.keysUnderPath === undefined || store.keysWithTag === undefined) {
    throw new CdnError('store_not_purgeable', 'internal', 'the edge cache store lists no keys by path and tag: purges could not find anything');
  }
  return store as PurgeableStore;
}
