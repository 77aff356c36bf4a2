/**
 * Server-Sent Events, read incrementally (HTML Living Standard §9.2.6 "Interpreting an event
 * stream"): text comes in chunks cut anywhere, and every complete event comes out once its blank
 * line has arrived. Lines end in CRLF, LF or CR; `:` starts a comment; `data` lines join with LF;
 * an event without data is not dispatched; `retry` takes digits only. Pure and bounded: a line
 * longer than `maxLineBytes` (a stream that is not what it claims) fails the parser.
 */

export interface SseEvent {
  /** The `event` field; "message" when absent. */
  event: string;
  data: string;
  /** The last event id seen on the stream (the `id` field persists across events). */
  lastEventId: string;
}

export class SseParser {
  private buffer = '';
  /** A CR ended the last chunk: an LF starting the next one belongs to it. */
  private pendingCr = false;
  private eventType = '';
  private data: string[] = [];
  private lastEventId = '';
  /** The reconnection time the stream asked for, in ms; undefined until it does. */
  retryMs: number | undefined;

  constructor(private readonly maxLineBytes = 1024 * 1024) {}

  /** Feed the next piece of text; returns the events it completed, in order. Throws on a line past the bound. */
  push(chunk: string): SseEvent[] {
    let text = chunk;
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const end = lineEnd(this.buffer, start);
      if (end === -1) break;
      const line = this.buffer.slice(start, end);
      if (this.buffer[end] === '\r') {
        if (end + 1 === this.buffer.length) {
          this.pendingCr = true;
          start = end + 1;
        } else {
          start = this.buffer[end + 1] === '\n' ? end + 2 : end + 1;
        }
      } else {
        start = end + 1;
      }
      const event = this.line(line);
      if (event !== undefined) out.push(event);
    }
    this.buffer = this.buffer.slice(start);
    if (this.buffer.length > this.maxLineBytes) throw new Error(`an event stream line longer than ${this.maxLineBytes} characters`);
    return out;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
    return undefined;
  }

  private dispatch(): SseEvent | undefined {
    const data = this.data;
    const type = this.eventType;
    this.data = [];
    this.eventType = '';
    if (data.length === 0) return undefined;
    return { event: type === '' ? 'message' : type, data: data.join('\n'), lastEventId: this.lastEventId };
  }
}

function lineEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a || c === 0x0d) return i;
  }
  return -1;
}
