/**
 * Request coalescing across the processes of an edge node (edge/cluster.ts): a herd of requests
 * for one key spread over several workers is still one upstream request. In each worker the
 * flight table (edge/flights.ts) coalesces first, so only a worker's leader of a key asks here:
 *
 *   worker ── lead [id, key] ──► primary      the first to ask leads, the others follow
 *          ◄─ answer [id, lead] ─
 *   leader ── done key ────────► primary ──► every follower of the key
 *
 * A worker sends what it has to say in one message per turn of its event loop ('anycdn:flights'),
 * and the primary answers each with one message (plus one to each follower released): an IPC
 * message costs both processes a system call and a JSON round, and a busy worker has several
 * misses to say in one turn.
 *
 * The leader fetches and stores as a single process would, and says it is done once its copy is
 * committed to the node's disk (or the fetch failed, or was not stored). A follower waits for that
 * (at most its upstream deadline, `followWaitMs`), then looks the key up in the store: with a copy
 * there, its requests look the key up again (`stored-elsewhere`) and judge that copy as any stored
 * one (fresh: a hit; `no-cache`: revalidated…); with nothing usable there it fetches itself. A
 * worker that dies leaves the keys it led, and their followers look and fetch themselves.
 */
import type { BlobEntry, BlobStore } from '../src/blob/blob-store.js';
import { GenerationMap } from '../src/generation-map.js';
import { Pending, type ClusterMessage, type FlightsAnswered, type FlightsAsked, type Lead } from './cluster-protocol.js';
import type { PurgeWatermarks } from './edge-request.js';
import type { AcrossProcesses, FetchResult } from './fetcher.js';

/**
 * A fetch's place among the node's processes. `look`: a flight of the key ended lately, after this
 * worker looked the key up (else it would not ask): it looks again before it fetches.
 */
export type CrossLease = { lead: true; look: boolean; done(): void } | { lead: false; settled: Promise<void> };

/** Asks which process of the node fetches a key. */
export interface CrossFlights {
  lead(key: string): Promise<CrossLease>;
}

/** How long a worker waits for its primary's answer before it fetches alone (a primary that does not answer). */
export const LEAD_ANSWER_MS = 2_000;

/**
 * The fetch of a flight's leader in a worker, coalesced with the other workers' (see the module
 * comment). `watermarks`: the node's purge watermarks now (a copy they make absent or stale is
 * not an answer).
 */
export function acrossProcesses(flights: CrossFlights, store: BlobStore, watermarks: () => PurgeWatermarks): AcrossProcesses {
  return async (key, revalidating, fetch) => {
    const lease = await flights.lead(key);
    if (lease.lead) {
      if (lease.look) {
        const entry = await store.get(key).catch(() => undefined);
        if (entry !== undefined && usable(entry, revalidating, watermarks())) {
          lease.done();
          return { outcome: { kind: 'stored-elsewhere' }, done: Promise.resolve() };
        }
      }
      let result: FetchResult;
      try {
        result = await fetch();
      } catch (err) {
        lease.done();
        throw err;
      }
      // Once the copy is committed (visible to every process) or the fetch is over without one.
      result.done.then(lease.done, lease.done);
      return result;
    }
    await lease.settled;
    const entry = await store.get(key).catch(() => undefined);
    if (entry === undefined || !usable(entry, revalidating, watermarks())) return fetch();
    return { outcome: { kind: 'stored-elsewhere' }, done: Promise.resolve() };
  };
}

/**
 * Whether the copy another process stored answers this fetch: not made absent or stale by a
 * purge since, and for a revalidation, newer than the stale copy it was asked for.
 */
export function usable(entry: BlobEntry, revalidating: BlobEntry | undefined, watermarks: PurgeWatermarks): boolean {
  const storedAt = entry.meta.storedAt;
  if (entry.meta.invalidated === true || storedAt <= watermarks.absentBefore || storedAt <= watermarks.staleBefore) return false;
  return revalidating === undefined || storedAt > revalidating.meta.storedAt;
}

/** A worker's side: asks its primary over IPC, and hears when the leader of a key it follows is done. */
export class IpcFlights implements CrossFlights {
  private readonly answers = new Pending<Lead>();
  /** Per key, the followers waiting for its leader (set before the question goes: the answer and the leader's word may come together). */
  private readonly waiting = new Map<string, Set<() => void>>();
  /** What goes in the next message (one per turn of the event loop). */
  private batch: FlightsAsked = {};
  private scheduled = false;

  constructor(
    private readonly send: (message: ClusterMessage) => void,
    /** The longest a follower waits for its leader (the upstream deadline). */
    private readonly followWaitMs: number,
  ) {}

  async lead(key: string): Promise<CrossLease> {
    let heard!: () => void;
    const settled = new Promise<void>((resolve) => (heard = resolve));
    const waiters = this.waiting.get(key) ?? new Set();
    waiters.add(heard);
    this.waiting.set(key, waiters);
    const lead = await this.answers.ask((id) => this.queue('lead', [id, key]), LEAD_ANSWER_MS);
    if (lead !== false) {
      this.forget(key, heard);
      // (Unanswered: this worker fetches alone; the primary ignores the word of a worker that does not lead.)
      return { lead: true, look: lead === 'look', done: () => this.queue('done', key) };
    }
    let timer: NodeJS.Timeout | undefined;
    const waited = Promise.race([settled, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.followWaitMs)))]).finally(() => {
      clearTimeout(timer);
      this.forget(key, heard);
    });
    return { lead: false, settled: waited };
  }

  /** A message from the primary: true when it was one of these. */
  onMessage(message: ClusterMessage): boolean {
    if (message.type !== 'anycdn:flights-answer') return false;
    for (const [id, lead] of message.answers ?? []) this.answers.answer(id, lead);
    for (const key of message.done ?? []) {
      const waiters = this.waiting.get(key);
      this.waiting.delete(key);
      for (const heard of waiters ?? []) heard();
    }
    return true;
  }

  private queue<K extends keyof FlightsAsked>(kind: K, item: NonNullable<FlightsAsked[K]>[number]): void {
    ((this.batch[kind] ??= []) as (typeof item)[]).push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const batch = this.batch;
      this.batch = {};
      this.send({ type: 'anycdn:flights', ...batch });
    });
  }

  private forget(key: string, heard: () => void): void {
    const waiters = this.waiting.get(key);
    if (waiters === undefined) return;
    waiters.delete(heard);
    if (waiters.size === 0) this.waiting.delete(key);
  }
}

/**
 * Keys whose flight ended lately that the primary remembers (see FlightLeases.receive): two
 * generations of this many, ~1 s of cold misses at the rate of two busy workers.
 */
const RECENTLY_DONE = 4096;

/** A key being fetched: the worker that leads it, and those that follow it (undefined until one does: most keys have none). */
interface Flight<W> {
  leader: W;
  followers: Set<W> | undefined;
}

/**
 * The primary's side: who leads each key being fetched, and who follows it. `W` is a worker.
 * Every cold miss of the node passes here twice (its lead and its done) in the primary, so a
 * flight costs one Map entry and no more: no set of followers until one comes, and no index of
 * the keys each worker leads (a worker's exit, rare, looks through the flights instead).
 */
export class FlightLeases<W> {
  private readonly flights = new Map<string, Flight<W>>();
  private readonly recentlyDone = new GenerationMap<string, true>(RECENTLY_DONE);

  /** `from` asks to fetch `key`: true when it leads (nobody does, or it does already), else it follows. */
  lead(from: W, key: string): boolean {
    const flight = this.flights.get(key);
    if (flight === undefined) {
      this.flights.set(key, { leader: from, followers: undefined });
      return true;
    }
    if (flight.leader === from) return true;
    (flight.followers ??= new Set()).add(from);
    return false;
  }

  /** The leader of `key` is done: the followers to tell (none when `from` does not lead it). */
  done(from: W, key: string): W[] {
    const flight = this.flights.get(key);
    if (flight === undefined || flight.leader !== from) return [];
    this.flights.delete(key);
    this.recentlyDone.set(key, true);
    return flight.followers === undefined ? [] : [...flight.followers];
  }

  /** `from` is gone: the keys it led end, each with the followers to tell. */
  release(from: W): [string, W[]][] {
    const led = [...this.flights].filter(([, flight]) => flight.leader === from).map(([key]) => key);
    const out = led.map((key): [string, W[]] => [key, this.done(from, key)]);
    for (const flight of this.flights.values()) flight.followers?.delete(from);
    return out;
  }

  /**
   * A worker's batch ('anycdn:flights'): what to send to whom — to `from`, the answers to its
   * questions; to each follower of a key `from` is done with, that key. A worker asking about a
   * key whose flight ended lately leads with 'look': it looked the key up before that flight's
   * copy was committed (else it would not ask), so it looks again before fetching a second time
   * (and other workers asking meanwhile follow it, as for any leader).
   */
  receive(from: W, asked: FlightsAsked): Map<W, FlightsAnswered> {
    const out = new Map<W, FlightsAnswered>();
    const to = (w: W): FlightsAnswered => {
      let answer = out.get(w);
      if (answer === undefined) out.set(w, (answer = {}));
      return answer;
    };
    for (const key of asked.done ?? []) for (const f of this.done(from, key)) (to(f).done ??= []).push(key);
    for (const [id, key] of asked.lead ?? []) {
      const look = !this.flights.has(key) && this.recentlyDone.get(key) === true;
      const lead = this.lead(from, key);
      (to(from).answers ??= []).push([id, lead && look ? 'look' : lead]);
    }
    return out;
  }

  /** `from` is gone: the keys it led end; what to tell each of their followers. */
  leave(from: W): Map<W, FlightsAnswered> {
    const out = new Map<W, FlightsAnswered>();
    for (const [key, followers] of this.release(from)) {
      for (const f of followers) {
        const answer = out.get(f) ?? {};
        (answer.done ??= []).push(key);
        out.set(f, answer);
      }
    }
    return out;
  }

  /** Keys being fetched (tests, metrics). */
  get size(): number {
    return this.flights.size;
  }
}
