/**
 * The lab's BFD sessions as BIRD shows them (`show bfd sessions`), and which router–PoP pairs are
 * not Up at both ends. Pure: lab.ts asks the daemons and decides with these.
 *
 * Why both ends. A PoP whose processes were stopped (a hung host, `Lab.freeze`) comes back with
 * its BFD sessions from before the freeze; the routers have replaced theirs meanwhile (theirs
 * expired). For the few milliseconds until the PoP's BIRD drops its old session (its BGP sessions
 * got a Cease), that old session can bring a router's new session Up; the PoP then starts a new
 * session of its own, which the router's session, Up and bound to the old one, refuses ("mismatched
 * remote id"), and the router's packets are unknown to the PoP ("unknown session id"). The
 * router's session stays Up on nothing until its detection time runs out: the multiplier times
 * the interval the old session advertised while it was not Up (BIRD's `idle tx interval`, which
 * the rendered configs set to the BFD interval: 0.3 s at 100 ms × 3; BIRD's default of 1 s made it ~3 s).
 * Then it goes down, and takes the BGP session that re-established meanwhile with it: the PoP's
 * path disappears from every router a second time, whatever the routes looked like a moment
 * before. Routes alone cannot tell that this is coming; a router session that is Up while the
 * PoP's session for that router is not can.
 */
import type { LabPlan } from './topology.js';

export type BfdState = 'AdminDown' | 'Down' | 'Init' | 'Up';

/** `10.1.22.2   pop2   Up   04:49:35.203   0.100   0.300`: address, interface, state, since, interval, timeout. */
const LINE = /^\s*(\S+)\s+\S+\s+(AdminDown|Down|Init|Up)\s/;

/** Neighbour address → state of its session, from the lines of BIRD's reply to `show bfd sessions`. */
export function parseBfdSessions(lines: readonly string[]): Map<string, BfdState> {
  const sessions = new Map<string, BfdState>();
  for (const line of lines) {
    const m = LINE.exec(line);
    if (m !== null) sessions.set(m[1]!, m[2] as BfdState);
  }
  return sessions;
}

/**
 * Every router–PoP pair whose BFD session is not Up at both ends, as `r2–pop2: Up at r2, Down at
 * pop2` (a session a daemon does not have at all is `none`). `routers` and `pops` are each
 * daemon's sessions by name (parseBfdSessions).
 */
export function bfdNotUp(plan: LabPlan, routers: ReadonlyMap<string, ReadonlyMap<string, BfdState>>, pops: ReadonlyMap<string, ReadonlyMap<string, BfdState>>): string[] {
  const out: string[] = [];
  for (const router of plan.routers) {
    for (const peer of router.peers) {
      const atRouter = routers.get(router.name)?.get(peer.neighbour) ?? 'none';
      const atPop = pops.get(peer.pop)?.get(peer.local) ?? 'none';
      if (atRouter !== 'Up' || atPop !== 'Up') out.push(`${router.name}–${peer.pop}: ${atRouter} at ${router.name}, ${atPop} at ${peer.pop}`);
    }
  }
  return out;
}
