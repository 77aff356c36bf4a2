import { describe, expect, it } from 'vitest';
import type { BlobEntry, StoredMeta } from '../../../src/blob/blob-store.js';
import { FlightLeases, IpcFlights, usable, type CrossLease } from '../../../edge/cluster-flights.js';
import type { ClusterMessage } from '../../../edge/cluster-protocol.js';

describe('FlightLeases: who fetches each key among the workers of a node', () => {
  it('lets the first asker lead, the others follow, and tells the followers when the leader is done', () => {
    const leases = new FlightLeases<string>();
    expect(leases.lead('w1', 'k')).toBe(true);
    expect(leases.lead('w2', 'k')).toBe(false);
    expect(leases.lead('w3', 'k')).toBe(false);
    expect(leases.lead('w2', 'k')).toBe(false); // asked again: still a follower, told once
    expect(leases.lead('w1', 'k')).toBe(true); // its own key (a newer flight of the leader's)
    expect(leases.lead('w2', 'other')).toBe(true);
    expect(leases.size).toBe(2);
    // Only the leader's word ends a flight.
    expect(leases.done('w2', 'k')).toEqual([]);
    expect(leases.done('w1', 'k')).toEqual(['w2', 'w3']);
    expect(leases.done('w1', 'k')).toEqual([]);
    expect(leases.size).toBe(1);
    // The key is free again: the next asker leads.
    expect(leases.lead('w3', 'k')).toBe(true);
  });

  it('answers a batch: the leader’s done keys released to their followers first, then its questions', () => {
    const leases = new FlightLeases<string>();
    expect(leases.receive('w1', { lead: [[0, 'a'], [1, 'b']] })).toEqual(new Map([['w1', { answers: [[0, true], [1, true]] }]]));
    expect(leases.receive('w2', { lead: [[0, 'a']] })).toEqual(new Map([['w2', { answers: [[0, false]] }]]));
    expect(leases.receive('w1', { done: ['a'], lead: [[2, 'c']] })).toEqual(
      new Map([
        ['w2', { done: ['a'] }],
        ['w1', { answers: [[2, true]] }],
      ]),
    );
    expect(leases.receive('w2', { lead: [[1, 'b']] })).toEqual(new Map([['w2', { answers: [[1, false]] }]]));
    expect(leases.leave('w1')).toEqual(new Map([['w2', { done: ['b'] }]]));
    expect(leases.size).toBe(0);
  });

  it('lets a worker asking about a key whose flight ended lately lead with a look at the store first', () => {
    const leases = new FlightLeases<string>();
    leases.receive('w1', { lead: [[0, 'a']] });
    expect(leases.receive('w1', { done: ['a'] })).toEqual(new Map());
    // w2 looked 'a' up before w1's copy was committed, and asks after w1 was done.
    expect(leases.receive('w2', { lead: [[0, 'a'], [1, 'b']] })).toEqual(new Map([['w2', { answers: [[0, 'look'], [1, true]] }]]));
    // Its look (and fetch, if the copy is gone) is a flight like any other: others follow it.
    expect(leases.receive('w1', { lead: [[1, 'a']] })).toEqual(new Map([['w1', { answers: [[1, false]] }]]));
    expect(leases.receive('w2', { done: ['a'] })).toEqual(new Map([['w1', { done: ['a'] }]]));
    expect(leases.size).toBe(1);
  });

  it('ends the flights of a worker that is gone, and forgets it as a follower', () => {
    const leases = new FlightLeases<string>();
    leases.lead('w1', 'a');
    leases.lead('w1', 'b');
    leases.lead('w2', 'a');
    leases.lead('w2', 'c');
    leases.lead('w1', 'c');
    leases.lead('w3', 'c');
    expect(leases.release('w1')).toEqual([
      ['a', ['w2']],
      ['b', []],
    ]);
    expect(leases.lead('w3', 'a')).toBe(true);
    // w1 followed c: w2's done tells w3 alone.
    expect(leases.done('w2', 'c')).toEqual(['w3']);
    expect(leases.size).toBe(1);
  });
});

/** Workers and their primary in one process, each message delivered at once (the answer and the leader's word may come in one turn). */
function node(followWaitMs = 5_000): { worker(name: string): IpcFlights; sent: string[] } {
  const leases = new FlightLeases<string>();
  const workers = new Map<string, IpcFlights>();
  const sent: string[] = [];
  const toWorker = (name: string, m: ClusterMessage): void => {
    sent.push(`${name} ← ${JSON.stringify(m)}`);
    workers.get(name)!.onMessage(m);
  };
  const fromWorker = (name: string, m: ClusterMessage): void => {
    sent.push(`${name} → ${JSON.stringify(m)}`);
    if (m.type !== 'anycdn:flights') return;
    for (const [to, answered] of leases.receive(name, m)) toWorker(to, { type: 'anycdn:flights-answer', ...answered });
  };
  return {
    sent,
    worker(name) {
      const flights = new IpcFlights((m) => fromWorker(name, m), followWaitMs);
      workers.set(name, flights);
      return flights;
    },
  };
}

describe('IpcFlights: a worker asking its primary', () => {
  it('leads or follows, and a follower is released by its leader’s word', async () => {
    const n = node();
    const a = n.worker('a');
    const b = n.worker('b');
    const lead = (await a.lead('k')) as Extract<CrossLease, { lead: true }>;
    expect(lead.lead).toBe(true);
    const follow = (await b.lead('k')) as Extract<CrossLease, { lead: false }>;
    expect(follow.lead).toBe(false);
    let released = false;
    void follow.settled.then(() => (released = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(released).toBe(false);
    lead.done();
    await follow.settled;
    expect(n.sent).toEqual([
      'a → {"type":"anycdn:flights","lead":[[0,"k"]]}',
      'a ← {"type":"anycdn:flights-answer","answers":[[0,true]]}',
      'b → {"type":"anycdn:flights","lead":[[0,"k"]]}',
      'b ← {"type":"anycdn:flights-answer","answers":[[0,false]]}',
      'a → {"type":"anycdn:flights","done":["k"]}',
      'b ← {"type":"anycdn:flights-answer","done":["k"]}',
    ]);
    expect(lead.look).toBe(false);
    // Asked again right after: its flight ended lately, so b leads with a look at the store first.
    expect(await b.lead('k')).toMatchObject({ lead: true, look: true });
  });

  it('says the misses of one turn in one message, and hears the answers to all in one', async () => {
    const n = node();
    const a = n.worker('a');
    const b = n.worker('b');
    const first = await Promise.all(['x', 'y', 'z'].map((k) => a.lead(k)));
    expect(first.map((l) => l.lead)).toEqual([true, true, true]);
    const second = await Promise.all(['y', 'w'].map((k) => b.lead(k)));
    expect(second.map((l) => l.lead)).toEqual([false, true]);
    for (const l of first) if (l.lead) l.done();
    await (second[0] as Extract<CrossLease, { lead: false }>).settled;
    expect(n.sent).toEqual([
      'a → {"type":"anycdn:flights","lead":[[0,"x"],[1,"y"],[2,"z"]]}',
      'a ← {"type":"anycdn:flights-answer","answers":[[0,true],[1,true],[2,true]]}',
      'b → {"type":"anycdn:flights","lead":[[0,"y"],[1,"w"]]}',
      'b ← {"type":"anycdn:flights-answer","answers":[[0,false],[1,true]]}',
      'a → {"type":"anycdn:flights","done":["x","y","z"]}',
      'b ← {"type":"anycdn:flights-answer","done":["y"]}',
    ]);
  });

  it('stops waiting for a leader that never says it is done after followWaitMs', async () => {
    const n = node(50);
    const a = n.worker('a');
    const b = n.worker('b');
    expect((await a.lead('k')).lead).toBe(true);
    const follow = (await b.lead('k')) as Extract<CrossLease, { lead: false }>;
    const t0 = performance.now();
    await follow.settled;
    expect(performance.now() - t0).toBeGreaterThanOrEqual(40);
  });

  it('leads alone when its primary does not answer', async () => {
    const silent = new IpcFlights(() => undefined, 1_000);
    const t0 = performance.now();
    expect((await silent.lead('k')).lead).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1_900);
  }, 10_000);
});

function entry(storedAt: number, invalidated?: boolean): BlobEntry {
  const meta = { key: 'k', size: 1, status: 200, headers: [], requestTime: storedAt, responseTime: storedAt, storedAt, sha256: 'x', ...(invalidated === undefined ? {} : { invalidated }) } as unknown as StoredMeta;
  return { meta, data: Buffer.from('x'), open: () => { throw new Error('not read'); } };
}

describe('usable: whether a copy another worker stored answers a follower', () => {
  const none = { staleBefore: 0, absentBefore: 0 };
  it.each([
    ['a copy, for a miss', entry(1_000), undefined, none, true],
    ['a copy a soft purge marked', entry(1_000, true), undefined, none, false],
    ['a copy stored before a purge of everything', entry(1_000), undefined, { staleBefore: 0, absentBefore: 1_000 }, false],
    ['a copy stored before the stale watermark', entry(1_000), undefined, { staleBefore: 1_500, absentBefore: 0 }, false],
    ['a newer copy, for a revalidation', entry(2_000), entry(1_000), none, true],
    ['the same stale copy, for a revalidation', entry(1_000), entry(1_000), none, false],
  ])('%s → %s', (_name, found, revalidating, watermarks, want) => {
    expect(usable(found, revalidating, watermarks)).toBe(want);
  });
});
