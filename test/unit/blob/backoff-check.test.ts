import { afterEach, describe, expect, it } from 'vitest';
import { BackoffCheck } from '../../../src/blob/backoff-check.js';

describe('BackoffCheck', () => {
  let check: BackoffCheck | undefined;
  afterEach(() => check?.stop());

  /** Starts a check whose runs answer from `answers` in turn, and records the wait before each run. */
  function started(answers: (boolean | 'throw')[]): { waits: number[]; done: Promise<void> } {
    const waits: number[] = [];
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    check = new BackoffCheck(5, 40, async () => {
      waits.push(check!.nextMs);
      const answer = answers[waits.length - 1];
      if (waits.length === answers.length) finish();
      if (answer === 'throw') throw new Error('a failed check');
      return answer ?? false;
    });
    return { waits, done };
  }

  it('doubles its period while nothing changes, up to the maximum, and starts over after a change', async () => {
    const { waits, done } = started([false, false, false, false, false, true, false, 'throw', false]);
    await done;
    // A failed run counts as no change.
    expect(waits).toEqual([5, 10, 20, 40, 40, 40, 5, 10, 20]);
  });

  it('runs no more once stopped', async () => {
    const { waits, done } = started([false, false]);
    await done;
    check!.stop();
    const runs = waits.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(waits).toHaveLength(runs);
  });

  it('refuses periods that are not positive or out of order', () => {
    expect(() => new BackoffCheck(0, 10, async () => false)).toThrow(RangeError);
    expect(() => new BackoffCheck(20, 10, async () => false)).toThrow(RangeError);
  });
});
