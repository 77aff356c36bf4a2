import { describe, expect, it } from 'vitest';
import {
  answersBy,
  caughtByMove,
  describeAnswers,
  describeFailures,
  failedRequests,
  firstAnswerFrom,
  moves,
  moveWindow,
  parseRecord,
  quantile,
  unexplainedFailures,
  unrecovered,
  type ClientRecord,
} from '../../../deploy/lab/measure.js';

const A = 'pop1/edge1';
const B = 'pop2/edge2';
const ok = (seq: number, start: number, end: number, by: string): ClientRecord => ({ seq, attempt: 1, start, end, status: 200, by, reused: false });
const fail = (seq: number, start: number, end: number, error: string, extra: Partial<ClientRecord> = {}): ClientRecord => ({ seq, attempt: 1, start, end, error, reused: false, ...extra });

// A client every 20 ms; the route moves from A to B at about 1050.
const records: ClientRecord[] = [
  ok(1, 1000, 1002, A),
  ok(2, 1020, 1022, A),
  ok(3, 1040, 1042, A),
  fail(4, 1045, 1060, 'ECONNRESET'), // opened towards A, its request reached B
  ok(5, 1062, 1064, B),
  ok(6, 1080, 1081, B),
  fail(7, 1100, 1101, 'ECONNREFUSED'),
];

describe('what the lab client saw', () => {
  it('parses the client lines and nothing else', () => {
    expect(parseRecord('{"seq":3,"attempt":1,"start":1,"end":2,"status":200,"by":"pop1/edge1","reused":false}')).toEqual(ok(3, 1, 2, A));
    expect(parseRecord('{"seq":3,"attempt":3,"start":1,"end":2,"reused":false}')).toBeUndefined();
    expect(parseRecord('client: --url is required')).toBeUndefined();
    expect(parseRecord('{"seq":')).toBeUndefined();
  });

  it('times a failover from the event to the first answer from the new PoP to a request sent after it', () => {
    expect(firstAnswerFrom(records, 1030, B)).toBe(34);
    expect(firstAnswerFrom(records, 1030, A)).toBe(12);
    expect(firstAnswerFrom(records, 1090, B)).toBeUndefined();
    // Answered after the event, but asked before it: not a sign of where the route goes now.
    expect(firstAnswerFrom([ok(1, 990, 1500, A), ok(2, 1100, 1102, A)], 1000, A)).toBe(102);
  });

  it('finds the window in which the route moved, from the last answer of the old PoP to the first of the new', () => {
    expect(moveWindow(records, A, B, 1010)).toEqual({ from: 1040, to: 1062 });
    expect(moveWindow(records, A, B, 1070)).toEqual({ from: 1070, to: 1080 });
    expect(moveWindow(records, B, A, 1000)).toEqual({ from: 1000, to: 1020 }); // nothing from B before A answered
    expect(moveWindow(records, A, 'pop3/edge3', 1000)).toBeUndefined();
  });

  it('finds every move in order, back and forth, from successful answers only', () => {
    const flicker = [...records, ok(8, 1120, 1121, A), fail(9, 1140, 1150, 'ECONNRESET'), ok(10, 1160, 1161, B), ok(11, 1180, 1181, B)];
    expect(moves(flicker, 0)).toEqual([
      { from: 1040, to: 1062, fromBy: A, toBy: B },
      { from: 1080, to: 1120, fromBy: B, toBy: A },
      { from: 1120, to: 1160, fromBy: A, toBy: B },
    ]);
    expect(moves(flicker, 1070)).toEqual([
      { from: 1080, to: 1120, fromBy: B, toBy: A },
      { from: 1120, to: 1160, fromBy: A, toBy: B },
    ]);
    expect(moves(records, 1050)).toEqual([]);
    // Records come in the order the client printed them, not always by start.
    expect(moves([ok(2, 1020, 1022, B), ok(1, 1000, 1030, A)], 0)).toEqual([{ from: 1000, to: 1020, fromBy: A, toBy: B }]);
  });

  it('explains only a reset of a fresh connection in flight during the move, before any answer', () => {
    const move = { from: 1040, to: 1062 };
    expect(caughtByMove(records[3]!, move)).toBe(true);
    expect(caughtByMove(fail(4, 1045, 1060, 'ECONNREFUSED'), move)).toBe(false);
    expect(caughtByMove(fail(4, 1045, 1060, 'ECONNRESET', { reused: true }), move)).toBe(false);
    expect(caughtByMove(fail(4, 1045, 1060, 'ECONNRESET', { status: 200 }), move)).toBe(false);
    expect(caughtByMove(fail(4, 1063, 1070, 'ECONNRESET'), move)).toBe(false);
    expect(caughtByMove(fail(4, 1000, 1039, 'ECONNRESET'), move)).toBe(false);
    expect(unexplainedFailures(records, [move]).map((r) => r.seq)).toEqual([7]);
    expect(unexplainedFailures(records, [undefined]).map((r) => r.seq)).toEqual([4, 7]);
    expect(unexplainedFailures(records, [move], 0, 1090)).toEqual([]);
  });

  it('counts failures by first attempt and recovery by request', () => {
    const retried = [...records, { ...ok(4, 1060, 1061, B), attempt: 2 as const }];
    expect(failedRequests(retried).map((r) => r.seq)).toEqual([4, 7]);
    expect(failedRequests(retried, 1050).map((r) => r.seq)).toEqual([7]);
    expect(unrecovered(retried)).toEqual([7]);
    expect(answersBy(retried)).toEqual({ [A]: 3, [B]: 3 });
    expect(answersBy(retried, 1050, 1070)).toEqual({ [B]: 2 });
    expect(describeFailures(failedRequests(records), 1000)).toBe('ECONNRESET×1, ECONNREFUSED×1: #4 +45..+60 ECONNRESET (fresh connection), #7 +100..+101 ECONNREFUSED (fresh connection)');
    expect(describeFailures([fail(9, 1200, 2200, 'timeout', { connected: false })], 1000)).toBe('timeout×1: #9 +200..+1200 timeout (fresh connection, never connected)');
  });

  it('describes answers from the wrong PoP with their times', () => {
    const fromB = records.filter((r) => r.by === B);
    expect(describeAnswers(fromB, 1050)).toBe(`2 answers: #5 +12..+14 status 200 from ${B} (fresh connection), #6 +30..+31 status 200 from ${B} (fresh connection)`);
    expect(describeAnswers([{ ...ok(8, 990, 995, B), reused: true }], 1000)).toBe(`1 answer: #8 -10..-5 status 200 from ${B} (reused connection)`);
  });

  it('takes quantiles by nearest rank', () => {
    const values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect([quantile(values, 0.5), quantile(values, 0.9), quantile(values, 1), quantile(values, 0)]).toEqual([5, 9, 10, 1]);
    expect(quantile([], 0.5)).toBeUndefined();
  });
});
