/**
 * A raw HTTP/2 connection for flood tests (RFC 9113 §4, §6): it writes exactly the frames it is
 * given over TLS with ALPN h2, and reads the server's frames, noting GOAWAY and RST_STREAM. Header
 * blocks are encoded with HPACK literals that never touch the dynamic table (RFC 7541 §6.2.2).
 */
import { connect, type TLSSocket } from 'node:tls';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK string literal, not Huffman-coded; lengths up to 2^21. */
function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  return Buffer.concat([hpackInt(bytes.length, 7, 0x00), bytes]);
}

function hpackInt(value: number, prefixBits: number, flags: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([flags | value]);
  const out = [flags | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** Static table indices (RFC 7541 Appendix A) of the names used here. */
const STATIC: Record<string, number> = { ':authority': 1, ':method': 2, ':path': 4, ':scheme': 6 };

/** A header block: every field a literal without indexing (names from the static table where there). */
export function headerBlock(fields: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const index = STATIC[name];
    parts.push(index === undefined ? Buffer.concat([Buffer.from([0x00]), hpackString(name)]) : hpackInt(index, 4, 0x00), hpackString(value));
  }
  return Buffer.concat(parts);
}

export function requestBlock(path: string, extra: [string, string][] = [], method = 'GET'): Buffer {
  return headerBlock([[':method', method], [':scheme', 'https'], [':authority', 'localhost'], [':path', path], ...extra]);
}

export interface ServerFrame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

export class RawH2 {
  readonly socket: TLSSocket;
  readonly frames: ServerFrame[] = [];
  private buffer = Buffer.alloc(0);
  closed = false;
  /** When the connection closed (performance.now()), once it has. */
  closedAt: number | undefined;
  private readonly waiters = new Set<() => void>();

  private constructor(socket: TLSSocket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      while (this.buffer.length >= 9) {
        const length = this.buffer.readUIntBE(0, 3);
        if (this.buffer.length < 9 + length) break;
        this.frames.push({ type: this.buffer[3]!, flags: this.buffer[4]!, stream: this.buffer.readUInt32BE(5) & 0x7fffffff, payload: this.buffer.subarray(9, 9 + length) });
        this.buffer = this.buffer.subarray(9 + length);
      }
      this.wake();
    });
    const onClose = (): void => {
      this.closed = true;
      this.closedAt ??= performance.now();
      this.wake();
    };
    socket.on('close', onClose);
    socket.on('error', onClose);
  }

  /** Connects, sends the preface and an empty SETTINGS, and ACKs the server's SETTINGS. */
  static open(port: number, ca: Buffer): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: ['h2'] });
      socket.once('secureConnect', () => {
        if (socket.alpnProtocol !== 'h2') return reject(new Error(`ALPN gave ${String(socket.alpnProtocol)}`));
        const raw = new RawH2(socket);
        socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
        socket.off('error', reject);
        raw.until(() => raw.frames.some((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0), 5_000).then(() => {
          socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
          resolve(raw);
        }, reject);
      });
      socket.once('error', reject);
    });
  }

  /** Writes, ignoring a connection the server has closed (the point of a flood test). */
  send(data: Buffer): boolean {
    if (this.closed || this.socket.destroyed) return false;
    return this.socket.write(data);
  }

  /** The server's GOAWAY: last stream id and error code (RFC 9113 §6.8). */
  goaway(): { lastStream: number; code: number } | undefined {
    const f = this.frames.find((x) => x.type === FRAME.GOAWAY);
    return f === undefined ? undefined : { lastStream: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) };
  }

  resets(): { stream: number; code: number }[] {
    return this.frames.filter((f) => f.type === FRAME.RST_STREAM).map((f) => ({ stream: f.stream, code: f.payload.readUInt32BE(0) }));
  }

  /** Resolves once `check()` holds, or the connection closes; rejects after `timeoutMs`. */
  until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const test = (): void => {
        if (check() || this.closed) {
          clearTimeout(timer);
          this.waiters.delete(test);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(test);
        reject(new Error(`condition not met within ${timeoutMs} ms (${this.frames.length} frames read, closed: ${this.closed})`));
      }, timeoutMs);
      this.waiters.add(test);
      test();
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
