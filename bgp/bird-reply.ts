/**
 * BIRD's control-socket protocol, the pure part: splitting what the socket sends into replies,
 * and reading the replies the agent acts on (`show status`, `configure`).
 *
 * Every line starts with a 4-digit code and a separator: `-` when more lines of the reply follow,
 * a space on the reply's last line; a line starting with a space continues the previous code.
 * Codes 0xxx are success, 1xxx/2xxx table rows and headings, 8xxx run-time errors, 9xxx parse
 * errors (BIRD's doc/reply_codes). The greeting is a reply of its own: `0001 BIRD 2.0.12 ready.`
 */

export interface BirdLine {
  code: number;
  text: string;
}

export interface BirdReply {
  /** The code of the last line: what the reply amounts to. */
  code: number;
  lines: BirdLine[];
}

/** Longest line and most lines accepted in one reply: a `show route` of a full table is not for us. */
export const MAX_LINE_BYTES = 64 * 1024;
export const MAX_REPLY_LINES = 10_000;

export class BirdProtocolError extends Error {}

/** Splits the socket's text into replies as it arrives. */
export class BirdReplyReader {
  private partial = '';
  private lines: BirdLine[] = [];

  /** Feed text; returns the replies it completed (usually none or one). Throws BirdProtocolError. */
  push(text: string): BirdReply[] {
    const replies: BirdReply[] = [];
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop()!;
    if (this.partial.length > MAX_LINE_BYTES) throw new BirdProtocolError(`a line longer than ${MAX_LINE_BYTES} bytes`);
    for (const raw of parts) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      const m = /^(\d{4})([ -])(.*)$/.exec(line);
      if (m) {
        const code = Number(m[1]);
        this.lines.push({ code, text: m[3]! });
        if (m[2] === ' ') {
          replies.push({ code, lines: this.lines });
          this.lines = [];
        }
      } else if (line.startsWith(' ') && this.lines.length > 0) {
        this.lines.push({ code: this.lines[this.lines.length - 1]!.code, text: line.slice(1) });
      } else {
        throw new BirdProtocolError(`not a BIRD reply line: ${JSON.stringify(line.slice(0, 200))}`);
      }
      if (this.lines.length > MAX_REPLY_LINES) throw new BirdProtocolError(`a reply of more than ${MAX_REPLY_LINES} lines`);
    }
    return replies;
  }
}

/** 8xxx run-time and 9xxx parse errors. */
export function isErrorCode(code: number): boolean {
  return code >= 8000;
}

/** The reply as one line of text for logs and errors. */
export function replyText(reply: BirdReply): string {
  return reply.lines.map((l) => l.text.trim()).filter((t) => t !== '').join('; ');
}

export interface BirdStatus {
  /** `BIRD 2.0.12` */
  version: string | undefined;
  routerId: string | undefined;
  /** When this BIRD started, as BIRD prints it: a different value means BIRD restarted. */
  lastReboot: string | undefined;
  /** When it last read its configuration: a different value means someone ran `configure`. */
  lastReconfiguration: string | undefined;
  /** The last line: `Daemon is up and running`, `Reconfiguration in progress`, `Shutdown in progress`. */
  state: string;
}

/**
 * How far apart two of BIRD's printed times may be and still be the same moment. BIRD keeps its
 * boot and reconfiguration times on its monotonic clock and prints them converted to wall-clock
 * time with the offset of the moment it prints (lib/timer.c, tm_format_time), so while NTP slews
 * the wall clock, or a VM's clock is corrected, the same boot is printed a millisecond later every
 * few seconds (seen in the lab: a step every 2–4 s). A slew moves the clock by at most 0.5 ms a
 * second; a restart moves the boot time by at least the old process's age when last seen, and
 * also drops the control connection, which the agent sees by itself.
 */
export const BIRD_TIME_SLACK_MS = 1000;

/** `2026-12-06 17:31:35.270` (BIRD's default `timeformat base`) as milliseconds, read as UTC: only differences matter. */
export function birdTimeMs(text: string | undefined): number | undefined {
  const m = text === undefined ? null : /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (m === null) return undefined;
  const fraction = m[7] === undefined ? 0 : Number(`0.${m[7]}`) * 1000;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) + fraction;
}

/** The same printed moment: equal text, or two readable times less than BIRD_TIME_SLACK_MS apart. */
export function sameBirdTime(a: string | undefined, b: string | undefined): boolean {
  if (a === b) return true;
  const x = birdTimeMs(a);
  const y = birdTimeMs(b);
  return x !== undefined && y !== undefined && Math.abs(x - y) < BIRD_TIME_SLACK_MS;
}

/** Read `show status` (codes 1000 version, 1011 details, 0013 state). */
export function parseStatus(reply: BirdReply): BirdStatus {
  const find = (prefix: string): string | undefined => {
    for (const line of reply.lines) if (line.text.startsWith(prefix)) return line.text.slice(prefix.length).trim();
    return undefined;
  };
  return {
    version: reply.lines.find((l) => l.code === 1000)?.text.trim(),
    routerId: find('Router ID is '),
    lastReboot: find('Last reboot on '),
    lastReconfiguration: find('Last reconfiguration on '),
    state: reply.lines[reply.lines.length - 1]!.text.trim(),
  };
}

/**
 * Did `configure` take? 0003 Reconfigured, 0004 Reconfiguration in progress, 0005 queued (the
 * new file is read once the running reconfiguration ends). 8002 is a configuration error; 0006
 * means BIRD is shutting down and ignored it.
 */
export function configureAccepted(reply: BirdReply): boolean {
  return reply.code === 3 || reply.code === 4 || reply.code === 5;
}
