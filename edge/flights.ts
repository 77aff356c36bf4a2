/**
 * Request coalescing: at most one upstream fetch per cache key at a time. The first request for a
 * key (the leader) starts a flight; later ones (followers) join it and get the same outcome as
 * soon as upstream's headers arrive, then read the body while it is still arriving (GrowingBody).
 * The table is bounded in flights and in waiters per flight; past either bound a request simply
 * fetches on its own, uncoalesced.
 */
import type { BlobEntry } from '../src/blob/blob-store.js';
import type { GrowingBody } from '../src/blob/streaming-body.js';
import type { NotStoredReason } from '../src/http/storable.js';
import type { UpstreamResponse } from './upstream.js';

/** The upstream answer was shared: every waiter reads the same body. */
export interface SharedOutcome {
  kind: 'shared';
  /** The stored key the response belongs to (includes the Vary part). */
  key: string;
  status: number;
  /** Header fields as stored (hop-by-hop and private fields removed). */
  headers: [string, string][];
  /**
   * The leader's own fields when a qualified `private="…"` kept some out of `headers`: the
   * client whose request fetched the response gets them (RFC 9111 §5.2.2.7 forbids only storing
   * them); followers and later hits never do.
   */
  leaderHeaders?: [string, string][];
  body: GrowingBody;
  /** Content-Length when upstream gave one. */
  size: number | undefined;
  requestTime: number;
  responseTime: number;
  /** Whether a store writer took it (false: shared in memory only). */
  storing: boolean;
  /** Upstream status when this answered a revalidation. */
  revalidated: boolean;
  /** What this node's shield did, when the upstream is the shield (UpstreamResponse.shieldStatus). */
  shieldStatus?: string;
}

/** A revalidation answered 304: the stored copy was refreshed and is still good. */
export interface NotModifiedOutcome {
  kind: 'not-modified';
  entry: BlobEntry;
  shieldStatus?: string;
}

/**
 * Not shareable (private, no-store, Set-Cookie, Vary: *, …). The leader takes the upstream
 * response for its own client; followers get nothing from `take()` and fetch on their own.
 */
export interface UncacheableOutcome {
  kind: 'uncacheable';
  reason: NotStoredReason;
  take(): UpstreamResponse | undefined;
}

export type FlightOutcome = SharedOutcome | NotModifiedOutcome | UncacheableOutcome;

export interface Flight {
  readonly key: string;
  /** Settles when upstream's headers are in (or the fetch failed). */
  readonly outcome: Promise<FlightOutcome>;
  /** Settles when the flight is over (body received and stored, or failed). */
  readonly done: Promise<void>;
  waiters: number;
}

export class FlightTable {
  private readonly flights = new Map<string, Flight>();

  constructor(
    /** Distinct keys in flight at once. */
    private readonly maxFlights: number,
    /** Followers per flight. */
    private readonly maxWaiters: number,
  ) {}

  get size(): number {
    return this.flights.size;
  }

  /** Join the flight for `key` as a follower; undefined when there is none or it is full. */
  join(key: string): Flight | undefined {
    const flight = this.flights.get(key);
    if (flight === undefined || flight.waiters >= this.maxWaiters) return undefined;
    flight.waiters++;
    return flight;
  }

  /** Resolves when every flight in the table now is over (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.flights.values()].map((f) => f.done));
  }

  /** The flights under way now. */
  inFlight(): IterableIterator<Flight> {
    return this.flights.values();
  }

  has(key: string): boolean {
    return this.flights.has(key);
  }

  /**
   * Start a flight for `key` (the caller is the leader). `run` returns the outcome and a promise
   * that settles when the flight is over (body fully received and stored, or failed); the entry
   * is removed then. Returns undefined when the table is full: fetch uncoalesced.
   */
  start(key: string, run: () => Promise<{ outcome: FlightOutcome; done: Promise<unknown> }>): Flight | undefined {
    if (this.flights.size >= this.maxFlights || this.flights.has(key)) return undefined;
    let resolveOutcome!: (o: FlightOutcome) => void;
    let rejectOutcome!: (e: unknown) => void;
    const outcome = new Promise<FlightOutcome>((res, rej) => {
      resolveOutcome = res;
      rejectOutcome = rej;
    });
    outcome.catch(() => undefined); // a flight nobody waits on must not be an unhandled rejection
    let finish!: () => void;
    const done = new Promise<void>((res) => {
      finish = () => {
        if (this.flights.get(key) === flight) this.flights.delete(key);
        res();
      };
    });
    const flight: Flight = { key, outcome, done, waiters: 0 };
    this.flights.set(key, flight);
    run().then(
      ({ outcome: o, done }) => {
        // Non-shared outcomes end the flight at once: followers must not queue on them.
        if (o.kind !== 'shared') finish();
        resolveOutcome(o);
        done.then(finish, finish);
      },
      (err: unknown) => {
        finish();
        rejectOutcome(err);
      },
    );
    return flight;
  }
}
