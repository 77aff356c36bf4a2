/**
 * The transform limiter: at most `concurrency` image transforms run at once, at most `queueLimit`
 * wait, and past that a request is refused at once with 503 and `Retry-After` instead of piling up
 * memory and latency. Load shedding at the origin is what lets edges serve stale copies and retry
 * elsewhere rather than time out. First come, first served.
 */
import os from 'node:os';
import { CdnError } from '../../src/errors.js';

export interface TransformLimiterOptions {
  /**
   * Transforms running at once. Default `os.availableParallelism()`: sharp runs one libvips
   * thread per image here, so one transform per core keeps every core busy without making each
   * transform slower.
   */
  concurrency?: number;
  /**
   * Transforms waiting for a slot. Default 64: at ~0.1 s per typical transform on 2 cores that is
   * a few seconds of backlog; beyond it the wait would outlast clients' patience, and each waiter
   * holds a request open.
   */
  queueLimit?: number;
  /**
   * Seconds announced in `Retry-After` when the queue is full. Default 2: long enough for the
   * backlog to move, short enough for an edge to retry within a page load.
   */
  retryAfterSec?: number;
}

export interface TransformLimiterStats {
  running: number;
  queued: number;
  /** Calls refused because the queue was full, since creation. */
  rejected: number;
}

interface Waiter {
  start: () => void;
}

export class TransformLimiter {
  readonly concurrency: number;
  readonly queueLimit: number;
  readonly retryAfterSec: number;
  #running = 0;
  #rejected = 0;
  readonly #queue: Waiter[] = [];

  constructor(options: TransformLimiterOptions = {}) {
    this.concurrency = options.concurrency ?? os.availableParallelism();
    this.queueLimit = options.queueLimit ?? 64;
    this.retryAfterSec = options.retryAfterSec ?? 2;
    // Everything bounded: an infinite or fractional bound is a configuration error, not a choice.
    if (!Number.isSafeInteger(this.concurrency) || this.concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${this.concurrency}`);
    }
    if (!Number.isSafeInteger(this.queueLimit) || this.queueLimit < 0) {
      throw new RangeError(`queueLimit must be a non-negative integer, got ${this.queueLimit}`);
    }
    if (!Number.isSafeInteger(this.retryAfterSec) || this.retryAfterSec < 0) {
      throw new RangeError(`retryAfterSec must be a non-negative integer, got ${this.retryAfterSec}`);
    }
  }

  /**
   * Runs `fn` when a slot is free and settles with its result. Rejects at once, without calling
   * `fn`, with CdnError `overloaded` (503, `Retry-After`) when all slots are busy and the queue is
   * full. The slot is held until the promise `fn` returns settles.
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running < this.concurrency) return this.#start(fn);
    if (this.#queue.length >= this.queueLimit) {
      this.#rejected += 1;
      return Promise.reject(
        new CdnError('overloaded', 'internal', 'transform queue is full', {
          status: 503,
          headers: { 'Retry-After': String(this.retryAfterSec) },
        }),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ start: () => this.#start(fn).then(resolve, reject) });
    });
  }

  stats(): TransformLimiterStats {
    return { running: this.#running, queued: this.#queue.length, rejected: this.#rejected };
  }

  async #start<T>(fn: () => Promise<T>): Promise<T> {
    this.#running += 1;
    try {
      return await fn();
    } finally {
      this.#running -= 1;
      this.#queue.shift()?.start();
    }
  }
}
