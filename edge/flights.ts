/**
 * Request coalescing: at most one upstream fetch per cache key at a time. The first request for a
 * key (the leader) starts a flight; later ones (followers) join it and get the same outcome as
 * soon as upstream's headers arrive, then read the body while it is still arriving (GrowingBody).
 * Only requests that were waiting before the headers arrived are followers ("collapsed"): a request
 * arriving later is not served the flight's answer as such — the pipeline judges that response as
 * it would a stored one (a hit when it may be reused now, RFC 9111 §4) or starts a flight of its
 * own that replaces this one.
 * The table is bounded in flights and in waiters per flight; past either bound a request simply
 * fetches on its own, uncoalesced.
 */
import type { BlobEntry } from '../src/blob/blob-store.js';
import type { GrowingBody } from '../src/blob/streaming-body.js';
import type { NotStoredReason } from '../src/http/storable.js';
import type { FieldList } from './stored-view.js';
import type { UpstreamAnswer, UpstreamResponse } from './upstream.js';

/** The upstream answer was shared: every waiter reads the same body. */
export interface SharedOutcome {
  kind: 'shared';
  /** The stored key the response belongs to (includes the Vary part). */
  key: string;
  status: number;
  /** Header fields as stored (hop-by-hop and private fields removed). */
  headers: [string, string][];
  /**
   * `headers` as the pipeline and every waiter's answer read them, made once per response (and
   * held by it, not by a WeakMap: a weak entry per miss, alive as long as the stored object, is
   * work for every garbage collection).
   */
  fields: FieldList;
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
  /** The upstream answer, for the leader's access log line. */
  answer: UpstreamAnswer;
}

/** A revalidation answered 304: the stored copy was refreshed and is still good. */
export interface NotModifiedOutcome {
  kind: 'not-modified';
  entry: BlobEntry;
  /** The upstream answer, for the leader's access log line. */
  answer: UpstreamAnswer;
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

/**
 * Another process of the node fetched the response and stored it while this one waited
 * (edge/cluster-flights.ts): every waiter looks the key up again, and judges the stored copy as
 * any it finds (RFC 9111 §4).
 */
export interface StoredElsewhereOutcome {
  kind: 'stored-elsewhere';
}

export type FlightOutcome = SharedOutcome | NotModifiedOutcome | UncacheableOutcome | StoredElsewhereOutcome;

export interface Flight {
  readonly key: string;
  /** Settles when upstream's headers are in (or the fetch failed). */
  readonly outcome: Promise<FlightOutcome>;
  /** Settles when the flight is over (body received and stored, or failed). */
  readonly done: Promise<void>;
  /**
   * The shared response once its headers are in. From then on the flight takes no followers:
   * a request arriving later may read the body only as a stored response it may reuse (a hit).
   */
  delivered: SharedOutcome | undefined;
  /**
   * A later flight for the same key took this one's place and has its own answer: this one's copy
   * must not be committed over it. (While the later one still waits, this one may commit: the
   * later one's copy replaces it when it comes, and if the later one fails, this copy stays.)
   */
  superseded: boolean;
  waiters: number;
}

export class FlightTable {
  /** The newest flight per key. */
  private readonly current = new Map<string, Flight>();
  /** Every flight not over yet, including those a newer one replaced. */
  private readonly running = new Set<Flight>();

  constructor(
    /** Flights under way at once. */
    private readonly maxFlights: number,
    /** Followers per flight. */
    private readonly maxWaiters: number,
  ) {}

  get size(): number {
    return this.running.size;
  }

  /**
   * Join the flight for `key` as a follower: undefined when there is none, when it is full, or
   * when its response headers are in already (see `delivered`).
   */
  join(key: string): Flight | undefined {
    const flight = this.current.get(key);
    if (flight === undefined || flight.delivered !== undefined || flight.waiters >= this.maxWaiters) return undefined;
    flight.waiters++;
    return flight;
  }

  /** The newest flight for `key`, whatever its state. */
  get(key: string): Flight | undefined {
    return this.current.get(key);
  }

  /** Resolves when every flight under way now is over (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.running].map((f) => f.done));
  }

  /** The flights under way now, replaced ones included. */
  inFlight(): IterableIterator<Flight> {
    return this.running.values();
  }

  has(key: string): boolean {
    return this.current.has(key);
  }

  /**
   * A purge took `flight`'s key: it takes no more followers, its response is never reused for a
   * later request, and its copy is not committed unless the commit is under way already (the
   * purge removes that one once the flight is over). A new request for the key fetches anew.
   */
  retire(flight: Flight): void {
    flight.superseded = true;
    if (this.current.get(flight.key) === flight) this.current.delete(flight.key);
  }

  /**
   * Start a flight for `key` (the caller is the leader). `run` returns the outcome and a promise
   * that settles when the flight is over (body fully received and stored, or failed); the entry
   * is removed then. Returns undefined when the table is full (fetch uncoalesced), or when a
   * flight for `key` exists and `replace` is not set. With `replace`, a flight whose response was
   * delivered already gives way: the new one is what later requests join, and the old one's copy
   * is not committed once it knows (`superseded`).
   */
  start(key: string, run: (flight: Flight) => Promise<{ outcome: FlightOutcome; done: Promise<unknown> }>, replace = false): Flight | undefined {
    if (this.running.size >= this.maxFlights) return undefined;
    const previous = this.current.get(key);
    if (previous !== undefined && (!replace || previous.delivered === undefined)) return undefined;
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
        if (this.current.get(key) === flight) this.current.delete(key);
        this.running.delete(flight);
        res();
      };
    });
    const flight: Flight = { key, outcome, done, delivered: undefined, superseded: false, waiters: 0 };
    this.current.set(key, flight);
    this.running.add(flight);
    run(flight).then(
      ({ outcome: o, done }) => {
        if (previous !== undefined) previous.superseded = true;
        // Non-shared outcomes end the flight at once: followers must not queue on them.
        if (o.kind !== 'shared') finish();
        else flight.delivered = o;
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
