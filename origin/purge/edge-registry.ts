/**
 * The edges the origin knows, as the purge stream and acknowledgements tell it: which are live (a
 * purge stream open), how far each has applied the log (`acked`: every purge up to that sequence
 * number), and when each of its acknowledgements came, so `GET /_cdn/purge/{id}` can say when an
 * edge applied a purge and `POST /_cdn/purge?wait=…` can answer once every live edge has.
 *
 * In memory only: after an origin restart every edge reconnects with `after` = its own persisted
 * cursor, which counts as an acknowledgement of everything up to it (at the time of reconnecting).
 * Bounded: at most MAX_EDGES nodes (the least recently seen edge without a stream is forgotten
 * first), MAX_ACK_POINTS acknowledgement times per node, MAX_WAITERS waits at once.
 */
import { CdnError } from '../../src/errors.js';

export const MAX_EDGES = 4096;
export const MAX_ACK_POINTS = 1024;
export const MAX_WAITERS = 10_000;

/** `POP/NODE`, as edge configs name them (edge/config.ts `pop` and `node`). */
export const EDGE_NAME = /^[A-Za-z0-9_-]{1,32}\/[A-Za-z0-9_.-]{1,64}$/;

export interface EdgeView {
  node: string;
  live: boolean;
  /** Purge streams open now (more than one while a reconnect overlaps the old stream). */
  streams: number;
  /** Every purge up to this sequence number is applied. */
  acked: number;
  /** When `acked` last moved; undefined before the first acknowledgement. */
  ackedAt: number | undefined;
  /** Streams opened since the origin started. */
  connections: number;
  lastSeen: number;
}

/** Whether and when one edge applied one purge. */
export interface AppliedView {
  node: string;
  live: boolean;
  applied: boolean;
  /** When (ms), when known: undefined when not applied, or applied before the oldest time kept. */
  at: number | undefined;
}

export interface WaitResult {
  /** Every edge live at the end applied it. */
  complete: boolean;
  edges: AppliedView[];
}

interface EdgeRecord {
  node: string;
  streams: number;
  acked: number;
  /** (seq, time) of each move of `acked`, oldest first. */
  points: { seq: number; at: number }[];
  /** Whether older points were dropped (the oldest kept then says only "by this time"). */
  truncated: boolean;
  connections: number;
  lastSeen: number;
}

interface Waiter {
  seq: number;
  finish: () => void;
}

export class EdgeRegistry {
  private readonly edges = new Map<string, EdgeRecord>();
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly now: () => number) {}

  /** A purge stream opened for `node`, having applied everything up to `applied`; returns its close. */
  connect(node: string, applied: number): () => void {
    const edge = this.record(node);
    edge.streams += 1;
    edge.connections += 1;
    this.advance(edge, applied);
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      edge.streams -= 1;
      edge.lastSeen = this.now();
      this.check();
    };
  }

  /** `node` applied every purge up to `seq` (an older or repeated acknowledgement changes nothing). */
  ack(node: string, seq: number): EdgeView {
    const edge = this.record(node);
    this.advance(edge, seq);
    return view(edge);
  }

  list(): EdgeView[] {
    return [...this.edges.values()].map(view).sort((a, b) => compare(a.node, b.node));
  }

  /** Every known edge, and whether and when it applied purge `seq`. */
  applied(seq: number): AppliedView[] {
    return [...this.edges.values()].map((e) => appliedView(e, seq)).sort((a, b) => compare(a.node, b.node));
  }

  /**
   * Resolves when every live edge has applied `seq` (at once when none is live), or after
   * `timeoutMs` with the state then. Edges that connect meanwhile are waited for too; an edge whose
   * stream closes is not (it catches up when it reconnects).
   */
  waitApplied(seq: number, timeoutMs: number): Promise<WaitResult> {
    const result = (): WaitResult => {
      const edges = this.applied(seq);
      return { complete: edges.every((e) => !e.live || e.applied), edges };
    };
    const now = result();
    if (now.complete || timeoutMs <= 0) return Promise.resolve(now);
    if (this.waiters.size >= MAX_WAITERS) {
      return Promise.reject(new CdnError('too_many_waits', 'internal', `${MAX_WAITERS} purges are being waited for already; retry without wait`, { status: 503, headers: { 'Retry-After': '1' } }));
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        seq,
        finish: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(result());
        },
      };
      const timer = setTimeout(waiter.finish, timeoutMs);
      timer.unref();
      this.waiters.add(waiter);
    });
  }

  /** Answer every wait now (the server is closing). */
  releaseWaits(): void {
    for (const w of [...this.waiters]) w.finish();
  }

  private record(node: string): EdgeRecord {
    let edge = this.edges.get(node);
    if (edge === undefined) {
      if (this.edges.size >= MAX_EDGES) this.forgetOne();
      edge = { node, streams: 0, acked: 0, points: [], truncated: false, connections: 0, lastSeen: this.now() };
      this.edges.set(node, edge);
    }
    edge.lastSeen = this.now();
    return edge;
  }

  private advance(edge: EdgeRecord, seq: number): void {
    if (seq <= edge.acked) return;
    edge.acked = seq;
    edge.points.push({ seq, at: this.now() });
    if (edge.points.length > MAX_ACK_POINTS) {
      edge.points.shift();
      edge.truncated = true;
    }
    this.check();
  }

  /** Finish the waits that are now satisfied. */
  private check(): void {
    if (this.waiters.size === 0) return;
    // Every live edge applied everything up to the lowest of their acknowledgements.
    let floor = Infinity;
    for (const e of this.edges.values()) if (e.streams > 0 && e.acked < floor) floor = e.acked;
    for (const w of [...this.waiters]) if (w.seq <= floor) w.finish();
  }

  private forgetOne(): void {
    let oldest: EdgeRecord | undefined;
    for (const e of this.edges.values()) if (e.streams === 0 && (oldest === undefined || e.lastSeen < oldest.lastSeen)) oldest = e;
    if (oldest === undefined) throw new CdnError('too_many_edges', 'internal', `${MAX_EDGES} edges have a purge stream open already`, { status: 503, headers: { 'Retry-After': '5' } });
    this.edges.delete(oldest.node);
  }
}

function view(e: EdgeRecord): EdgeView {
  return { node: e.node, live: e.streams > 0, streams: e.streams, acked: e.acked, ackedAt: e.points.at(-1)?.at, connections: e.connections, lastSeen: e.lastSeen };
}

function appliedView(e: EdgeRecord, seq: number): AppliedView {
  const applied = e.acked >= seq;
  let at: number | undefined;
  if (applied) {
    const i = e.points.findIndex((p) => p.seq >= seq);
    at = i === 0 && e.truncated ? undefined : e.points[i]?.at;
  }
  return { node: e.node, live: e.streams > 0, applied, at };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
