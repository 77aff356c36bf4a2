/**
 * The announce include: the one file through which the agent tells BIRD what to do. bird.conf
 * includes it and every export filter tests its two constants, so the decision survives any
 * `configure` (runtime `enable`/`disable` would not: a reconfiguration undoes them). Pure; the
 * agent writes it atomically (bird-control.ts) and then asks BIRD to `configure`.
 *
 * - `withdrawn`: nothing exported (the rendered file and every start of BIRD begin here).
 * - `announced`: the anycast prefixes exported to every neighbour.
 * - `draining`: still exported, tagged GRACEFUL_SHUTDOWN (RFC 8326 §3, community 65535:0) so
 *   neighbours move traffic away before the withdrawal.
 */

export type AnnounceState = 'withdrawn' | 'announced' | 'draining';

export const ANNOUNCE_STATES: readonly AnnounceState[] = ['withdrawn', 'announced', 'draining'];

/** The BIRD constants the export filters test (fixed names with our prefix: never a BIRD keyword). */
export const ANNOUNCE_SYMBOL = 'ANYCDN_ANNOUNCE';
export const GSHUT_SYMBOL = 'ANYCDN_GSHUT';

/** The include's text for a state; the first line names the state for people reading it. */
export function announceInclude(state: AnnounceState): string {
  const announce = state === 'withdrawn' ? 0 : 1;
  const gshut = state === 'draining' ? 1 : 0;
  return (
    `# anycdn announce state: ${state}. Rewritten by anycdn bgp agent, then BIRD reconfigured.\n` +
    `define ${ANNOUNCE_SYMBOL} = ${announce};\n` +
    `define ${GSHUT_SYMBOL} = ${gshut};\n`
  );
}

/** The state an include says, or undefined when it is not one this module wrote. */
export function parseAnnounceInclude(text: string): AnnounceState | undefined {
  return ANNOUNCE_STATES.find((state) => announceInclude(state) === text);
}
