import { describe, expect, it } from 'vitest';
import { LAB_TIMINGS } from '../../../deploy/lab/inventory.js';
import { renderRouterConfig, routerPeerProtocol } from '../../../deploy/lab/router-config.js';
import { labPlan } from '../../../deploy/lab/topology.js';

// Router r1 of a two-PoP lab, BFD off: the whole file.
const R1_WITHOUT_BFD = `# BIRD 2 configuration of lab router r1 (AS65101), lab t1.
# Rendered by deploy/lab/router-config.ts.

log stderr all;
# Every session going up or down (and why), every route it brings or takes, with its time, in the lab's logs.
debug protocols { states, routes, events };
router id 10.0.2.1;

protocol device lab_device {
  scan time 10;
}

# The best path goes to the kernel: one PoP at a time (no \`merge paths\`, so a failover never
# turns into ECMP).
protocol kernel lab_kernel {
  ipv4 {
    import none;
    export where source = RTS_BGP;
  };
}

filter lab_from_pop {
  if net != 198.51.100.0/24 then reject;
  # RFC 8326 §4: a path tagged GRACEFUL_SHUTDOWN (65535:0) gets LOCAL_PREF 0, so any other
  # path wins while it still exists.
  if (65535, 0) ~ bgp_community then bgp_local_pref = 0;
  accept;
}

protocol bgp lab_pop1 {
  description "pop1 10.1.11.2 AS65001";
  local 10.1.11.1 as 65101;
  neighbor 10.1.11.2 as 65001;
  interface "pop1";
  passive on;
  hold time 90;
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 {
    import filter lab_from_pop;
    export none;
  };
}

protocol bgp lab_pop2 {
  description "pop2 10.1.12.2 AS65002";
  local 10.1.12.1 as 65101;
  neighbor 10.1.12.2 as 65002;
  interface "pop2";
  passive on;
  hold time 90;
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 {
    import filter lab_from_pop;
    export none;
  };
}
`;

describe('a lab client router\'s bird.conf', () => {
  const plan = labPlan('t1', 2);

  it('peers with every PoP, takes only the anycast prefix and honours graceful shutdown', () => {
    expect(renderRouterConfig(plan, plan.routers[0]!, { ...LAB_TIMINGS, bfd: { enabled: false, interval: 100, multiplier: 3 } })).toBe(R1_WITHOUT_BFD);
  });

  it('runs BFD with the PoPs\' own settings when they do', () => {
    const conf = renderRouterConfig(plan, plan.routers[1]!, { ...LAB_TIMINGS, bfd: { enabled: true, interval: 50, multiplier: 5 } });
    expect(conf).toContain('protocol bfd lab_bfd {\n}');
    expect(conf.match(/  bfd \{ min rx interval 50 ms; min tx interval 50 ms; idle tx interval 50 ms; multiplier 5; \};/g)).toHaveLength(2);
    expect(conf).toContain('protocol bgp lab_pop2 {\n  description "pop2 10.1.22.2 AS65002";\n  local 10.1.22.1 as 65102;');
  });

  it('leaves `passive on` out when the routers connect actively, and changes nothing else', () => {
    const active = renderRouterConfig(plan, plan.routers[0]!, { ...LAB_TIMINGS, bfd: { enabled: false, interval: 100, multiplier: 3 }, sessions: { ...LAB_TIMINGS.sessions, routersPassive: false } });
    expect(active).not.toContain('passive');
    expect(active).toBe(R1_WITHOUT_BFD.replaceAll('  passive on;\n', ''));
  });

  it('names sessions with a fixed prefix, whatever the PoP is called', () => {
    expect(routerPeerProtocol('pop1')).toBe('lab_pop1');
    expect(routerPeerProtocol('client-2')).toBe('lab_client_2');
  });
});
