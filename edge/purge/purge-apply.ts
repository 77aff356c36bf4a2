/**
 * Applying a purge to one process's cache (the single process, a cluster's shield with its disk,
 * or a cluster worker with its memory and what it wrote to the disk since the shield applied
 * it): find what it takes through the store's lists (by canonical path for URLs and prefixes, by
 * tag for tags: never a walk over every object), then
 * remove it, or for a soft purge mark it stale; and retire the fetches under way it takes, so none
 * of them stores or hands out what the purge meant to take away.
 *
 * `all` is a watermark the node sets (edge/purge/purge-node.ts: objects stored before it count as
 * not stored, or as stale for a soft one), so it takes effect at once whatever the cache holds;
 * here a hard `all` only starts sweeping the objects away in the background, in bounded batches.
 */
import type { BlobStore } from '../../src/blob/blob-store.js';
import type { Logger } from '../../src/log.js';
import type { Purge } from '../../src/purge/purge-request.js';
import { splitStoredKey } from '../cache-keys.js';
import type { EdgePipeline } from '../pipeline.js';
import { flightMatcher, keyMatcher, withFolderUrls } from './purge-scope.js';

/** What a purge took in this process. */
export interface PurgeCount {
  /** Objects removed (for `all`: the objects the sweep removes). */
  removed: number;
  /** Objects marked stale (soft purge; an `all` marks by watermark and counts none). */
  marked: number;
}

/** The lists a store needs for purges (the disk store's LMDB index, the memory store's own lists). */
export type PurgeableStore = BlobStore &
  Required<Pick<BlobStore, 'keysUnderPath' | 'keysWithTag'>> & {
    /** What a hard purge of everything sweeps here, when not every key (a cluster worker's: its memory; the disk's owner sweeps the disk). */
    keysToSweep?(): string[];
  };

/** Objects removed at once by a sweep of everything, between two turns of the event loop. */
const SWEEP_BATCH = 256;

export class PurgeApplier {
  private sweeping: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly store: PurgeableStore,
    private readonly pipeline: EdgePipeline,
    private readonly logger: Logger,
  ) {}

  /** Apply `purge` here; resolves once what it takes is gone (or marked) for every later request. */
  async apply(purge: Purge): Promise<PurgeCount> {
    const expanded = withFolderUrls(purge);
    const matchFlight = flightMatcher(expanded);
    const retired = this.pipeline.invalidation.retireFlights((key, delivered) => matchFlight(delivered?.key ?? key, delivered?.headers));
    if (expanded.all) return this.applyAll(expanded.soft);
    const keys = this.candidates(expanded);
    const count = await this.act(keys, expanded.soft);
    // A fetch that was committing when it was retired stores its copy as it ends: take that too.
    for (const flight of retired) {
      flight.done.then(() => this.act(new Set([flight.key]), expanded.soft)).catch((err: unknown) => this.logger.warn({ err, key: flight.key }, 'purge after a fetch failed'));
    }
    return count;
  }

  /** Resolves when the sweeps started so far are done (tests). */
  swept(): Promise<void> {
    return this.sweeping;
  }

  /** Stop sweeping (the store is closing); what is left counts as not stored by the node's watermark. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.sweeping;
  }

  private candidates(purge: Purge): Set<string> {
    const out = new Set<string>();
    if (purge.urls.length > 0 || purge.prefixes.length > 0) {
      const taken = keyMatcher(purge);
      // URLs and prefixes alike are read as path prefixes (one range of the index each), then matched exactly.
      for (const target of [...purge.urls, ...purge.prefixes]) {
        for (const key of this.store.keysUnderPath(target.path === '/' ? '' : target.path)) if (taken(key)) out.add(key);
      }
    }
    for (const tag of purge.tags) for (const key of this.store.keysWithTag(tag)) out.add(key);
    return out;
  }

  /**
   * Remove the keys (all at once: the disk store commits removals issued together in one index
   * transaction), or mark them stale. Compressed copies are not marked: they are served only
   * after their source, which the mark sends upstream first.
   */
  private async act(keys: Set<string>, soft: boolean): Promise<PurgeCount> {
    const work: Promise<boolean>[] = [];
    for (const key of keys) {
      if (!soft) {
        work.push(this.store.delete(key).finally(() => this.pipeline.varyIndex.remove(key)));
      } else if (splitStoredKey(key).coding === undefined) {
        work.push(this.store.updateMeta(key, { invalidated: true }));
      }
    }
    const done = await Promise.all(work);
    const n = done.filter(Boolean).length;
    return soft ? { removed: 0, marked: n } : { removed: n, marked: 0 };
  }

  /** The node's watermark has made everything not stored (or stale) already; a hard purge sweeps it away. */
  private applyAll(soft: boolean): PurgeCount {
    if (soft) return { removed: 0, marked: 0 };
    const keys = this.store.keysToSweep?.() ?? this.store.keysUnderPath('');
    this.sweeping = this.sweeping.then(() => this.sweep(keys)).catch((err: unknown) => this.logger.warn({ err }, 'sweeping purged objects failed'));
    return { removed: keys.length, marked: 0 };
  }

  private async sweep(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length && !this.stopped; i += SWEEP_BATCH) {
      await this.act(new Set(keys.slice(i, i + SWEEP_BATCH)), false);
      await new Promise((r) => setImmediate(r));
    }
  }
}
