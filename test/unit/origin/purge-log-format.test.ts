import { describe, expect, it } from 'vitest';
import {
  compactionCut,
  decodeEntry,
  decodeHeader,
  encodeEntry,
  encodeHeader,
  scanLog,
  wireOf,
  type PurgeEntry,
} from '../../../origin/purge/purge-log-format.js';

const LOG = '3f9a1c0b7d2e';
const T = 1_767_225_600_000;

function entry(seq: number, extra: Partial<PurgeEntry> = {}): PurgeEntry {
  return { seq, id: `${LOG}-${seq}`, time: T + seq, source: 'api', soft: false, all: false, urls: [{ path: `/p${seq}.jpg` }], prefixes: [], tags: [], ...extra };
}

const HEADER = `{"anycdnPurgeLog":1,"log":"${LOG}","firstSeq":1}\n`;

describe('purge log lines', () => {
  it('encodes an entry as one JSON line with its CRC-32, and the stream form without it', () => {
    const line = encodeEntry(entry(7, { source: 'upload', soft: true, urls: [{ path: '/a.jpg' }, { host: 'cdn.example', path: '/b' }], prefixes: [{ path: '/photos' }], tags: ['cats', 'group one'] }));
    const wire =
      '{"seq":7,"id":"3f9a1c0b7d2e-7","time":1767225600007,"source":"upload","soft":true,"all":false,' +
      '"urls":[{"path":"/a.jpg"},{"host":"cdn.example","path":"/b"}],"prefixes":[{"path":"/photos"}],"tags":["cats","group one"]}';
    expect(wireOf(line)).toBe(wire);
    expect(line).toMatch(/^\{"seq":7,.*"tags":\["cats","group one"\],"sum":"[0-9a-f]{8}"\}\n$/);
    expect(line.slice(0, -1 - ',"sum":"00000000"}'.length)).toBe(wire.slice(0, -1));
    expect(decodeEntry(line.slice(0, -1), LOG)).toEqual(JSON.parse(wire));
  });

  it('refuses a line whose bytes changed, whose sum is missing, or that belongs to another log', () => {
    const line = encodeEntry(entry(3)).slice(0, -1);
    expect(decodeEntry(line, LOG)).toEqual(entry(3));
    expect(decodeEntry(line.replace('/p3.jpg', '/p4.jpg'), LOG)).toBeUndefined();
    expect(decodeEntry(line.replace(/,"sum":"[0-9a-f]{8}"\}$/, '}'), LOG)).toBeUndefined();
    expect(decodeEntry(line.slice(0, -5), LOG)).toBeUndefined();
    expect(decodeEntry(line, 'aaaaaaaaaaaa')).toBeUndefined();
    expect(decodeEntry('\0\0\0\0', LOG)).toBeUndefined();
  });

  it('reads its header and the previous version, and names a version it cannot read', () => {
    expect(encodeHeader({ log: LOG, firstSeq: 1 })).toBe(HEADER);
    expect(decodeHeader(HEADER.trim())).toEqual({ version: 1, log: LOG, firstSeq: 1 });
    expect(decodeHeader(`{"anycdnPurgeLog":2,"log":"${LOG}","firstSeq":1}`)).toBe('format version 2 is not one this anycdn reads (1)');
    expect(decodeHeader('{"seq":1}')).toBe('the first line is not a purge log header');
    expect(decodeHeader('garbage')).toBe('the first line is not a purge log header');
    expect(decodeHeader(`{"anycdnPurgeLog":1,"log":"x","firstSeq":1}`)).toBe('the header is damaged');
    expect(decodeHeader(`{"anycdnPurgeLog":1,"log":"${LOG}","firstSeq":0}`)).toBe('the header is damaged');
  });
});

describe('scanLog: a file read back after a crash', () => {
  const lines = [1, 2, 3].map((s) => encodeEntry(entry(s)));
  const whole = HEADER + lines.join('');
  const bytes = (s: string): number => Buffer.byteLength(s);

  it('reads a clean file whole', () => {
    expect(scanLog(whole)).toEqual({ header: { version: 1, log: LOG, firstSeq: 1 }, lines, goodBytes: bytes(whole), droppedBytes: 0 });
  });

  it.each([
    ['a last line without its newline', whole.slice(0, -1)],
    ['a last line cut in the middle', whole.slice(0, -20)],
    ['a last line cut right after its newline-less start', `${HEADER}${lines[0]}${lines[1]}{"se`],
    ['zeros where the last line should be', `${HEADER}${lines[0]}${lines[1]}${'\0'.repeat(lines[2]!.length)}`],
    ['zeros and a newline after them', `${HEADER}${lines[0]}${lines[1]}${'\0'.repeat(40)}\n${'\0'.repeat(10)}`],
    ['a last line with a wrong byte', `${HEADER}${lines[0]}${lines[1]}${lines[2]!.replace('/p3', '/q3')}`],
  ])('drops %s and keeps what came before', (_name, text) => {
    const good = HEADER + lines[0] + lines[1];
    expect(scanLog(text)).toEqual({ header: { version: 1, log: LOG, firstSeq: 1 }, lines: lines.slice(0, 2), goodBytes: bytes(good), droppedBytes: bytes(text) - bytes(good) });
  });

  it('keeps a header alone', () => {
    expect(scanLog(HEADER)).toEqual({ header: { version: 1, log: LOG, firstSeq: 1 }, lines: [], goodBytes: bytes(HEADER), droppedBytes: 0 });
  });

  it('starts at the header\'s first retained sequence number', () => {
    const text = `{"anycdnPurgeLog":1,"log":"${LOG}","firstSeq":41}\n` + encodeEntry(entry(41)) + encodeEntry(entry(42));
    const scanned = scanLog(text);
    expect(typeof scanned === 'string' ? scanned : scanned.lines.length).toBe(2);
  });

  it.each([
    ['a damaged line followed by a whole entry', HEADER + lines[0] + lines[1]!.replace('/p2', '/q2') + lines[2], 'entry 2 is damaged but entry 3 after it is whole: the file is damaged, not torn by a crash'],
    ['a gap in the numbering', HEADER + lines[0] + lines[2], 'entry 3 where 2 was expected: the file is damaged'],
    ['entries before the first retained one', `{"anycdnPurgeLog":1,"log":"${LOG}","firstSeq":2}\n` + lines.join(''), 'entry 1 where 2 was expected: the file is damaged'],
    ['no header line', lines[0]!.slice(0, -1), 'the file has no complete header line'],
    ['a future format', `{"anycdnPurgeLog":9,"log":"${LOG}","firstSeq":1}\n`, 'format version 9 is not one this anycdn reads (1)'],
  ])('refuses %s', (_name, text, problem) => {
    expect(scanLog(text)).toBe(problem);
  });
});

describe('compactionCut: keep the newest entries within both limits, once a quarter over one', () => {
  it.each<[string, number[], { entries: number; bytes: number }, number]>([
    ['under both limits', [10, 10, 10], { entries: 4, bytes: 100 }, 0],
    ['over the count by less than a quarter', [10, 10, 10, 10, 10], { entries: 4, bytes: 1000 }, 0],
    ['over the count by more than a quarter: back to the count', [10, 10, 10, 10, 10, 10], { entries: 4, bytes: 1000 }, 2],
    ['over the bytes by less than a quarter', [50, 50, 20], { entries: 100, bytes: 100 }, 0],
    ['over the bytes by more than a quarter: oldest dropped until within', [50, 50, 30], { entries: 100, bytes: 100 }, 1],
    ['both: the count first, then bytes', [1, 1, 1, 1, 1, 60, 60], { entries: 5, bytes: 100 }, 6],
    ['a newest entry larger than the byte limit goes too', [10, 300], { entries: 100, bytes: 100 }, 2],
    ['nothing retained', [], { entries: 1, bytes: 1 }, 0],
  ])('%s', (_name, sizes, limits, cut) => {
    expect(compactionCut(sizes, limits)).toBe(cut);
  });
});
