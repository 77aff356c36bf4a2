/**
 * What the processes of an edge node say to each other (edge/cluster.ts, the primary and its
 * shield; edge/cluster-worker.ts, each worker; edge/cluster-flights.ts, their coalescing): the messages over node:cluster's IPC channel, and
 * the questions one process asks another and waits for (unless it exits meanwhile).
 */
import cluster from 'node:cluster';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { EdgeConfig } from './config.js';
import type { PurgeWatermarks } from './edge-request.js';
import type { PurgeCount } from './purge/purge-apply.js';
import type { Purge } from '../src/purge/purge-request.js';
import type { IndexCommits } from '../src/blob/disk-options.js';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** What a worker needs to start, from its primary at once. */
export interface WorkerStart {
  /** The node's configuration, as the primary parsed and validated it (plain JSON data). */
  config: EdgeConfig;
  /** The worker's co-writer id of the disk cache (its slot in the node, 1…workers: a replacement takes the dead worker's). */
  writer: number;
  /**
   * The primary has the disk cache open as its owner already. Else the worker opens it before its
   * owner when the folder allows that, or asks for the owner's open ('anycdn:disk-wanted') and
   * waits for 'anycdn:disk-owned'.
   */
  diskOwned: boolean;
  /** The session ticket key every worker uses (base64), so a client resumes on whichever worker takes its next connection. */
  ticketKey: string | undefined;
}

/** What a worker's batch of fetches says (see 'anycdn:flights'). */
export interface FlightsAsked {
  lead?: [id: number, key: string][];
  done?: string[];
}

/** The primary's answer to a lead question: lead, follow, or lead after looking at the store again (edge/cluster-flights.ts). */
export type Lead = boolean | 'look';

/** What the primary answers (see 'anycdn:flights-answer'). */
export interface FlightsAnswered {
  answers?: [id: number, lead: Lead][];
  done?: string[];
}

export type ClusterMessage =
  | { type: 'anycdn:start-request' }
  | ({ type: 'anycdn:start' } & WorkerStart)
  | { type: 'anycdn:disk-owned' }
  | { type: 'anycdn:disk-wanted' }
  /**
   * A process opens the disk cache's index while every other one holds its commits
   * (DiskBlobStoreOptions.exclusiveEnvOpen; SharedIndexState.hold says why), one open at a time
   * in the node: a worker asks to open ('disk-open'), the primary has the others hold theirs
   * ('disk-hold', answered 'disk-held' once those in flight are done) and answers 'disk-open-go';
   * the worker opens, says 'disk-open-done' (with the id of the go: a worker has one open at a
   * time; a go it no longer waits for is answered at once), and the others are released
   * ('disk-release'). The primary's own open as the owner goes the same way.
   */
  | { type: 'anycdn:disk-open' }
  | { type: 'anycdn:disk-open-go'; id: number }
  | { type: 'anycdn:disk-open-done'; id: number }
  | { type: 'anycdn:disk-hold'; id: number }
  | { type: 'anycdn:disk-held'; id: number }
  | { type: 'anycdn:disk-release'; id: number }
  | { type: 'anycdn:listening'; url: string; https?: string | undefined }
  | { type: 'anycdn:invalidate'; primary: string }
  | { type: 'anycdn:purge-member' }
  | { type: 'anycdn:purge'; id: number; purges: Purge[] }
  | { type: 'anycdn:purge-applied'; id: number }
  | { type: 'anycdn:purge-watermarks'; watermarks: PurgeWatermarks }
  | { type: 'anycdn:purge-local'; id: number; purge: Purge }
  | { type: 'anycdn:purge-local-done'; id: number; count?: PurgeCount; error?: string }
  | { type: 'anycdn:drain' }
  | { type: 'anycdn:reopen-logs' }
  | { type: 'anycdn:reload-tls' }
  | { type: 'anycdn:metrics-request'; id: number }
  | { type: 'anycdn:metrics-collect'; id: number }
  | { type: 'anycdn:metrics-json'; id: number; json: MetricsJson }
  | { type: 'anycdn:metrics-text'; id: number; text: string }
  /**
   * A worker's fetches (edge/cluster-flights.ts), batched per turn of its event loop: keys it would
   * fetch (each with the id of its question: it leads, or follows the worker that does), and keys
   * whose fetch it led and has done (its copy committed, or none).
   */
  | ({ type: 'anycdn:flights' } & FlightsAsked)
  /** The primary's answers to one batch: which questions lead; and, to a follower, keys whose leader is done. */
  | ({ type: 'anycdn:flights-answer' } & FlightsAnswered)
  /** A worker's hits since its last batch, for the disk's recency (src/blob/read-hashes.ts): unchecked until its receiver checks it. */
  | { type: 'anycdn:reads'; hashes: unknown }
  /** A worker's disk writes reached into the room its owner keeps free for co-writers (src/blob/disk-blob-store.ts onRoomWanted): the owner evicts. */
  | { type: 'anycdn:room' };

/** The most workers a node runs (edge/config.ts). */
export const MAX_WORKERS = 64;
/** Marks a worker process of an edge cluster (set by its primary). */
export const WORKER_ENV = 'ANYCDN_EDGE_WORKER';
/** How long the metrics sum waits for a worker's numbers before leaving it out. */
export const METRICS_WAIT_MS = 2_000;
/**
 * A worker that has not confirmed a purge in this time is stopped (and replaced): its memory goes
 * with it, so the purge holds for the node and can be acknowledged; a stuck worker never holds up
 * the node's purges for longer.
 */
export const PURGE_CONFIRM_MS = 10_000;

/**
 * A worker that has not held its disk commits this long after it was asked is warned about: a
 * healthy one may be late (its last commit waits on a slow fsync on a loaded box), so the open
 * keeps waiting for it, up to DISK_HOLD_MS.
 */
export const DISK_HOLD_WARN_MS = 5_000;
/**
 * A worker that has not held its disk commits this long after it was asked is stopped (and
 * replaced): an open of the disk cache never waits longer for it, nor runs beside its commits.
 */
export const DISK_HOLD_MS = 60_000;
/** How long an open waits for a worker it stopped (DISK_HOLD_MS) to exit, before it runs anyway. */
export const DISK_KILL_WAIT_MS = 5_000;
/** A worker's open of the disk cache holds the other processes' commits for at most this long. */
export const DISK_OPEN_MS = 10_000;
/**
 * A hold whose release never comes (its sender died) lets go by itself after this long: past
 * every wait of the open it was asked for (the other holds, a stopped worker's exit, the open).
 */
export const DISK_HELD_MAX_MS = DISK_HOLD_MS + DISK_KILL_WAIT_MS + DISK_OPEN_MS;
/**
 * How long a process waits for its turn to open the disk cache's index (the primary runs one open
 * at a time, each within DISK_HELD_MAX_MS: a later turn means the node is stuck), and a worker for
 * its owner's open. Past it, the worker fails with a message and the primary replaces it.
 */
export const DISK_TURN_MS = 2 * DISK_HELD_MAX_MS;

/** Holds this process's disk commits (`commits`, undefined while it has no cache open) for at most `maxMs` (IndexCommits.hold). */
export async function holdWithin(commits: IndexCommits | undefined, maxMs: number): Promise<() => void> {
  return commits === undefined ? () => undefined : commits.hold(maxMs);
}

/** Questions sent to another process, each answered by a message carrying its id, or not at all within a time. */
export class Pending<T> {
  private nextId = 0;
  private readonly waiting = new Map<number, (answer: T) => void>();

  /** Sends the question with a fresh id; resolves with the answer, or undefined after `timeoutMs`. */
  ask(send: (id: number) => void, timeoutMs: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      send(id);
    });
  }

  answer(id: number, answer: T): void {
    this.waiting.get(id)?.(answer);
    this.waiting.delete(id);
  }
}

/** What waiting on a worker needs of it (node:cluster's Worker has it): whether it is dead, and its 'exit' event. */
export interface ExitingWorker {
  isDead(): boolean;
  once(event: 'exit', listener: () => void): unknown;
  off(event: 'exit', listener: () => void): unknown;
}

/** Resolves when the worker has exited (at once if it has); its listener goes with the exit. For a wait that lasts the worker's life. */
export function exitOf(worker: ExitingWorker): Promise<void> {
  return new Promise((resolve) => (worker.isDead() ? resolve() : worker.once('exit', () => resolve())));
}

/**
 * `answer`, or undefined once the worker has exited, whichever comes first; its exit listener is
 * removed then, so a worker asked many times (an open per replacement of another) keeps none.
 */
export function unlessExited<T>(worker: ExitingWorker, answer: Promise<T>): Promise<T | undefined> {
  if (worker.isDead()) return Promise.resolve(undefined);
  let onExit = (): void => undefined;
  const exited = new Promise<undefined>((resolve) => worker.once('exit', (onExit = () => resolve(undefined))));
  return Promise.race([answer, exited]).finally(() => worker.off('exit', onExit));
}

/** This process is a worker of an edge cluster (forked by forkEdgeCluster). */
export function isEdgeWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] !== undefined;
}
