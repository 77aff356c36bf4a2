import { describe, expect, it } from 'vitest';
import { isLabId, labIdOf, labPlan } from '../../../deploy/lab/topology.js';

describe('the lab plan', () => {
  const plan = labPlan('77-ab12');

  it('names every namespace after the lab id, origin, PoPs, routers and clients', () => {
    expect(plan.namespaces).toEqual(['origin', 'pop1', 'pop2', 'pop3', 'r1', 'r2', 'r3', 'c1', 'c2', 'c3'].map((n) => `anycdn-lab-77-ab12-${n}`));
    expect(plan.namespaces.map(labIdOf)).toEqual(Array(10).fill('77-ab12'));
  });

  it('gives each client network a different nearest PoP, then the others in a fixed order', () => {
    expect(plan.clients.map((c) => [c.name, c.router, c.address, c.preference])).toEqual([
      ['c1', 'r1', '10.2.1.2', ['pop1', 'pop2', 'pop3']],
      ['c2', 'r2', '10.2.2.2', ['pop2', 'pop3', 'pop1']],
      ['c3', 'r3', '10.2.3.2', ['pop3', 'pop1', 'pop2']],
    ]);
  });

  it('peers every router with every PoP on its own /24, prepending (K − N) mod 3 times', () => {
    expect(plan.routers.map((r) => r.peers.map((p) => `${p.pop} ${p.local}→${p.neighbour} +${p.prepend}`))).toEqual([
      ['pop1 10.1.11.1→10.1.11.2 +0', 'pop2 10.1.12.1→10.1.12.2 +1', 'pop3 10.1.13.1→10.1.13.2 +2'],
      ['pop1 10.1.21.1→10.1.21.2 +2', 'pop2 10.1.22.1→10.1.22.2 +0', 'pop3 10.1.23.1→10.1.23.2 +1'],
      ['pop1 10.1.31.1→10.1.31.2 +1', 'pop2 10.1.32.1→10.1.32.2 +2', 'pop3 10.1.33.1→10.1.33.2 +0'],
    ]);
    expect(plan.pops.map((p) => [p.asn, p.routerId])).toEqual([
      [65001, '10.0.1.1'],
      [65002, '10.0.1.2'],
      [65003, '10.0.1.3'],
    ]);
    expect(plan.routers.map((r) => [r.asn, r.routerId])).toEqual([
      [65101, '10.0.2.1'],
      [65102, '10.0.2.2'],
      [65103, '10.0.2.3'],
    ]);
  });

  it('routes each PoP back to every client network and to the origin without BGP', () => {
    const pop1 = plan.routes.filter((r) => r.ns === 'anycdn-lab-77-ab12-pop1').map((r) => `${r.to} via ${r.via}`);
    expect(pop1).toEqual(['10.2.1.0/24 via 10.1.11.1', '10.2.2.0/24 via 10.1.21.1', '10.2.3.0/24 via 10.1.31.1', '10.0.0.1/32 via 10.3.1.1']);
    expect(plan.routes.filter((r) => r.ns.endsWith('-c2'))).toEqual([{ ns: 'anycdn-lab-77-ab12-c2', to: 'default', via: '10.2.2.1' }]);
    expect(plan.forwarding).toEqual(['r1', 'r2', 'r3'].map((n) => `anycdn-lab-77-ab12-${n}`));
  });

  it('uses 15 veth pairs, each end inside a lab namespace, with interface names short enough for Linux', () => {
    expect(plan.links).toHaveLength(15);
    for (const end of plan.links.flatMap((l) => [l.a, l.b])) {
      expect(plan.namespaces).toContain(end.ns);
      expect(end.ifname.length).toBeLessThanOrEqual(15);
    }
    const addresses = plan.links.flatMap((l) => [l.a.address, l.b.address]);
    expect(new Set(addresses).size).toBe(30);
  });

  it('scales from one PoP to nine, and refuses other sizes and ids', () => {
    expect(labPlan('x', 1).clients[0]!.preference).toEqual(['pop1']);
    expect(labPlan('x', 9).routers[8]!.peers[0]).toEqual({ pop: 'pop1', local: '10.1.91.1', neighbour: '10.1.91.2', ifname: 'pop1', prepend: 1 });
    expect(() => labPlan('x', 10)).toThrow('lab size 10: 1 to 9 PoPs');
    expect(() => labPlan('Bad_Id')).toThrow('lab id "Bad_Id"');
    expect([isLabId('12-ab'), isLabId('a--b'), isLabId('-a'), isLabId('')]).toEqual([true, false, false, false]);
  });

  it('reads the lab id back from a namespace name, and nothing from other names', () => {
    expect(labIdOf('anycdn-lab-123-beef-origin')).toBe('123-beef');
    expect(labIdOf('anycdn-lab-x')).toBeUndefined();
    expect(labIdOf('other-123-pop1')).toBeUndefined();
    expect(labIdOf('anycdn-lab-BAD-pop1')).toBeUndefined();
  });
});
