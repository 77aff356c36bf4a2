import { afterEach, describe, expect, it } from 'vitest';
import { FlushSchedule } from '../../../src/blob/flush-schedule.js';

describe('FlushSchedule', () => {
  let schedule: FlushSchedule | undefined;
  afterEach(() => schedule?.stop());

  /** Starts a schedule whose runs answer from `answers` in turn (then false), and records the wait before each run. */
  function started(answers: (boolean | 'throw')[], until: number, onRun?: (n: number) => void): { waits: number[]; done: Promise<void> } {
    const waits: number[] = [];
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    schedule = new FlushSchedule(5, 40, async () => {
      waits.push(schedule!.nextWaitMs);
      onRun?.(waits.length);
      if (waits.length === until) finish();
      const answer = answers[waits.length - 1] ?? false;
      if (answer === 'throw') throw new Error('a failed flush');
      return answer;
    });
    return { waits, done };
  }

  it('doubles its wait while runs find nothing to do, up to the idle maximum, and starts over after one that does', async () => {
    const { waits, done } = started([false, false, false, false, false, true, false, 'throw', false], 11);
    await done;
    // A failed run counts as work: the flush is tried again a period later.
    expect(waits).toEqual([5, 10, 20, 40, 40, 40, 5, 10, 5, 10, 20]);
  });

  it('runs within a period of soon(), however long its idle wait, and stays at the period after it', async () => {
    const waits: number[] = [];
    let ranAt = 0;
    schedule = new FlushSchedule(20, 2_000, async () => {
      waits.push(schedule!.nextWaitMs);
      ranAt = performance.now();
      return false;
    });
    // Idle: 20, 40, 80, 160, 320 ms; then waiting 640.
    for (let waited = 0; waits.length < 5 && waited < 3_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    expect(waits).toEqual([20, 40, 80, 160, 320]);
    await new Promise((r) => setTimeout(r, 30));
    const asked = performance.now();
    schedule.soon();
    for (let waited = 0; waits.length < 6 && waited < 3_000; waited += 5) await new Promise((r) => setTimeout(r, 5));
    expect(waits[5]).toBe(20);
    expect(ranAt - asked).toBeLessThan(200); // 20 ms, with room for a loaded machine; not the 640 it was waiting
  });

  it('counts a soon() during a run as work: the next wait is the period', async () => {
    const { waits, done } = started([false, false, false], 4, (n) => n === 3 && schedule!.soon());
    await done;
    expect(waits).toEqual([5, 10, 20, 5]);
  });

  it('runs no more once stopped', async () => {
    const { waits, done } = started([true, true], 2);
    await done;
    schedule!.stop();
    const runs = waits.length;
    await new Promise((r) => setTimeout(r, 60));
    expect(waits).toHaveLength(runs);
  });

  it('refuses periods that are not positive or out of order', () => {
    expect(() => new FlushSchedule(0, 10, async () => false)).toThrow(RangeError);
    expect(() => new FlushSchedule(20, 10, async () => false)).toThrow(RangeError);
  });
});
