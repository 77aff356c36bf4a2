import { describe, expect, it } from 'vitest';
import { BIRD_TIME_SLACK_MS, BirdProtocolError, BirdReplyReader, birdTimeMs, configureAccepted, isErrorCode, MAX_LINE_BYTES, parseStatus, replyText, sameBirdTime, type BirdReply } from '../../../bgp/bird-reply.js';

// What BIRD 2.0.12 sent on a control socket (captured), greeting first.
const SESSION =
  '0001 BIRD 2.0.12 ready.\n' +
  '1000-BIRD 2.0.12\n' +
  '1011-Router ID is 192.0.2.11\n' +
  ' Hostname is vm\n' +
  ' Current server time is 2026-12-06 15:56:54.300\n' +
  ' Last reboot on 2026-12-06 15:56:52.706\n' +
  ' Last reconfiguration on 2026-12-06 15:56:52.706\n' +
  '0013 Daemon is up and running\n' +
  '0002-Reading configuration from mini.conf\n' +
  '0003 Reconfigured\n' +
  '0002-Reading configuration from mini.conf\n' +
  '8002 /tmp/bgpx/announce.conf:1:19 syntax error, unexpected \';\'\n' +
  '9001 syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN or TEXT or ALL\n' +
  '2002-Name       Proto      Table      State  Since         Info\n' +
  '1002-anycdn_device Device     ---        up     15:56:52.706  \n' +
  ' anycdn_anycast4 Static     master4    up     15:56:52.706  \n' +
  '0000 \n';

function readAll(chunks: string[]): BirdReply[] {
  const reader = new BirdReplyReader();
  return chunks.flatMap((c) => reader.push(c));
}

describe('BirdReplyReader', () => {
  const whole = readAll([SESSION]);

  it('splits a session into replies by their last line', () => {
    expect(whole.map((r) => r.code)).toEqual([1, 13, 3, 8002, 9001, 0]);
    expect(whole[0]).toEqual({ code: 1, lines: [{ code: 1, text: 'BIRD 2.0.12 ready.' }] });
    expect(whole[2]).toEqual({ code: 3, lines: [{ code: 2, text: 'Reading configuration from mini.conf' }, { code: 3, text: 'Reconfigured' }] });
  });

  it('gives continuation lines the code before them', () => {
    expect(whole[5]!.lines).toEqual([
      { code: 2002, text: 'Name       Proto      Table      State  Since         Info' },
      { code: 1002, text: 'anycdn_device Device     ---        up     15:56:52.706  ' },
      { code: 1002, text: 'anycdn_anycast4 Static     master4    up     15:56:52.706  ' },
      { code: 0, text: '' },
    ]);
  });

  it.each([1, 2, 3, 7, 50])('gives the same replies however the text is cut (every %i bytes)', (size) => {
    const chunks: string[] = [];
    for (let i = 0; i < SESSION.length; i += size) chunks.push(SESSION.slice(i, i + size));
    expect(readAll(chunks)).toEqual(whole);
  });

  it('waits for the last line of a reply', () => {
    const reader = new BirdReplyReader();
    expect(reader.push('0002-Reading configuration from x\n')).toEqual([]);
    expect(reader.push('0003 Reconfigured')).toEqual([]);
    expect(reader.push('\n')).toEqual([{ code: 3, lines: [{ code: 2, text: 'Reading configuration from x' }, { code: 3, text: 'Reconfigured' }] }]);
  });

  it.each([
    ['a line without a code', 'hello\n', 'not a BIRD reply line: "hello"'],
    ['a continuation with nothing before it', ' orphan\n', 'not a BIRD reply line: " orphan"'],
    ['a three-digit code', '001 ready\n', 'not a BIRD reply line: "001 ready"'],
  ])('refuses %s', (_what, text, message) => {
    expect(() => new BirdReplyReader().push(text)).toThrow(new BirdProtocolError(message));
  });

  it('refuses a line longer than its bound', () => {
    expect(() => new BirdReplyReader().push('1000-' + 'x'.repeat(MAX_LINE_BYTES))).toThrow(BirdProtocolError);
  });

  it('refuses a reply of too many lines', () => {
    expect(() => new BirdReplyReader().push('1007-x\n'.repeat(10_001))).toThrow('a reply of more than 10000 lines');
  });
});

describe('reading replies', () => {
  const [, status, reconfigured, configError, parseError, protocols] = readAll([SESSION]);

  it('show status', () => {
    expect(parseStatus(status!)).toEqual({
      version: 'BIRD 2.0.12',
      routerId: '192.0.2.11',
      lastReboot: '2026-12-06 15:56:52.706',
      lastReconfiguration: '2026-12-06 15:56:52.706',
      state: 'Daemon is up and running',
    });
  });

  it.each<[string, BirdReply, boolean]>([
    ['0003 Reconfigured', { code: 3, lines: [] }, true],
    ['0004 Reconfiguration in progress', { code: 4, lines: [] }, true],
    ['0005 queued', { code: 5, lines: [] }, true],
    ['0006 ignored, shutting down', { code: 6, lines: [] }, false],
    ['8002 configuration error', { code: 8002, lines: [] }, false],
    ['0000 (not an answer to configure)', { code: 0, lines: [] }, false],
  ])('configure answered %s: accepted %s', (_what, reply, accepted) => {
    expect(configureAccepted(reply)).toBe(accepted);
  });

  it('configure answers from BIRD', () => {
    expect(configureAccepted(reconfigured!)).toBe(true);
    expect(configureAccepted(configError!)).toBe(false);
    expect(replyText(configError!)).toBe("Reading configuration from mini.conf; /tmp/bgpx/announce.conf:1:19 syntax error, unexpected ';'");
  });

  it.each([
    [0, false],
    [13, false],
    [2002, false],
    [8002, true],
    [9001, true],
  ])('code %i is an error: %s', (code, error) => {
    expect(isErrorCode(code)).toBe(error);
  });

  it('errors and tables as text', () => {
    expect(isErrorCode(parseError!.code)).toBe(true);
    expect(replyText(protocols!)).toBe('Name       Proto      Table      State  Since         Info; anycdn_device Device     ---        up     15:56:52.706; anycdn_anycast4 Static     master4    up     15:56:52.706');
  });
});

describe("BIRD's printed times", () => {
  it('reads them to the millisecond (only differences matter)', () => {
    expect(birdTimeMs('2026-12-06 15:56:52.706')).toBe(Date.UTC(2026, 11, 6, 15, 56, 52, 706));
    expect(birdTimeMs('2026-12-06 15:56:52')).toBe(Date.UTC(2026, 11, 6, 15, 56, 52));
    expect(birdTimeMs('2026-12-06 15:56:52.706123')).toBeCloseTo(Date.UTC(2026, 11, 6, 15, 56, 52, 706) + 0.123, 2);
    expect([birdTimeMs(undefined), birdTimeMs('15:56:52.706'), birdTimeMs('yesterday')]).toEqual([undefined, undefined, undefined]);
  });

  it('takes two readings less than the slack apart as the same moment (the wall clock drifting under BIRD)', () => {
    expect(BIRD_TIME_SLACK_MS).toBe(1000);
    expect(sameBirdTime('2026-12-06 17:31:35.270', '2026-12-06 17:31:35.271')).toBe(true);
    expect(sameBirdTime('2026-12-06 17:31:35.270', '2026-12-06 17:31:36.269')).toBe(true);
    expect(sameBirdTime('2026-12-06 17:31:35.270', '2026-12-06 17:31:36.270')).toBe(false);
    expect(sameBirdTime('2026-12-06 23:59:59.900', '2026-12-07 00:00:00.100')).toBe(true);
    expect(sameBirdTime(undefined, undefined)).toBe(true);
    expect(sameBirdTime('2026-12-06 17:31:35.270', undefined)).toBe(false);
    expect(sameBirdTime('garbled', 'garbled!')).toBe(false);
  });
});
