import { afterEach, describe, expect, it } from 'vitest';
import { BackoffCheck } from '../../../src/blob/backoff-check.js';

describe('BackoffCheck', () => {
  let check: BackoffCheck | undefined;
  afterEach(() => check?.stop());

  /** Starts a check whose runs see the values of `answers` in turn, and records the wait before each run. */
  function started(answers: (number | 'throw')[]): { waits: number[]; done: Promise<void> } {
    const waits: number[] = [];
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    check = new BackoffCheck(5, 40, async () => {
      waits.push(check!.nextMs);
      const answer = answers[waits.length - 1];
      if (waits.length === answers.length) finish();
      if (answer === 'throw') throw new Error('a failed check');
      return answer ?? 0;
    });
    return { waits, done };
  }

  it('doubles its period while what it sees stays the same, up to the maximum, and starts over after a change', async () => {
    const { waits, done } = started([7, 7, 7, 7, 7, 7, 8, 8, 'throw', 8, 9]);
    await done;
    // The first run sees something new (nothing was seen before); a failed run counts as no change.
    expect(waits).toEqual([5, 5, 10, 20, 40, 40, 40, 5, 10, 20, 40]);
  });

  it('runs no more once stopped', async () => {
    const { waits, done } = started([1, 1]);
    await done;
    check!.stop();
    const runs = waits.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(waits).toHaveLength(runs);
  });

  it('refuses periods that are not positive or out of order', () => {
    expect(() => new BackoffCheck(0, 10, async () => 0)).toThrow(RangeError);
    expect(() => new BackoffCheck(20, 10, async () => 0)).toThrow(RangeError);
  });
});
