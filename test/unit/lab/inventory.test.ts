import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { parseConfigText } from '../../support/config-text.js';
import { inventorySchema } from '../../../bgp/inventory.js';
import { renderInventory } from '../../../bgp/render.js';
import { labInventory, LAB_TIMINGS, popFolder } from '../../../deploy/lab/inventory.js';
import { labPlan } from '../../../deploy/lab/topology.js';

describe('the lab inventory', () => {
  const plan = labPlan('9-a1');
  const pop2 = plan.pops[1]!;
  const text = labInventory(plan, '/tmp/anycdn-lab-9-a1', pop2);
  const inventory = validateConfig(inventorySchema, parseConfigText('inventory.yaml', text), 'inventory.yaml', {});
  const files = new Map(renderInventory(inventory).map((f) => [f.path, f.content]));

  it('is a valid inventory of the whole lab, laid out for one PoP\'s files', () => {
    expect(inventory.pops.map((p) => `${p.name}/${p.nodes[0]!.name} AS${p.asn}`)).toEqual(['pop1/edge1 AS65001', 'pop2/edge2 AS65002', 'pop3/edge3 AS65003']);
    expect(inventory.paths).toEqual({ config: '/tmp/anycdn-lab-9-a1/pop2/etc', state: '/tmp/anycdn-lab-9-a1/pop2/state', run: '/tmp/anycdn-lab-9-a1/pop2/run' });
    expect(inventory.edge.cacheDir).toBe(popFolder('/tmp/anycdn-lab-9-a1', pop2).cache);
    expect(inventory.origin.url).toBe('http://10.0.0.1:8081');
    expect(inventory.health).toEqual({ interval: 500, timeout: 500, rise: 3, fall: 3 });
    expect(inventory.drain).toEqual({ time: 2500, gracefulShutdown: 500, convergenceMargin: 1000 });
    expect(inventory.bfd).toEqual({ enabled: true, interval: 100, multiplier: 5 });
    expect(inventory.sessions).toEqual({ holdTime: 90_000, connectDelayTime: 1000, connectRetryTime: 1000, errorWaitTime: { min: 1000, max: 2000 } });
  });

  it('renders PoP 2 announcing to every router with the plan\'s prepends, from its own folder', () => {
    const bird = files.get('pop2/edge2/bird.conf')!;
    expect(bird).toContain('include "/tmp/anycdn-lab-9-a1/pop2/state/announce.conf";');
    expect(bird).toContain('router id 10.0.1.2;');
    const prepends = [1, 2, 3].map((n) => bird.split(`filter anycdn_export_peer${n} {`)[1]!.split('}')[0]!.match(/bgp_path\.prepend\(65002\)/g)?.length ?? 0);
    expect(prepends).toEqual([1, 0, 2]); // r1: pop2 second, r2: nearest, r3: last
    expect(bird).toContain('protocol bgp anycdn_peer2_r2 {\n  description "r2 10.1.22.1 AS65102";\n  local as 65002;\n  neighbor 10.1.22.1 as 65102;\n  source address 10.1.22.2;');
    expect(files.get('pop2/edge2/edge.yaml')).toContain('cacheDir: /tmp/anycdn-lab-9-a1/pop2/cache\n');
    expect(files.get('pop2/edge2/agent.yaml')).toContain('  socket: /tmp/anycdn-lab-9-a1/pop2/run/bird.ctl\n');
  });

  it('refuses timings the inventory would refuse', () => {
    const short = labInventory(plan, '/tmp/x', pop2, { ...LAB_TIMINGS, drain: { time: 1000, gracefulShutdown: 500, convergenceMargin: 1000 } });
    expect(() => validateConfig(inventorySchema, parseConfigText('inventory.yaml', short), 'inventory.yaml', {})).toThrow(
      'inventory.yaml: drain.time: 1s is shorter than health.interval + health.timeout + drain.gracefulShutdown + drain.convergenceMargin = 500ms + 500ms + 500ms + 1s = 2.5s',
    );
  });
});
