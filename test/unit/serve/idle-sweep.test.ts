/**
 * IdleSweep's decisions with a literal clock: what counts as progress (a read, a write started or
 * finished), when an idle socket is handed over, and that watching again restarts its limit.
 */
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { IdleSweep } from '../../../src/serve/idle-sweep.js';

/** The three counters the sweep reads of a socket, set by the test as a connection would move them. */
interface Counters {
  bytesRead: number;
  bytesWritten: number;
  writableLength: number;
}

function setup(): { sweep: IdleSweep; clock: { t: number }; idle: Counters[]; socket: () => Counters & Socket } {
  const clock = { t: 1_000 };
  const idle: Counters[] = [];
  const sweep = new IdleSweep(100, (s) => idle.push(s as unknown as Counters), () => clock.t);
  const socket = () => ({ bytesRead: 0, bytesWritten: 0, writableLength: 0 }) as Counters & Socket;
  return { sweep, clock, idle, socket };
}

describe('IdleSweep', () => {
  it('hands over a socket once it has made no progress for its limit, and stops watching it', () => {
    const { sweep, clock, idle, socket } = setup();
    const a = socket();
    sweep.watch(a, 500);
    clock.t = 1_499;
    sweep.sweep();
    expect(idle).toEqual([]);
    clock.t = 1_500;
    sweep.sweep();
    expect(idle).toEqual([a]);
    expect(sweep.size).toBe(0);
    clock.t = 9_000;
    sweep.sweep();
    expect(idle).toEqual([a]);
  });

  it.each([
    ['a read', (s: Counters) => (s.bytesRead += 10)],
    ['a write started', (s: Counters) => (s.bytesWritten += 51_200)],
    ['a write finished', (s: Counters) => (s.writableLength = 0)],
  ])('counts %s as progress: the limit runs again from the look that saw it', (_case, move) => {
    const { sweep, clock, idle, socket } = setup();
    const a = socket();
    a.writableLength = 51_200;
    sweep.watch(a, 500);
    clock.t = 1_400;
    move(a);
    sweep.sweep();
    clock.t = 1_899;
    sweep.sweep();
    expect(idle).toEqual([]);
    clock.t = 1_900;
    sweep.sweep();
    expect(idle).toEqual([a]);
  });

  it('restarts the limit when a socket is watched again (the first answer: keep-alive from then)', () => {
    const { sweep, clock, idle, socket } = setup();
    const a = socket();
    const b = socket();
    sweep.watch(a, 300);
    sweep.watch(b, 300);
    clock.t = 1_200;
    sweep.watch(a, 1_000);
    clock.t = 1_300;
    sweep.sweep();
    expect(idle).toEqual([b]);
    clock.t = 2_199;
    sweep.sweep();
    expect(idle).toEqual([b]);
    clock.t = 2_200;
    sweep.sweep();
    expect(idle).toEqual([b, a]);
  });

  it('forgets an unwatched socket, and refuses a period that is not positive', () => {
    const { sweep, clock, idle, socket } = setup();
    const a = socket();
    sweep.watch(a, 100);
    sweep.unwatch(a);
    clock.t = 5_000;
    sweep.sweep();
    expect(idle).toEqual([]);
    expect(sweep.size).toBe(0);
    expect(() => new IdleSweep(0, () => undefined)).toThrow(RangeError);
  });
});
