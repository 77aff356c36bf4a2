import { describe, expect, it } from 'vitest';
import { CdnError } from '../../../src/errors.js';
import { TransformLimiter } from '../../../origin/variants/limiter.js';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets queued promise callbacks run (no timers involved). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('TransformLimiter', () => {
  it('runs up to `concurrency` jobs, queues the rest in order and starts them as slots free', async () => {
    const limiter = new TransformLimiter({ concurrency: 2, queueLimit: 2, retryAfterSec: 3 });
    const gates = [deferred<string>(), deferred<string>(), deferred<string>(), deferred<string>()];
    const started: number[] = [];
    const results = gates.map((gate, i) =>
      limiter.run(() => {
        started.push(i);
        return gate.promise;
      }),
    );
    await settle();
    expect(started).toEqual([0, 1]);
    expect(limiter.stats()).toEqual({ running: 2, queued: 2, rejected: 0 });

    gates[1]!.resolve('b');
    await expect(results[1]).resolves.toBe('b');
    await settle();
    expect(started).toEqual([0, 1, 2]);
    expect(limiter.stats()).toEqual({ running: 2, queued: 1, rejected: 0 });

    gates[0]!.reject(new Error('boom'));
    await expect(results[0]).rejects.toThrow('boom');
    await settle();
    expect(started).toEqual([0, 1, 2, 3]);
    expect(limiter.stats()).toEqual({ running: 2, queued: 0, rejected: 0 });

    gates[2]!.resolve('c');
    gates[3]!.resolve('d');
    await expect(Promise.all([results[2], results[3]])).resolves.toEqual(['c', 'd']);
    expect(limiter.stats()).toEqual({ running: 0, queued: 0, rejected: 0 });
  });

  it('rejects at once with 503 overloaded and Retry-After when the queue is full, without calling fn', async () => {
    const limiter = new TransformLimiter({ concurrency: 1, queueLimit: 1, retryAfterSec: 7 });
    const gate = deferred<number>();
    const first = limiter.run(() => gate.promise);
    const second = limiter.run(async () => 2);
    let called = false;
    const third = limiter.run(async () => {
      called = true;
      return 3;
    });
    const err = await third.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CdnError);
    expect(err).toMatchObject({
      code: 'overloaded',
      source: 'internal',
      status: 503,
      message: 'transform queue is full',
      headers: { 'Retry-After': '7' },
    });
    expect(called).toBe(false);
    expect(limiter.stats()).toEqual({ running: 1, queued: 1, rejected: 1 });

    gate.resolve(1);
    await expect(Promise.all([first, second])).resolves.toEqual([1, 2]);
    // Room again: the next call runs.
    await expect(limiter.run(async () => 4)).resolves.toBe(4);
    expect(limiter.stats()).toEqual({ running: 0, queued: 0, rejected: 1 });
  });

  it('with queueLimit 0 refuses everything beyond the running jobs', async () => {
    const limiter = new TransformLimiter({ concurrency: 1, queueLimit: 0, retryAfterSec: 1 });
    const gate = deferred<void>();
    const running = limiter.run(() => gate.promise);
    await expect(limiter.run(async () => undefined)).rejects.toMatchObject({ code: 'overloaded', status: 503 });
    gate.resolve();
    await running;
  });

  it('releases the slot when fn throws synchronously', async () => {
    const limiter = new TransformLimiter({ concurrency: 1, queueLimit: 0 });
    await expect(
      limiter.run(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(limiter.stats().running).toBe(0);
    await expect(limiter.run(async () => 'ok')).resolves.toBe('ok');
  });

  it('defaults: one slot per core, 64 waiting, Retry-After 2', () => {
    const limiter = new TransformLimiter();
    expect(limiter.concurrency).toBeGreaterThanOrEqual(1);
    expect(limiter.queueLimit).toBe(64);
    expect(limiter.retryAfterSec).toBe(2);
  });

  it.each([
    [{ concurrency: 0 }, /concurrency/],
    [{ concurrency: Infinity }, /concurrency/],
    [{ concurrency: 1.5 }, /concurrency/],
    [{ queueLimit: -1 }, /queueLimit/],
    [{ queueLimit: Infinity }, /queueLimit/],
    [{ retryAfterSec: -1 }, /retryAfterSec/],
  ])('refuses an unbounded or invalid configuration %o', (options, message) => {
    expect(() => new TransformLimiter(options)).toThrow(message);
  });
});
