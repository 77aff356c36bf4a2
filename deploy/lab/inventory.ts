/**
 * The lab's anycast inventory (the file `anycdn bgp render` reads), as a pure function of the
 * plan and the lab's timings. It describes the whole lab deployment: the anycast prefix, the
 * origin, every PoP with its one node and its sessions to every client router.
 *
 * Real nodes are separate hosts with the same file layout (`paths`, `edge.cacheDir`); the lab's
 * PoPs share one machine, so each PoP is rendered from its own copy of the inventory that differs
 * only in those paths (`popFolder`), and keeps its own node's files.
 */
import { stringify } from 'yaml';
import { formatDuration } from '../../bgp/inventory-checks.js';
import { ANYCAST_PREFIX, EDGE_PORT, ORIGIN_ADDRESS, ORIGIN_PORT, type LabPlan, type LabPop } from './topology.js';

/** Milliseconds unless said otherwise. */
export interface LabTimings {
  /** The agent's probes of /_cdn/healthz. */
  health: { interval: number; timeout: number; rise: number; fall: number };
  drain: { time: number; gracefulShutdown: number; convergenceMargin: number };
  bfd: { enabled: boolean; interval: number; multiplier: number };
  /**
   * BIRD's BGP timers, whole seconds (as milliseconds); `routersPassive`: the client routers
   * never open a session, each PoP does (router-config.ts says why, the hung-PoP tests what
   * changes when they do, as most real peers' routers do).
   */
  sessions: { holdTime: number; connectDelayTime: number; connectRetryTime: number; errorWaitTime: { min: number; max: number }; routersPassive: boolean };
}

/**
 * The lab's defaults, tuned for failover within a second or two on a loaded machine:
 * - health every 500 ms with a 500 ms timeout, withdrawn after 3 failures (a crashed edge refuses
 *   at once: 1–1.5 s), announced after 3 passes. A probe that timed out on a loaded machine (load
 *   13–16, the lab at nice 10) was the edge not being scheduled, not the agent running late: the
 *   edge's request log shows the probe arriving ~390 ms after it was sent, its /proc schedstat
 *   +517 ms of run-queue wait in that half second against +18 ms for the agent beside it (the
 *   agent counts an answer that came in time while it was itself late: health-probe.ts). With
 *   250 ms × 3, 0.75 s of starvation withdrew a healthy edge; it now takes 1.5 s in a row, and a
 *   hung edge whose PoP still runs is still withdrawn (BFD covers a hung host);
 * - BFD 100 ms × 5 on both ends: a frozen PoP is noticed in about 0.5 s. With × 3, a client
 *   router's BIRD not scheduled for 0.3 s on a loaded machine had both PoPs it still reached
 *   drop their sessions with it at the same moment (BFD down on their side, `Received: Cease`
 *   in its log), and its clients moved for nothing;
 * - the BGP hold time left at its default (90 s): when a frozen PoP moves in a second, BFD did it;
 * - connect delay, retry and error wait of 1–2 s, so sessions come up in seconds after a restart
 *   (BIRD's defaults wait 5 s before the first attempt and a minute after an error);
 * - a 2.5 s drain: up to 1 s to notice (interval + timeout), 0.5 s of graceful shutdown, then 1 s
 *   for routers to converge.
 */
export const LAB_TIMINGS: LabTimings = {
  health: { interval: 500, timeout: 500, rise: 3, fall: 3 },
  drain: { time: 2500, gracefulShutdown: 500, convergenceMargin: 1000 },
  bfd: { enabled: true, interval: 100, multiplier: 5 },
  sessions: { holdTime: 90_000, connectDelayTime: 1000, connectRetryTime: 1000, errorWaitTime: { min: 1000, max: 2000 }, routersPassive: true },
};

/** Where one PoP's node keeps its files on the lab machine. */
export function popFolder(runDir: string, pop: LabPop): { config: string; state: string; run: string; cache: string } {
  const base = `${runDir}/${pop.name}`;
  return { config: `${base}/etc`, state: `${base}/state`, run: `${base}/run`, cache: `${base}/cache` };
}

/** The lab inventory with `pop`'s file layout, as YAML. */
export function labInventory(plan: LabPlan, runDir: string, pop: LabPop, timings: LabTimings = LAB_TIMINGS): string {
  const folder = popFolder(runDir, pop);
  const d = formatDuration;
  const inventory = {
    anycast: { prefixes: [ANYCAST_PREFIX] },
    origin: { url: `http://${ORIGIN_ADDRESS}:${ORIGIN_PORT}` },
    edge: { listen: `0.0.0.0:${EDGE_PORT}`, cacheDir: folder.cache, workers: 1 },
    health: { interval: d(timings.health.interval), timeout: d(timings.health.timeout), rise: timings.health.rise, fall: timings.health.fall },
    // The lab crashes and restarts edges on purpose, many times in a few minutes: damping would
    // hold them withdrawn. It is table-tested in test/unit/bgp/damping.test.ts.
    damping: { maxFlips: 1000, window: '1m', holdDown: '1s' },
    drain: { time: d(timings.drain.time), gracefulShutdown: d(timings.drain.gracefulShutdown), convergenceMargin: d(timings.drain.convergenceMargin) },
    bfd: { enabled: timings.bfd.enabled, interval: d(timings.bfd.interval), multiplier: timings.bfd.multiplier },
    sessions: {
      holdTime: d(timings.sessions.holdTime),
      connectDelayTime: d(timings.sessions.connectDelayTime),
      connectRetryTime: d(timings.sessions.connectRetryTime),
      errorWaitTime: { min: d(timings.sessions.errorWaitTime.min), max: d(timings.sessions.errorWaitTime.max) },
    },
    agent: { metrics: '127.0.0.1:9101' },
    paths: { config: folder.config, state: folder.state, run: folder.run },
    pops: plan.pops.map((p) => ({
      name: p.name,
      asn: p.asn,
      nodes: [
        {
          name: p.node,
          routerId: p.routerId,
          interfaces: plan.links
            .flatMap((l) => [l.a, l.b])
            .filter((e) => e.ns === p.ns)
            .map((e) => ({ name: e.ifname, addresses: [e.address] })),
          neighbours: plan.routers.map((r) => {
            const peer = r.peers.find((x) => x.pop === p.name)!;
            return { name: r.name, address: peer.local, asn: r.asn, prepend: peer.prepend };
          }),
        },
      ],
    })),
  };
  return (
    `# The anycdn lab's inventory (deploy/lab/inventory.ts), laid out for PoP ${pop.name}'s files.\n` +
    `# Lab ${plan.id}: ${plan.pops.length} PoPs, ${plan.routers.length} client routers.\n` +
    stringify(inventory, { lineWidth: 0 })
  );
}
