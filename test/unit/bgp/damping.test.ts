import { describe, expect, it } from 'vitest';
import { INITIAL_DAMPING, isHeldDown, recordFlip, type Damping } from '../../../bgp/damping.js';

const config = { maxFlips: 3, window: 60_000, holdDown: 300_000 };

function flipsAt(times: number[]): { state: Damping; heldAt: number[] } {
  let state = INITIAL_DAMPING;
  const heldAt: number[] = [];
  for (const t of times) {
    const r = recordFlip(state, t, config);
    state = r.state;
    if (r.heldDown) heldAt.push(t);
  }
  return { state, heldAt };
}

describe('flap damping', () => {
  it.each<[string, number[], number[], number | undefined]>([
    ['three flips in the window are allowed', [0, 10_000, 20_000], [], undefined],
    ['the fourth within the window holds down', [0, 10_000, 20_000, 30_000], [30_000], 330_000],
    ['flips older than the window do not count', [0, 10_000, 20_000, 60_000], [], undefined],
    ['just inside the window they do', [0, 10_000, 20_000, 59_999], [59_999], 359_999],
    ['flips during a hold-down do not extend it', [0, 1, 2, 3, 4, 5, 6, 7], [3], 300_003],
    ['after the hold-down a new bout is needed', [0, 1, 2, 3, 400_000, 400_001, 400_002], [3], 300_003],
    ['a new bout after the hold-down holds again', [0, 1, 2, 3, 400_000, 400_001, 400_002, 400_003], [3, 400_003], 700_003],
  ])('%s', (_what, times, heldAt, heldUntil) => {
    const r = flipsAt(times);
    expect(r.heldAt).toEqual(heldAt);
    expect(r.state.heldUntil).toBe(heldUntil);
  });

  it.each([
    [29_999, true],
    [329_998, true],
    [329_999, false],
  ])('held at %i: %s', (now, held) => {
    expect(isHeldDown(flipsAt([0, 10_000, 20_000, 29_999]).state, now)).toBe(held);
  });

  it('keeps only the flips of the window', () => {
    expect(flipsAt([0, 10_000, 70_000, 75_000]).state.flips).toEqual([70_000, 75_000]);
  });
});
