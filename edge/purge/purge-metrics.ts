/**
 * The edge's purge metrics (`/_cdn/metrics`): purges received on the stream and applied (by
 * source), objects they took, how far the edge has applied the log and how far behind it is (in
 * purges and in seconds), the stream's connections, reconnects and failures, and the delay from
 * the origin logging a purge to this edge applying it.
 */
import { Counter, Gauge, Histogram, type Registry } from '../../src/prom-parts.js';

export interface PurgeStreamStatus {
  /** The stream is open and has said hello. */
  connected: boolean;
  /** Every purge logged before this start has been applied (or the edge follows no stream). */
  caughtUp: boolean;
  appliedSeq: number;
  /** The newest sequence number the stream has told of. */
  headSeq: number;
  /** Seconds since the edge fell behind the head it knows of; 0 when it is not behind. */
  lagSeconds: number;
}

export interface PurgeMetrics {
  received: Counter;
  applied: Counter<'source'>;
  objects: Counter<'action'>;
  connections: Counter;
  reconnects: Counter;
  failures: Counter<'reason'>;
  delay: Histogram;
}

export function createPurgeMetrics(registry: Registry, status: () => PurgeStreamStatus | undefined): PurgeMetrics {
  const registers = [registry];
  const gauge = (name: string, help: string, read: (s: PurgeStreamStatus) => number): void => {
    new Gauge({
      name: `anycdn_edge_${name}`,
      help,
      registers,
      collect() {
        const s = status();
        if (s !== undefined) this.set(read(s));
      },
    });
  };
  gauge('purge_applied_seq', 'Every purge of the origin\'s log up to this sequence number is applied here', (s) => s.appliedSeq);
  gauge('purge_head_seq', 'The newest purge the stream has told of', (s) => s.headSeq);
  gauge('purge_lag', 'Purges the stream has told of and this edge has not applied yet', (s) => Math.max(0, s.headSeq - s.appliedSeq));
  gauge('purge_lag_seconds', 'How long this edge has been behind the head it knows of (0 when caught up)', (s) => s.lagSeconds);
  gauge('purge_stream_up', '1 while the purge stream is open', (s) => (s.connected ? 1 : 0));
  gauge('purge_caught_up', '1 once the purges logged before this start are applied (until then stored objects are revalidated first)', (s) => (s.caughtUp ? 1 : 0));
  const failures = new Counter({ name: 'anycdn_edge_purge_stream_failures_total', help: 'Purge stream attempts that failed, by reason (refused, failed, silent, protocol, apply)', labelNames: ['reason'], registers });
  for (const reason of ['refused', 'failed', 'silent', 'protocol', 'apply']) failures.inc({ reason }, 0);
  const applied = new Counter({ name: 'anycdn_edge_purges_applied_total', help: 'Purges applied on this node, by source (stream, local)', labelNames: ['source'], registers });
  for (const source of ['stream', 'local']) applied.inc({ source }, 0);
  const objects = new Counter({ name: 'anycdn_edge_purge_objects_total', help: 'Stored objects purges removed or marked stale', labelNames: ['action'], registers });
  for (const action of ['removed', 'marked-stale']) objects.inc({ action }, 0);
  return {
    received: new Counter({ name: 'anycdn_edge_purges_received_total', help: 'Purges read from the purge stream', registers }),
    applied,
    objects,
    connections: new Counter({ name: 'anycdn_edge_purge_stream_connections_total', help: 'Purge streams opened (said hello)', registers }),
    reconnects: new Counter({ name: 'anycdn_edge_purge_stream_reconnects_total', help: 'Purge stream connection attempts after the first', registers }),
    failures,
    delay: new Histogram({
      name: 'anycdn_edge_purge_delay_seconds',
      help: 'From the origin logging a purge to this node applying it (clocks of two machines: skew shows here)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300],
      registers,
    }),
  };
}
