/**
 * The health verdict from a stream of probe results: it changes only after `rise` passing probes
 * in a row (unhealthy → healthy) or `fall` failing ones (healthy → unhealthy), so one slow answer
 * does not move traffic. It starts unhealthy: nothing is announced before the edge has proved
 * itself. A draining edge (503 saying `draining`) is a planned stop, judged unhealthy at once.
 * Pure; the agent feeds it one result per probe.
 */

export type ProbeResult = { kind: 'ok' } | { kind: 'draining' } | { kind: 'fail'; reason: string };

export interface Hysteresis {
  healthy: boolean;
  /** Passing probes in a row while unhealthy. */
  successes: number;
  /** Failing probes in a row while healthy. */
  failures: number;
  /** The last probe said the edge is draining. */
  draining: boolean;
}

export interface Thresholds {
  rise: number;
  fall: number;
}

export const INITIAL_HYSTERESIS: Hysteresis = Object.freeze({ healthy: false, successes: 0, failures: 0, draining: false });

export interface Verdict {
  state: Hysteresis;
  /** The verdict (`healthy`) changed with this result. */
  changed: boolean;
  /** Why the verdict is what it is now, for the log. */
  reason: string;
}

export function judge(state: Hysteresis, result: ProbeResult, { rise, fall }: Thresholds): Verdict {
  switch (result.kind) {
    case 'draining':
      return { state: { healthy: false, successes: 0, failures: 0, draining: true }, changed: state.healthy, reason: 'the edge is draining' };
    case 'ok': {
      if (state.healthy) return { state: { ...state, failures: 0, draining: false }, changed: false, reason: 'healthy' };
      const successes = state.successes + 1;
      if (successes >= rise) {
        return { state: { healthy: true, successes: 0, failures: 0, draining: false }, changed: true, reason: `${plural(successes, 'passing probe')} in a row` };
      }
      return { state: { ...state, successes, draining: false }, changed: false, reason: `${successes} of ${rise} passing probes` };
    }
    case 'fail': {
      if (!state.healthy) return { state: { ...state, successes: 0, draining: false }, changed: false, reason: result.reason };
      const failures = state.failures + 1;
      if (failures >= fall) {
        return { state: { healthy: false, successes: 0, failures: 0, draining: false }, changed: true, reason: `${plural(failures, 'failed probe')} in a row (last: ${result.reason})` };
      }
      return { state: { ...state, failures, draining: false }, changed: false, reason: `${failures} of ${fall} failed probes (${result.reason})` };
    }
  }
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
