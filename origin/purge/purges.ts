/**
 * The origin's purge machinery as one dependency of the app: the durable log, the edges and
 * their acknowledgements, the open streams, and the asset changes whose purge is still owed.
 * `openPurges` builds it over `<dataDir>/purge`.
 */
import { join } from 'node:path';
import type { Logger } from '../../src/log.js';
import type { OriginConfig } from '../config.js';
import { ChangePurges } from './change-purges.js';
import { EdgeRegistry } from './edge-registry.js';
import { PurgeLog } from './purge-log.js';
import { PurgeStreams } from './purge-stream.js';

export interface Purges {
  log: PurgeLog;
  edges: EdgeRegistry;
  streams: PurgeStreams;
  changes: ChangePurges;
}

export async function openPurges(config: OriginConfig, logger: Logger, now: () => number): Promise<Purges> {
  const log = await PurgeLog.open({
    dir: join(config.dataDir, 'purge'),
    retain: { entries: config.purge.retainEntries, bytes: config.purge.retainBytes },
    now,
    onCompactionError: (err) => logger.error({ err }, 'purge log compaction failed; tried again after the next purge'),
  });
  if (log.droppedAtOpen > 0) logger.warn({ file: log.file, bytes: log.droppedAtOpen }, 'purge log: cut a torn last write (never acknowledged) off its end');
  logger.info({ log: log.id, firstSeq: log.firstSeq, lastSeq: log.lastSeq }, 'purge log open');
  const edges = new EdgeRegistry(now);
  const streams = new PurgeStreams(log, edges, { edgeToken: config.edgeToken, heartbeatMs: config.purge.heartbeat, maxStreams: config.purge.maxStreams }, now);
  return { log, edges, streams, changes: new ChangePurges(log, logger) };
}

/** End the streams, answer the waits, and close the log once its appends are written. */
export async function closePurges(purges: Purges): Promise<void> {
  purges.changes.close();
  purges.streams.close();
  purges.edges.releaseWaits();
  await purges.log.close();
}
