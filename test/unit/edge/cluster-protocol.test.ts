/**
 * Waiting on a cluster worker (edge/cluster-protocol.ts): unlessExited races an answer against
 * the worker's exit and takes its exit listener off either way, so a worker asked many times
 * keeps none; exitOf's listener goes with the exit. A fake worker: an EventEmitter with isDead().
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { exitOf, unlessExited } from '../../../edge/cluster-protocol.js';

class FakeWorker extends EventEmitter {
  private dead = false;

  isDead(): boolean {
    return this.dead;
  }

  /** Exits as node:cluster's Worker does: dead, then 'exit' with its code and signal. */
  exit(): void {
    this.dead = true;
    this.emit('exit', null, 'SIGKILL');
  }

  get exitListeners(): number {
    return this.listenerCount('exit');
  }
}

/** A promise and its resolve/reject, to answer when the test says. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const never = new Promise<never>(() => undefined);

describe('unlessExited', () => {
  it('gives the answer, and takes its exit listener off', async () => {
    const worker = new FakeWorker();
    const answer = deferred<string>();
    const waiting = unlessExited(worker, answer.promise);
    expect(worker.exitListeners).toBe(1);
    answer.resolve('held');
    expect(await waiting).toBe('held');
    expect(worker.exitListeners).toBe(0);
  });

  it('gives undefined when the worker exits first, with its listener gone, whatever the answer does later', async () => {
    const worker = new FakeWorker();
    const answer = deferred<string>();
    const waiting = unlessExited(worker, answer.promise);
    worker.exit();
    expect(await waiting).toBeUndefined();
    expect(worker.exitListeners).toBe(0);
    answer.resolve('too late');
    expect(await waiting).toBeUndefined();
  });

  it('passes on an answer that fails, and takes its listener off', async () => {
    const worker = new FakeWorker();
    const answer = deferred<string>();
    const waiting = unlessExited(worker, answer.promise);
    answer.reject(new Error('channel closed'));
    await expect(waiting).rejects.toThrow('channel closed');
    expect(worker.exitListeners).toBe(0);
  });

  it('gives undefined at once for a dead worker, adding no listener, though no answer ever comes', async () => {
    const worker = new FakeWorker();
    worker.exit();
    const waiting = unlessExited(worker, never);
    expect(worker.exitListeners).toBe(0);
    expect(await waiting).toBeUndefined();
  });

  it('leaves no listener behind on a worker asked many times', async () => {
    const worker = new FakeWorker();
    for (let i = 0; i < 50; i++) expect(await unlessExited(worker, Promise.resolve(i))).toBe(i);
    expect(worker.exitListeners).toBe(0);
    // Many at once: one listener each while they wait, none once answered.
    const answers = Array.from({ length: 20 }, () => deferred<number>());
    const waiting = answers.map((a) => unlessExited(worker, a.promise));
    expect(worker.exitListeners).toBe(20);
    answers.forEach((a, i) => a.resolve(i));
    expect(await Promise.all(waiting)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(worker.exitListeners).toBe(0);
  });
});

describe('exitOf', () => {
  it('resolves at the exit, its listener gone with it', async () => {
    const worker = new FakeWorker();
    let exited = false;
    const done = exitOf(worker).then(() => (exited = true));
    expect(worker.exitListeners).toBe(1);
    await Promise.resolve();
    expect(exited).toBe(false);
    worker.exit();
    await done;
    expect(exited).toBe(true);
    expect(worker.exitListeners).toBe(0);
  });

  it('resolves at once for a dead worker, adding no listener', async () => {
    const worker = new FakeWorker();
    worker.exit();
    const done = exitOf(worker);
    expect(worker.exitListeners).toBe(0);
    await done;
  });
});
