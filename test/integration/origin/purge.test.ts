/**
 * The purge API, log and stream against a real origin on loopback: every kind of purge accepted
 * and logged, refusals, the Server-Sent Events stream read by a real client (order, live entries,
 * heartbeats, reset after compaction, limits), acknowledgements and `?wait` with fake edges, and
 * `GET /_cdn/purge/{id}`.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/log.js';
import { originConfigSchema } from '../../../origin/config.js';
import { startOrigin } from '../../../origin/server.js';
import { PUBLISH_TOKEN, PURGE_TOKEN, startTestOrigin, type TestOrigin } from '../../support/origin.js';
import { ack, EDGE_TOKEN, openPurgeStream, postPurge, startFakeEdge, type FakeEdge, type StreamReader } from '../../support/purge-stream.js';
import { until } from '../../support/until.js';

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});
function track<T extends StreamReader | FakeEdge>(x: T): T {
  closers.push(() => x.close());
  return x;
}

async function logLines(origin: TestOrigin): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(origin.dataDir, 'purge', 'log.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('POST /_cdn/purge', () => {
  let origin: TestOrigin;
  beforeAll(async () => {
    origin = await startTestOrigin({ edgeToken: EDGE_TOKEN, purge: { maxEntries: 3 } });
  });
  afterAll(async () => {
    await origin.stop();
  });

  it('accepts every kind of purge, logs each durably with the next sequence number, and says no edge is live', async () => {
    const logId = origin.server.purges.log.id;
    const first = origin.server.purges.log.lastSeq + 1;
    const bodies = [
      { urls: ['/photos/cat.jpg', 'https://cdn.example/a%40b.jpg?w=1'] },
      { prefixes: ['/photos/'] },
      { tags: ['cats', '/404.html'] },
      { all: true },
      { tags: ['cats'], soft: true },
    ];
    const answers = [];
    for (const body of bodies) answers.push(await postPurge(origin.url, PURGE_TOKEN, body));
    expect(answers.map((a) => [a.status, a.json])).toEqual(
      bodies.map((_, i) => [200, { id: `${logId}-${first + i}`, seq: first + i, complete: true, edges: [], pending: [] }]),
    );
    const logged = (await logLines(origin)).slice(-5);
    expect(logged.map(({ time: _time, sum, ...rest }) => (expect(sum).toMatch(/^[0-9a-f]{8}$/), rest))).toEqual([
      { seq: first, id: `${logId}-${first}`, source: 'api', soft: false, all: false, urls: [{ path: '/photos/cat.jpg' }, { host: 'cdn.example', path: '/a@b.jpg' }], prefixes: [], tags: [] },
      { seq: first + 1, id: `${logId}-${first + 1}`, source: 'api', soft: false, all: false, urls: [], prefixes: [{ path: '/photos' }], tags: [] },
      { seq: first + 2, id: `${logId}-${first + 2}`, source: 'api', soft: false, all: false, urls: [], prefixes: [], tags: ['cats', '/404.html'] },
      { seq: first + 3, id: `${logId}-${first + 3}`, source: 'api', soft: false, all: true, urls: [], prefixes: [], tags: [] },
      { seq: first + 4, id: `${logId}-${first + 4}`, source: 'api', soft: true, all: false, urls: [], prefixes: [], tags: ['cats'] },
    ]);
  });

  it('a repeated purge is harmless: logged again, answered the same way', async () => {
    const a = await postPurge(origin.url, PURGE_TOKEN, { urls: ['/x.jpg'] });
    const b = await postPurge(origin.url, PURGE_TOKEN, { urls: ['/x.jpg'] });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.json['seq']).toBe((a.json['seq'] as number) + 1);
  });

  it.each([
    ['no token', undefined, 401, { error: 'unauthorized', message: 'a Bearer token is required (Authorization: Bearer <purge token>)', field: 'authorization' }],
    ['a wrong token', 'wrong-token-wrong-token-wrong', 403, { error: 'forbidden', message: 'the purge token is not valid', field: 'authorization' }],
    ['the publish token', PUBLISH_TOKEN, 403, { error: 'forbidden', message: 'the purge token is not valid', field: 'authorization' }],
    ['the edge token', EDGE_TOKEN, 403, { error: 'forbidden', message: 'the purge token is not valid', field: 'authorization' }],
  ])('refuses %s and logs nothing', async (_name, token, status, body) => {
    const before = origin.server.purges.log.lastSeq;
    const res = await request(`${origin.url}/_cdn/purge`, { method: 'POST', headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, body: '{"all":true}' });
    expect(res.statusCode).toBe(status);
    expect(await res.body.json()).toEqual(body);
    if (status === 401) expect(res.headers['www-authenticate']).toBe('Bearer realm="purge"');
    expect(origin.server.purges.log.lastSeq).toBe(before);
  });

  it.each([
    ['malformed JSON', '{"urls":', '', { error: 'invalid_json', message: 'the body is not valid JSON; expected an object such as {"urls":["/photos/cat.jpg"]}', field: 'body' }],
    ['an empty purge', '{}', '', { error: 'empty_purge', message: 'nothing to purge: give urls, prefixes or tags, or "all": true', field: 'body' }],
    ['a URL that is neither a path nor http(s)', '{"urls":["cat.jpg"]}', '', { error: 'invalid_purge', message: 'urls[0]: "cat.jpg" is neither a path starting with / nor an http(s) URL; a url looks like /photos/cat.jpg or https://cdn.example/photos/cat.jpg', field: 'urls[0]' }],
    ['too many entries', '{"urls":["/a","/b"],"tags":["c","d"]}', '', { error: 'too_many_entries', message: 'a purge may hold at most 3 urls, prefixes and tags together, got 4: split it', field: 'body' }],
    ['a wait that is not a number', '{"all":true}', '?wait=soon', { error: 'invalid_param', message: 'wait must be a number of seconds from 0 to 30, got "soon"', field: 'wait' }],
    ['a wait over the maximum', '{"all":true}', '?wait=31', { error: 'invalid_param', message: 'wait must be a number of seconds from 0 to 30, got "31"', field: 'wait' }],
  ])('refuses %s with a 400 naming it, and logs nothing', async (_name, body, query, expected) => {
    const before = origin.server.purges.log.lastSeq;
    const res = await postPurge(origin.url, PURGE_TOKEN, body, query);
    expect([res.status, res.json]).toEqual([400, expected]);
    expect(origin.server.purges.log.lastSeq).toBe(before);
  });

  it('refuses a body over 1 MiB with 413', async () => {
    const res = await postPurge(origin.url, PURGE_TOKEN, JSON.stringify({ tags: ['x'.repeat(1024 * 1024)] }));
    expect([res.status, res.json]).toEqual([413, { error: 'payload_too_large', message: 'the body is larger than 1048576 bytes', field: 'body' }]);
  });

  it('answers other methods with 405 and Allow', async () => {
    const get = await request(`${origin.url}/_cdn/purge`);
    expect([get.statusCode, get.headers['allow'], await get.body.json()]).toEqual([405, 'POST', { error: 'method_not_allowed', message: 'GET is not allowed here; allowed: POST' }]);
    const post = await request(`${origin.url}/_cdn/purges`, { method: 'POST', body: '' });
    expect([post.statusCode, post.headers['allow']]).toEqual([405, 'GET']);
    await post.body.dump();
  });

  it('GET /_cdn/purge/{id} shows the purge and which edges applied it, and when', async () => {
    const edge = track(await startFakeEdge(origin.url, 'ams/edge-1'));
    const idle = track(await startFakeEdge(origin.url, 'fra/edge-2', { after: origin.server.purges.log.lastSeq, acking: false }));
    const posted = await postPurge(origin.url, PURGE_TOKEN, { prefixes: ['https://cdn.example/docs/'], soft: true });
    const seq = posted.json['seq'] as number;
    await edge.stream.next((e) => e.event === 'purge' && e.json['seq'] === seq);
    await until("the edge's acknowledgement", () => edge.acked >= seq);
    const res = await request(`${origin.url}/_cdn/purge/${posted.json['id'] as string}`, { headers: { authorization: `Bearer ${PURGE_TOKEN}` } });
    const json = (await res.body.json()) as Record<string, unknown>;
    expect(res.statusCode).toBe(200);
    expect(json).toMatchObject({
      id: posted.json['id'],
      seq,
      source: 'api',
      purge: { urls: [], prefixes: [{ host: 'cdn.example', path: '/docs' }], tags: [], all: false, soft: true },
      complete: false,
      pending: ['fra/edge-2'],
    });
    const edges = json['edges'] as { node: string; live: boolean; applied: boolean; at: string | null }[];
    expect(edges.map((e) => [e.node, e.live, e.applied])).toEqual([
      ['ams/edge-1', true, true],
      ['fra/edge-2', true, false],
    ]);
    expect(Date.parse(edges[0]!.at!)).toBeGreaterThanOrEqual(Date.parse(json['time'] as string));
    expect(edges[1]!.at).toBeNull();
    idle.close();
  });

  it('GET /_cdn/purge/{id} is 404 for an id of no purge, and needs the purge token', async () => {
    const auth = { authorization: `Bearer ${PURGE_TOKEN}` };
    const last = origin.server.purges.log.lastSeq;
    for (const id of [`${origin.server.purges.log.id}-${last + 1}`, `000000000000-1`, 'nonsense', `${origin.server.purges.log.id}-0`]) {
      const res = await request(`${origin.url}/_cdn/purge/${id}`, { headers: auth });
      expect([res.statusCode, await res.body.json()]).toEqual([404, { error: 'not_found', message: `no purge ${JSON.stringify(id)} in this origin's log (${origin.server.purges.log.id})` }]);
    }
    const res = await request(`${origin.url}/_cdn/purge/${origin.server.purges.log.id}-1`, { headers: { authorization: `Bearer ${EDGE_TOKEN}` } });
    expect(res.statusCode).toBe(403);
    await res.body.dump();
  });
});

describe('?wait with fake edges', () => {
  let origin: TestOrigin;
  beforeAll(async () => {
    origin = await startTestOrigin({ edgeToken: EDGE_TOKEN });
  });
  afterAll(async () => {
    await origin.stop();
  });

  it('answers 200 once every live edge acknowledged the purge', async () => {
    const a = track(await startFakeEdge(origin.url, 'ams/a'));
    const b = track(await startFakeEdge(origin.url, 'fra/b'));
    const started = Date.now();
    const res = await postPurge(origin.url, PURGE_TOKEN, { urls: ['/a.jpg'] }, '?wait=10');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ complete: true, pending: [] });
    expect((res.json['edges'] as { node: string; applied: boolean }[]).map((e) => [e.node, e.applied])).toEqual([
      ['ams/a', true],
      ['fra/b', true],
    ]);
    expect([a.acked, b.acked]).toEqual([res.json['seq'], res.json['seq']]);
  });

  it('answers 202 at the deadline, listing the live edges that have not applied it', async () => {
    track(await startFakeEdge(origin.url, 'ams/a'));
    track(await startFakeEdge(origin.url, 'sin/slow', { after: origin.server.purges.log.lastSeq, acking: false }));
    const started = Date.now();
    const res = await postPurge(origin.url, PURGE_TOKEN, { tags: ['t'] }, '?wait=0.8');
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(790);
    expect(took).toBeLessThan(3000);
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ complete: false, pending: ['sin/slow'] });
  });

  it('does not wait for an edge whose stream closed, and does wait for one that connects meanwhile', async () => {
    const before = origin.server.purges.log.lastSeq;
    const gone = track(await startFakeEdge(origin.url, 'ams/gone', { after: before, acking: false }));
    const waiting = postPurge(origin.url, PURGE_TOKEN, { urls: ['/late.jpg'] }, '?wait=10');
    await gone.stream.next((e) => e.event === 'purge');
    const late = track(await startFakeEdge(origin.url, 'fra/late', { after: before }));
    await late.stream.next((e) => e.event === 'purge');
    await until("the late edge's acknowledgement", () => late.acked !== before);
    // Both live: one applied it, one did not; the wait goes on until the one that did not leaves.
    expect(await Promise.race([waiting.then(() => 'answered'), new Promise((r) => setTimeout(() => r('waiting'), 300))])).toBe('waiting');
    gone.close();
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(late.acked).toBe(res.json['seq']);
    const edges = Object.fromEntries((res.json['edges'] as { node: string; live: boolean; applied: boolean }[]).map((e) => [e.node, [e.live, e.applied]]));
    expect(edges['ams/gone']).toEqual([false, false]);
    expect(edges['fra/late']).toEqual([true, true]);
  });

  it('acknowledgements: validated, monotonic, and only with the edge token', async () => {
    const last = origin.server.purges.log.lastSeq;
    expect(await ack(origin.url, 'ams/x', last)).toEqual({ status: 200, json: { node: 'ams/x', acked: last, lastSeq: last } });
    expect(await ack(origin.url, 'ams/x', 0)).toEqual({ status: 200, json: { node: 'ams/x', acked: last, lastSeq: last } });
    expect(await ack(origin.url, 'ams/x', last + 1)).toEqual({ status: 400, json: { error: 'invalid_ack', message: `seq must be a sequence number from 0 to the last purge, ${last}, got ${last + 1}`, field: 'seq' } });
    expect(await ack(origin.url, 'ams/x', '3')).toEqual({ status: 400, json: { error: 'invalid_ack', message: `seq must be a sequence number from 0 to the last purge, ${last}, got "3"`, field: 'seq' } });
    expect(await ack(origin.url, 'no-slash', 1)).toEqual({ status: 400, json: { error: 'invalid_ack', message: 'node must be POP/NODE (letters, digits, _ and -; the node also .), got "no-slash"', field: 'node' } });
    expect((await ack(origin.url, 'ams/x', 1, PURGE_TOKEN)).status).toBe(403);
  });
});

describe('GET /_cdn/purges (Server-Sent Events)', () => {
  let origin: TestOrigin;
  beforeAll(async () => {
    // Short idle and heartbeat, so a test sees a quiet stream outlive the idle timeout.
    origin = await startTestOrigin({ edgeToken: EDGE_TOKEN, timeouts: { clientIdle: '1500ms' }, images: { transformTimeout: '1s' }, purge: { heartbeat: '300ms', maxWait: '1s', maxStreams: 4 } });
  });
  afterAll(async () => {
    await origin.stop();
  });

  it('says hello, sends every purge after `after` in order, then live ones as they are appended', async () => {
    const log = origin.server.purges.log;
    const base = log.lastSeq;
    for (const p of ['/1', '/2', '/3']) await postPurge(origin.url, PURGE_TOKEN, { urls: [p] });
    const s = track(await openPurgeStream(origin.url, `after=${base + 1}&node=ams/n1`));
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(s.headers['cache-control']).toBe('no-store');
    const hello = await s.next();
    expect([hello.event, hello.json]).toEqual(['hello', { format: 1, log: log.id, firstSeq: log.firstSeq, lastSeq: base + 3, heartbeatMs: 300 }]);
    const p2 = await s.next((e) => e.event === 'purge');
    const p3 = await s.next((e) => e.event === 'purge' && e.json['seq'] === base + 3);
    expect([p2.id, p2.json['seq'], p2.json['urls']]).toEqual([String(base + 2), base + 2, [{ path: '/2' }]]);
    expect(p2.json).toEqual({ seq: base + 2, id: `${log.id}-${base + 2}`, time: p2.json['time'], source: 'api', soft: false, all: false, urls: [{ path: '/2' }], prefixes: [], tags: [] });
    expect(p3.json['urls']).toEqual([{ path: '/3' }]);
    const live = await postPurge(origin.url, PURGE_TOKEN, { tags: ['live'] });
    const p4 = await s.next((e) => e.event === 'purge' && e.json['seq'] === live.json['seq']);
    expect(p4.json['tags']).toEqual(['live']);
    expect(s.events.filter((e) => e.event === 'purge').map((e) => e.json['seq'])).toEqual([base + 2, base + 3, base + 4]);
  });

  it('keeps a quiet stream open past the idle timeout with heartbeats', async () => {
    const s = track(await openPurgeStream(origin.url, `after=${origin.server.purges.log.lastSeq}&node=ams/quiet`));
    await s.next((e) => e.event === 'hello');
    await new Promise((r) => setTimeout(r, 3200)); // more than twice timeouts.clientIdle
    expect(s.ended()).toBe(false);
    const beats = s.events.filter((e) => e.event === 'heartbeat');
    expect(beats.length).toBeGreaterThanOrEqual(6);
    expect(beats.at(-1)!.json).toEqual({ lastSeq: origin.server.purges.log.lastSeq, time: beats.at(-1)!.json['time'] });
    const posted = await postPurge(origin.url, PURGE_TOKEN, { urls: ['/after-quiet'] });
    expect((await s.next((e) => e.event === 'purge')).json['seq']).toBe(posted.json['seq']);
  });

  it('refuses without the edge token (401), with another token (403), and bad parameters (400)', async () => {
    const none = await openPurgeStream(origin.url, 'after=0&node=ams/n1', null);
    expect([none.status, none.refusal]).toEqual([401, { error: 'unauthorized', message: 'a Bearer token is required (Authorization: Bearer <edge token>)', field: 'authorization' }]);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="edge"');
    for (const token of [PURGE_TOKEN, PUBLISH_TOKEN, 'x'.repeat(32)]) {
      const wrong = await openPurgeStream(origin.url, 'after=0&node=ams/n1', token);
      expect([wrong.status, wrong.refusal]).toEqual([403, { error: 'forbidden', message: 'the edge token is not valid', field: 'authorization' }]);
    }
    const cases: [string, Record<string, string>][] = [
      ['node=ams/n1', { error: 'invalid_param', message: 'after must be the last applied sequence number (0 for none), got ""', field: 'after' }],
      ['after=-1&node=ams/n1', { error: 'invalid_param', message: 'after must be the last applied sequence number (0 for none), got "-1"', field: 'after' }],
      ['after=0', { error: 'invalid_param', message: 'node must be POP/NODE (letters, digits, _ and -; the node also .), got ""', field: 'node' }],
      ['after=0&node=a/b/c', { error: 'invalid_param', message: 'node must be POP/NODE (letters, digits, _ and -; the node also .), got "a/b/c"', field: 'node' }],
      ['after=0&node=a/b&log=xyz', { error: 'invalid_param', message: 'log must be the 12 hex digits a hello event gave, got "xyz"', field: 'log' }],
    ];
    for (const [query, body] of cases) {
      const bad = await openPurgeStream(origin.url, query);
      expect([query, bad.status, bad.refusal]).toEqual([query, 400, body]);
    }
  });

  it('refuses streams past purge.maxStreams with 503 and Retry-After', async () => {
    const open: StreamReader[] = [];
    for (let i = 0; i < 4; i++) open.push(track(await openPurgeStream(origin.url, `after=0&node=ams/s${i}`)));
    const over = await openPurgeStream(origin.url, 'after=0&node=ams/s4');
    expect([over.status, over.refusal, over.headers['retry-after']]).toEqual([503, { error: 'too_many_streams', message: '4 purge streams are open already' }, '5']);
    open[0]!.close();
    await until('the closed stream to leave', () => origin.server.purges.streams.size <= 3);
    const again = track(await openPurgeStream(origin.url, 'after=0&node=ams/s4'));
    expect(again.status).toBe(200);
  });

  it('resets an edge that is ahead of the log or follows another log, then streams from the first retained purge', async () => {
    const log = origin.server.purges.log;
    const ahead = track(await openPurgeStream(origin.url, `after=${log.lastSeq + 100}&node=ams/ahead`));
    const reset = await ahead.next((e) => e.event === 'reset');
    expect(reset.json).toEqual({ reason: 'ahead', log: log.id, firstSeq: log.firstSeq, lastSeq: log.lastSeq });
    expect((await ahead.next((e) => e.event === 'purge')).json['seq']).toBe(log.firstSeq);
    const other = track(await openPurgeStream(origin.url, `after=${log.lastSeq}&node=ams/other&log=000000000000`));
    expect((await other.next((e) => e.event === 'reset')).json['reason']).toBe('other-log');
    const same = track(await openPurgeStream(origin.url, `after=${log.lastSeq}&node=ams/same&log=${log.id}`));
    await same.next((e) => e.event === 'heartbeat');
    expect(same.events.map((e) => e.event)).toEqual(['hello', 'heartbeat']);
  });
});

describe('the purge stream after compaction', () => {
  it('says reset with the first retained sequence number, then sends what the log kept', async () => {
    const origin = await startTestOrigin({ edgeToken: EDGE_TOKEN, purge: { retainEntries: 4 } });
    try {
      for (let i = 1; i <= 6; i++) await postPurge(origin.url, PURGE_TOKEN, { urls: [`/f${i}`] });
      await origin.server.purges.log.settled();
      expect([origin.server.purges.log.firstSeq, origin.server.purges.log.lastSeq]).toEqual([3, 6]);
      const behind = await openPurgeStream(origin.url, 'after=1&node=ams/behind');
      try {
        expect((await behind.next((e) => e.event === 'reset')).json).toEqual({ reason: 'compacted', log: origin.server.purges.log.id, firstSeq: 3, lastSeq: 6 });
        await behind.next((e) => e.event === 'purge' && e.json['seq'] === 6);
        expect(behind.events.map((e) => (e.event === 'purge' ? e.json['seq'] : e.event))).toEqual(['hello', 'reset', 3, 4, 5, 6]);
      } finally {
        behind.close();
      }
      // Exactly at the edge of what was kept: nothing missing, no reset.
      const caughtUp = await openPurgeStream(origin.url, 'after=2&node=ams/ok');
      try {
        await caughtUp.next((e) => e.event === 'purge' && e.json['seq'] === 6);
        expect(caughtUp.events.map((e) => (e.event === 'purge' ? e.json['seq'] : e.event))).toEqual(['hello', 3, 4, 5, 6]);
      } finally {
        caughtUp.close();
      }
    } finally {
      await origin.stop();
    }
  });

  it('is off (404) without an edgeToken, and so are acknowledgements', async () => {
    const origin = await startTestOrigin();
    try {
      const s = await openPurgeStream(origin.url, 'after=0&node=ams/n1');
      expect([s.status, s.refusal]).toEqual([404, { error: 'not_found', message: 'the purge stream is off: the origin has no edgeToken configured' }]);
      expect((await ack(origin.url, 'ams/n1', 0)).status).toBe(404);
    } finally {
      await origin.stop();
    }
  });
});

describe('an origin restarted under a stream', () => {
  it('loses no purge: what was appended before the restart and after it is streamed, in order, to the edge resuming from its cursor', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'anycdn-purge-restart-'));
    const config = validateConfig(
      originConfigSchema,
      { listen: '127.0.0.1:0', dataDir: join(dir, 'data'), publishToken: PUBLISH_TOKEN, purgeToken: PURGE_TOKEN, edgeToken: EDGE_TOKEN, logLevel: 'silent' },
      'test settings',
      {},
    );
    let server = await startOrigin(config, silentLogger(), { processMetrics: false });
    try {
      const logId = server.purges.log.id;
      const stream = await openPurgeStream(server.url, 'after=0&node=ams/restart');
      await postPurge(server.url, PURGE_TOKEN, { urls: ['/1'] });
      await postPurge(server.url, PURGE_TOKEN, { urls: ['/2'] });
      await stream.next((e) => e.event === 'purge' && e.json['seq'] === 2);
      // Appended while the edge is not looking, right before the restart.
      await postPurge(server.url, PURGE_TOKEN, { urls: ['/3'] });
      const cursor = 2;
      // The open stream does not hold the close until its grace deadline: it is ended first.
      const closing = Date.now();
      await server.close(10_000);
      expect(Date.now() - closing).toBeLessThan(3000);
      await until('the stream to end', () => stream.ended());
      stream.close();

      server = await startOrigin(config, silentLogger(), { processMetrics: false });
      expect(server.purges.log.id).toBe(logId);
      expect(server.purges.log.lastSeq).toBe(3);
      await postPurge(server.url, PURGE_TOKEN, { urls: ['/4'] });
      const resumed = await openPurgeStream(server.url, `after=${cursor}&node=ams/restart&log=${logId}`);
      try {
        await resumed.next((e) => e.event === 'purge' && e.json['seq'] === 4);
        expect(resumed.events.filter((e) => e.event !== 'heartbeat').map((e) => (e.event === 'purge' ? (e.json['urls'] as { path: string }[])[0]!.path : e.event))).toEqual(['hello', '/3', '/4']);
      } finally {
        resumed.close();
      }
    } finally {
      await server.close(1000);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
