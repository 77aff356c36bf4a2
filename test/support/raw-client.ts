/**
 * A raw HTTP/1.1 connection for tests that need to see the bytes: it writes exactly what it is
 * given (pipelined, split, malformed) and reads whole responses, framed by Content-Length, in
 * order. The caller destroys `socket`.
 */
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  head: string;
  fields: Record<string, string>;
  body: Buffer;
}

export class RawClient {
  private buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  readonly socket: Socket;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    this.socket.on('error', () => undefined);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** The next response, HEAD ones with no body when `head` says so. */
  async response(head = false, timeoutMs = 5000): Promise<RawResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end >= 0) {
        const text = this.buffer.toString('latin1', 0, end);
        const [statusLine, ...lines] = text.split('\r\n');
        const fields: Record<string, string> = {};
        for (const line of lines) fields[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
        const length = head ? 0 : Number(fields['content-length'] ?? 0);
        if (this.buffer.length >= end + 4 + length) {
          const body = this.buffer.subarray(end + 4, end + 4 + length);
          this.buffer = this.buffer.subarray(end + 4 + length);
          return { status: Number(statusLine!.split(' ')[1]), head: text, fields, body };
        }
      }
      if (this.closed) throw new Error(`connection closed with ${this.buffer.length} bytes unread`);
      if (Date.now() > deadline) throw new Error('no whole response in time');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async closedWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  get unread(): number {
    return this.buffer.length;
  }
}

