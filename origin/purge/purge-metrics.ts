/**
 * The origin's purge metrics, read from the log, the edge registry and the streams when scraped:
 * purges appended (by source), the log's extent, live edges and open streams, and per edge how far
 * it has applied the log, how far behind it is (in purges and in seconds) and how often it
 * connected. Node labels are bounded by the registry (MAX_EDGES).
 */
import { Counter, Gauge, type Registry } from '../../src/prom-parts.js';
import type { EdgeView } from './edge-registry.js';
import type { PurgeSource } from './purge-log-format.js';
import type { Purges } from './purges.js';

export function registerPurgeMetrics(registry: Registry, prefix: string, purges: Purges, now: () => number): void {
  const { log, edges, streams } = purges;
  const appended = new Counter({ name: `${prefix}purges_appended_total`, help: 'Purges written to the log, by source (api, upload, delete)', labelNames: ['source'], registers: [registry] });
  for (const source of ['api', 'upload', 'delete'] satisfies PurgeSource[]) appended.inc({ source }, 0);
  log.subscribe((written) => {
    for (const e of written) appended.inc({ source: e.source });
  });
  const gauge = (name: string, help: string, value: () => number): void => {
    new Gauge({ name: `${prefix}${name}`, help, registers: [registry], collect() {
      this.set(value());
    } });
  };
  gauge('purge_log_last_seq', 'Sequence number of the newest purge', () => log.lastSeq);
  gauge('purge_log_first_seq', 'Sequence number of the oldest purge the log still holds (compaction)', () => log.firstSeq);
  gauge('purge_log_retained_bytes', 'Bytes of purges the log holds', () => log.retained.bytes);
  gauge('purge_edges_live', 'Edges with a purge stream open', () => edges.list().filter((e) => e.live).length);
  gauge('purge_streams_open', 'Purge streams open', () => streams.size);
  gauge('purges_owed', 'Asset changes stored whose purge could not be logged yet (retried; a purge of everything counts as one)', () => purges.changes.size);
  new Counter({ name: `${prefix}purge_stream_connections_total`, help: 'Purge streams opened', registers: [registry], collect() {
    this.reset();
    this.inc(streams.connections);
  } });

  const perEdge = (name: string, help: string, value: (e: EdgeView) => number): void => {
    new Gauge({ name: `${prefix}${name}`, help, labelNames: ['node'], registers: [registry], collect() {
      this.reset();
      for (const e of edges.list()) this.set({ node: e.node }, value(e));
    } });
  };
  perEdge('purge_edge_live', '1 while the edge has a purge stream open', (e) => (e.live ? 1 : 0));
  perEdge('purge_edge_acked_seq', 'Every purge up to this sequence number is applied at the edge', (e) => e.acked);
  perEdge('purge_edge_lag', 'Purges the edge has not acknowledged yet', (e) => Math.max(0, log.lastSeq - e.acked));
  perEdge('purge_edge_lag_seconds', 'Age of the oldest purge the edge has not acknowledged (0 when caught up)', (e) => {
    const oldest = e.acked < log.lastSeq ? log.after(e.acked, 1)[0] : undefined;
    return oldest === undefined ? 0 : Math.max(0, (now() - oldest.time) / 1000);
  });
  new Counter({ name: `${prefix}purge_edge_connections_total`, help: 'Purge streams each edge opened (reconnects are the ones after the first)', labelNames: ['node'], registers: [registry], collect() {
    this.reset();
    for (const e of edges.list()) this.inc({ node: e.node }, e.connections);
  } });
}
