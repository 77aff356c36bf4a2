/**
 * bird.conf for a lab client router, as a pure function of the plan: the stand-in for a transit
 * or eyeball network in front of the PoPs. It takes only the anycast prefix from each PoP,
 * honours the graceful-shutdown community, installs its best route into the namespace's kernel
 * table (which is what the client's packets follow), and runs BFD with the PoPs' own settings
 * (detection is the neighbour's job: a frozen PoP cannot say it is frozen).
 *
 * Lab-only: operators' routers are theirs. Every file is checked with `bird -p` before use.
 */
import type { LabTimings } from './inventory.js';
import { ANYCAST_PREFIX, type LabPlan, type LabRouter } from './topology.js';

/** BIRD's protocol name for the router's session to `pop` (a fixed prefix: PoP names could be BIRD keywords). */
export function routerPeerProtocol(pop: string): string {
  return `lab_${pop.replace(/[^a-z0-9_]/gi, '_')}`;
}

export function renderRouterConfig(plan: LabPlan, router: LabRouter, timings: LabTimings): string {
  const s = timings.sessions;
  const sections = [
    [
      `# BIRD 2 configuration of lab router ${router.name} (AS${router.asn}), lab ${plan.id}.`,
      '# Rendered by deploy/lab/router-config.ts.',
      '',
      'log stderr all;',
      '# Every session going up or down (and why), every route it brings or takes, with its time, in the lab\'s logs.',
      'debug protocols { states, routes, events };',
      `router id ${router.routerId};`,
    ].join('\n'),
    'protocol device lab_device {\n  scan time 10;\n}',
    [
      '# The best path goes to the kernel: one PoP at a time (no `merge paths`, so a failover never',
      '# turns into ECMP).',
      'protocol kernel lab_kernel {',
      '  ipv4 {',
      '    import none;',
      '    export where source = RTS_BGP;',
      '  };',
      '}',
    ].join('\n'),
    ...(timings.bfd.enabled ? ['protocol bfd lab_bfd {\n}'] : []),
    [
      'filter lab_from_pop {',
      `  if net != ${ANYCAST_PREFIX} then reject;`,
      '  # RFC 8326 §4: a path tagged GRACEFUL_SHUTDOWN (65535:0) gets LOCAL_PREF 0, so any other',
      '  # path wins while it still exists.',
      '  if (65535, 0) ~ bgp_community then bgp_local_pref = 0;',
      '  accept;',
      '}',
    ].join('\n'),
    ...router.peers.map((peer) => {
      const pop = plan.pops.find((p) => p.name === peer.pop)!;
      const lines = [
        `protocol bgp ${routerPeerProtocol(peer.pop)} {`,
        `  description "${pop.name} ${peer.neighbour} AS${pop.asn}";`,
        `  local ${peer.local} as ${router.asn};`,
        `  neighbor ${peer.neighbour} as ${pop.asn};`,
        `  interface "${peer.ifname}";`,
        // `routersPassive` (the lab's default): the PoP opens the session, never the router. A
        // PoP frozen longer than the error wait found, when it resumed, a connection the router
        // had opened meanwhile, completed by its kernel: BGP was back ~40 ms after the thaw, while
        // the router's BFD session was still bound to the PoP's session from before the freeze
        // (bfd-sessions.ts), which expired 0.3 s later and took the new BGP session with it (the
        // PoP's clients moved away and back a second time). BIRD 2.0.12 cannot hold BGP until BFD
        // is Up, and `bfd graceful` would keep a frozen PoP's routes for the graceful-restart time
        // instead of moving its clients. Passive, the router leaves it to the resumed PoP, which
        // first reads that its session was closed, then connects after its connect delay, once
        // the stale BFD session is gone. Active routers (test/lab/hung-pop.test.ts) are what most
        // real peers run: there the PoP's agent, seeing it did not run, withdraws (bgp/agent.ts).
        ...(s.routersPassive ? ['  passive on;'] : []),
        `  hold time ${s.holdTime / 1000};`,
        `  connect delay time ${s.connectDelayTime / 1000};`,
        `  connect retry time ${s.connectRetryTime / 1000};`,
        `  error wait time ${s.errorWaitTime.min / 1000}, ${s.errorWaitTime.max / 1000};`,
      ];
      if (timings.bfd.enabled) {
        // Same `idle tx interval` as the PoPs' (bgp/bird-config.ts): a stale session left over
        // from a frozen PoP expires within multiplier x interval, not multiplier x 1 s.
        lines.push(`  bfd { min rx interval ${timings.bfd.interval} ms; min tx interval ${timings.bfd.interval} ms; idle tx interval ${timings.bfd.interval} ms; multiplier ${timings.bfd.multiplier}; };`);
      }
      lines.push('  ipv4 {', '    import filter lab_from_pop;', '    export none;', '  };', '}');
      return lines.join('\n');
    }),
  ];
  return sections.join('\n\n') + '\n';
}
