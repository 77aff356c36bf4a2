/**
 * A node's purges, whoever sends them (the origin's purge stream, or an operator on the edge's
 * own endpoint): applied to this process's cache (the one process, or a cluster's shield with the
 * disk), then to the node's other processes (cluster workers, through the primary), and only then
 * reported done. It keeps the node's purge cursor and watermarks (purge-cursor.ts), publishes the
 * watermarks to every pipeline of the node, and persists them.
 *
 * Watermarks (times on the edge's clock):
 * - `absentBefore`: a purge of everything; what was stored at or before it counts as not stored.
 * - `staleBefore`: what was stored at or before it is revalidated before it is served: a soft
 *   purge of everything; a reset of the stream (purges this edge never saw); a cache with no
 *   cursor (a history nobody knows).
 * - until the stream has caught up after a start, also the start time (never persisted: it
 *   lapses once the purges missed while down are applied).
 *
 * The cursor is written only after the store's own changes are durable (`durable`), so after a
 * power loss it is never ahead of the removals it counts: at worst purges are applied twice. As
 * the stream moves it, it is written at most every PERSIST_INTERVAL_MS (a crash then applies the
 * purges of that last moment again, from the log): a write per purge cost the edge about as much
 * CPU as applying the purge (test/bench/purge.ts). A reset, a local `all` and a close write it at once.
 */
import type { Counter } from 'prom-client';
import type { Logger } from '../../src/log.js';
import type { Purge } from '../../src/purge/purge-request.js';
import type { PurgeWatermarks } from '../edge-request.js';
import type { EdgePipeline } from '../pipeline.js';
import type { PurgeApplier, PurgeCount } from './purge-apply.js';
import { EMPTY_CURSOR, type PurgeCursor, type PurgeCursorFile } from './purge-cursor.js';

/** The node's other processes: cluster workers, reached through the primary. */
export interface PurgePeers {
  /** Apply these purges, in order, in every other process; resolves when all have. */
  apply(purges: Purge[]): Promise<void>;
  /** Every other process's pipeline takes these watermarks. */
  watermarks(watermarks: PurgeWatermarks): void;
}

export type PurgeSource = 'stream' | 'local';

/** The cursor moved by the stream is written within this time. */
export const PERSIST_INTERVAL_MS = 100;

export interface NodePurgerDeps {
  applier: PurgeApplier;
  pipeline: EdgePipeline;
  /** Objects the node's cache holds: an empty cache has nothing a missed purge could concern. */
  storedObjects: () => number;
  cursorFile: PurgeCursorFile;
  /** Resolves once the store's changes so far would survive a power loss. */
  durable: () => Promise<void>;
  peers?: PurgePeers;
  /** The node follows the origin's purge stream: until it has caught up, stored objects are revalidated first. */
  following: boolean;
  now: () => number;
  logger: Logger;
  counters?: { applied: Counter<'source'>; objects: Counter<'action'> };
}

export class NodePurger {
  private state: PurgeCursor;
  private caughtUp: boolean;
  private readonly startedAt: number;
  private persisting: Promise<void> | undefined;
  private dirty = false;
  private peers: PurgePeers | undefined;
  private persistTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly deps: NodePurgerDeps, state: PurgeCursor) {
    this.state = state;
    this.startedAt = deps.now();
    this.caughtUp = !deps.following;
    this.peers = deps.peers;
    this.publish();
  }

  static async open(deps: NodePurgerDeps): Promise<NodePurger> {
    const read = await deps.cursorFile.read();
    let state: PurgeCursor = { ...EMPTY_CURSOR };
    if (read !== undefined && !('problem' in read)) state = read;
    else if (deps.following && deps.storedObjects() > 0) {
      // Objects whose purge history nobody knows: revalidated before they are served again.
      state.staleBefore = deps.now();
      if (read !== undefined) deps.logger.warn({ file: deps.cursorFile.path, problem: read.problem }, 'purge cursor unusable: the whole cache counts as stale');
      else deps.logger.info({ file: deps.cursorFile.path }, 'no purge cursor beside a cache: the whole cache counts as stale');
    }
    const node = new NodePurger(deps, state);
    if (state.staleBefore > 0 && (read === undefined || 'problem' in read)) await node.persist();
    return node;
  }

  /** The log and the last sequence number applied. */
  get cursor(): { log: string | null; seq: number } {
    return { log: this.state.log, seq: this.state.seq };
  }

  get isCaughtUp(): boolean {
    return this.caughtUp;
  }

  /** The node's other processes, once they exist (a cluster forks its workers after its shield is up). */
  setPeers(peers: PurgePeers | undefined): void {
    this.peers = peers;
    peers?.watermarks(this.watermarks());
  }

  /** The watermarks every pipeline of the node applies now. */
  watermarks(): PurgeWatermarks {
    const staleBefore = this.caughtUp ? this.state.staleBefore : Math.max(this.state.staleBefore, this.startedAt);
    return { staleBefore, absentBefore: this.state.absentBefore };
  }

  /**
   * Apply purges in order (issued together: the disk store commits their removals in one index
   * transaction, and removals of one key keep their order): here first, then in every other
   * process. Resolves with what they took here once every process has applied them.
   */
  async apply(purges: Purge[], source: PurgeSource): Promise<PurgeCount> {
    const work: Promise<PurgeCount>[] = [];
    for (const purge of purges) {
      if (purge.all) this.markAll(purge.soft);
      work.push(this.deps.applier.apply(purge));
    }
    const counts = await Promise.all(work);
    await this.peers?.apply(purges);
    const total = counts.reduce((a, c) => ({ removed: a.removed + c.removed, marked: a.marked + c.marked }), { removed: 0, marked: 0 });
    this.deps.counters?.applied.inc({ source }, purges.length);
    if (total.removed > 0) this.deps.counters?.objects.inc({ action: 'removed' }, total.removed);
    if (total.marked > 0) this.deps.counters?.objects.inc({ action: 'marked-stale' }, total.marked);
    if (source === 'local' && purges.some((p) => p.all)) await this.persist();
    return total;
  }

  /** Every purge of `log` up to `seq` is applied: the cursor moves (persisted soon, after the store's changes). */
  advance(log: string, seq: number): void {
    this.state = { ...this.state, log, seq };
    if (this.persistTimer !== undefined) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = undefined;
      void this.persist().catch((err: unknown) => this.deps.logger.warn({ err }, 'writing the purge cursor failed; tried again with the next purge'));
    }, PERSIST_INTERVAL_MS);
  }

  /**
   * The stream cannot simply resume (its log was compacted past the cursor, replaced, or is behind
   * it): purges may have been missed, so the whole cache counts as stale (unless it is empty), and
   * the cursor starts over before `firstSeq`.
   */
  async reset(log: string, firstSeq: number): Promise<void> {
    const staleBefore = this.deps.storedObjects() > 0 ? Math.max(this.state.staleBefore, this.deps.now()) : this.state.staleBefore;
    this.state = { ...this.state, log, seq: firstSeq - 1, staleBefore };
    this.publish();
    await this.persist();
  }

  /** The stream has delivered every purge logged before this start: the start watermark lapses. */
  markCaughtUp(): void {
    if (this.caughtUp) return;
    this.caughtUp = true;
    this.publish();
  }

  /** Write the cursor once the store's changes are durable; concurrent calls share the writes. */
  persist(): Promise<void> {
    clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
    if (this.persisting !== undefined) {
      this.dirty = true;
      return this.persisting;
    }
    const run = async (): Promise<void> => {
      do {
        this.dirty = false;
        const snapshot = { ...this.state };
        await this.deps.durable();
        await this.deps.cursorFile.write(snapshot);
      } while (this.dirty);
    };
    this.persisting = run().finally(() => (this.persisting = undefined));
    return this.persisting;
  }

  private markAll(soft: boolean): void {
    const now = this.deps.now();
    this.state = soft ? { ...this.state, staleBefore: Math.max(this.state.staleBefore, now) } : { ...this.state, absentBefore: Math.max(this.state.absentBefore, now) };
    this.publish();
  }

  private publish(): void {
    const w = this.watermarks();
    this.deps.pipeline.setPurgeWatermarks(w);
    this.peers?.watermarks(w);
  }
}
