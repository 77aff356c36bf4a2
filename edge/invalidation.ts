/**
 * Dropping what the edge stored for a URL: after a successful unsafe request (RFC 9111 §4.4), on
 * a peer process's word (edge/cluster.ts), and for a purge (edge/purge/), which also retires the
 * fetches under way whose response it matches.
 */
import type { LRUCache } from 'lru-cache';
import type { BlobStore } from '../src/blob/blob-store.js';
import type { Logger } from '../src/log.js';
import type { QueryNormalizer } from '../src/http/cache-key.js';
import { primaryKey, VARY_SEPARATOR } from './cache-keys.js';
import type { EdgeRequest } from './edge-request.js';
import type { FlightTable, SharedOutcome } from './flights.js';
import type { UpstreamResponse } from './upstream.js';
import type { VaryIndex } from './vary-index.js';

export interface InvalidationDeps {
  store: BlobStore;
  flights: FlightTable;
  varyIndex: VaryIndex;
  /** URLs answered uncacheable lately: an invalidated URL is asked again. */
  hitForMiss: LRUCache<string, true>;
  normalizeQuery: QueryNormalizer;
  logger: Logger;
  /** Told of every URL invalidated after an unsafe request (see PipelineDeps.onInvalidate). */
  onInvalidate?: (primary: string) => void;
}

export class Invalidation {
  constructor(private readonly deps: InvalidationDeps) {}

  /** After a successful unsafe request: the URL, and its Location and Content-Location on the same origin. */
  async afterUnsafe(req: EdgeRequest, res: UpstreamResponse): Promise<void> {
    if (req.method === 'OPTIONS' || req.method === 'TRACE') return;
    const host = keyHost(req);
    const urls = [req.url];
    for (const [k, v] of res.headers) {
      if (k !== 'location' && k !== 'content-location') continue;
      try {
        const u = new URL(v, req.url);
        if (u.host === req.url.host) urls.push(u);
      } catch {
        // not a URL: nothing to invalidate
      }
    }
    for (const u of urls) {
      let primary: string;
      try {
        primary = primaryKey(host, u, this.deps.normalizeQuery);
      } catch {
        continue;
      }
      await this.invalidate(primary);
      this.deps.onInvalidate?.(primary);
    }
  }

  /**
   * Remove every stored variant of a URL. A fetch for it under way now began before the change
   * that invalidates it: what it stores is removed too once it is done.
   */
  async invalidate(primary: string): Promise<number> {
    for (const flight of this.deps.flights.inFlight()) {
      if (flight.key !== primary && !flight.key.startsWith(primary + VARY_SEPARATOR)) continue;
      flight.done.then(() => this.removeStored(primary)).catch((err: unknown) => this.deps.logger.warn({ err, primary }, 'invalidation after fetch failed'));
    }
    return this.removeStored(primary);
  }

  /**
   * Retire every fetch under way whose stored key `matches` (given its response once the headers
   * are in): see FlightTable.retire. Returns when each retired one is over.
   */
  retireFlights(matches: (key: string, delivered: SharedOutcome | undefined) => boolean): { key: string; done: Promise<void> }[] {
    const retired: { key: string; done: Promise<void> }[] = [];
    for (const flight of [...this.deps.flights.inFlight()]) {
      if (!matches(flight.key, flight.delivered)) continue;
      this.deps.flights.retire(flight);
      retired.push({ key: flight.delivered?.key ?? flight.key, done: flight.done });
    }
    return retired;
  }

  private async removeStored(primary: string): Promise<number> {
    let removed = 0;
    for (const key of new Set([primary, ...this.deps.varyIndex.keysFor(primary)])) {
      if (await this.deps.store.delete(key)) removed++;
      this.deps.varyIndex.remove(key);
    }
    this.deps.hitForMiss.delete(primary);
    return removed;
  }
}

/** The host a request's key is made with: an absolute-form target's own authority wins over Host (RFC 9112 §3.2.2). */
export function keyHost(req: EdgeRequest): string {
  return req.target.startsWith('/') ? (req.headers.get('host') ?? '') : req.url.host;
}
