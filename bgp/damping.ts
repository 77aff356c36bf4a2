/**
 * Flap damping: an edge whose health verdict changes more than `maxFlips` times within `window`
 * is held withdrawn for `holdDown`, so a node that cannot make up its mind does not make every
 * router on the path recompute its best route again and again. Pure, with `now` passed in.
 */

export interface DampingConfig {
  maxFlips: number;
  window: number;
  holdDown: number;
}

export interface Damping {
  /** When the verdict changed, oldest first, within the window. */
  flips: readonly number[];
  /** Held withdrawn until this moment (exclusive), or not held. */
  heldUntil: number | undefined;
}

export const INITIAL_DAMPING: Damping = Object.freeze({ flips: Object.freeze([]) as readonly number[], heldUntil: undefined });

/** Record a verdict change at `now`. `heldDown` says this change started a hold-down. */
export function recordFlip(state: Damping, now: number, config: DampingConfig): { state: Damping; heldDown: boolean; flips: number } {
  const flips = [...state.flips.filter((t) => t > now - config.window), now];
  if (flips.length > config.maxFlips && !isHeldDown(state, now)) {
    // A fresh count after the hold-down: it takes a new bout of flapping to be held again.
    return { state: { flips: [], heldUntil: now + config.holdDown }, heldDown: true, flips: flips.length };
  }
  return { state: { flips, heldUntil: state.heldUntil }, heldDown: false, flips: flips.length };
}

export function isHeldDown(state: Damping, now: number): boolean {
  return state.heldUntil !== undefined && now < state.heldUntil;
}
