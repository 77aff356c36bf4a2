import { describe, expect, it } from 'vitest';
import { bfdNotUp, parseBfdSessions, type BfdState } from '../../../deploy/lab/bfd-sessions.js';
import { labPlan } from '../../../deploy/lab/topology.js';

// The lines of BIRD 2.0.12's reply to `show bfd sessions` on a lab router, as the control socket gives them.
const ROUTER_REPLY = [
  'lab_bfd:',
  'IP address                Interface  State      Since         Interval  Timeout',
  '10.1.23.2                 pop3       Up         04:57:17.533    0.100    0.300',
  '10.1.21.2                 pop1       Up         04:57:17.533    0.100    0.300',
  // A session Up on a PoP session that is gone: BIRD shows it Up, with the old session's 1 s interval.
  '10.1.22.2                 pop2       Up         04:49:31.296    1.000    3.000',
  '',
];

describe('parseBfdSessions', () => {
  it('reads each neighbour and its state, and nothing from the headers', () => {
    expect(parseBfdSessions(ROUTER_REPLY)).toEqual(
      new Map([
        ['10.1.23.2', 'Up'],
        ['10.1.21.2', 'Up'],
        ['10.1.22.2', 'Up'],
      ]),
    );
  });

  it('reads every state BIRD names, and nothing when BFD is not running', () => {
    const lines = ['anycdn_bfd:', 'IP address                Interface  State      Since         Interval  Timeout'];
    const states = ['AdminDown', 'Down', 'Init', 'Up'];
    states.forEach((s, i) => lines.push(`10.1.${i}2.1                 r${i}         ${s.padEnd(10)} 04:57:17.568    1.000    0.000`));
    expect([...parseBfdSessions(lines).values()]).toEqual(states);
    expect(parseBfdSessions(['lab_bfd: is not up'])).toEqual(new Map());
  });
});

describe('bfdNotUp', () => {
  // Two PoPs, two routers: r1 peers with pop1 on 10.1.11.0/24 and pop2 on 10.1.12.0/24 (router .1, PoP .2).
  const plan = labPlan('t1', 2);
  const sessions = (entries: [string, Record<string, BfdState>][]): Map<string, Map<string, BfdState>> => new Map(entries.map(([name, s]) => [name, new Map(Object.entries(s))]));
  const allUp = {
    routers: sessions([
      ['r1', { '10.1.11.2': 'Up', '10.1.12.2': 'Up' }],
      ['r2', { '10.1.21.2': 'Up', '10.1.22.2': 'Up' }],
    ]),
    pops: sessions([
      ['pop1', { '10.1.11.1': 'Up', '10.1.21.1': 'Up' }],
      ['pop2', { '10.1.12.1': 'Up', '10.1.22.1': 'Up' }],
    ]),
  };

  it('is empty when every session is Up at both ends', () => {
    expect(bfdNotUp(plan, allUp.routers, allUp.pops)).toEqual([]);
  });

  it('names a pair whose router holds its session Up while the PoP has it Down (left from a freeze)', () => {
    const pops = new Map(allUp.pops);
    pops.set('pop2', new Map([['10.1.12.1', 'Up'], ['10.1.22.1', 'Down']]));
    expect(bfdNotUp(plan, allUp.routers, pops)).toEqual(['r2–pop2: Up at r2, Down at pop2']);
  });

  it('names pairs with a session missing at either end, or not yet Up', () => {
    const routers = new Map(allUp.routers);
    routers.set('r1', new Map([['10.1.11.2', 'Init']]));
    expect(bfdNotUp(plan, routers, new Map([['pop1', allUp.pops.get('pop1')!]]))).toEqual([
      'r1–pop1: Init at r1, Up at pop1',
      'r1–pop2: none at r1, none at pop2',
      'r2–pop2: Up at r2, none at pop2',
    ]);
  });
});
