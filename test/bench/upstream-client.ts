/**
 * What the edge's upstream client costs per request, against the least a keep-alive HTTP/1.1
 * client can do: CPU of this process (process.cpuUsage) per GET of an object from the counting
 * origin (test/bench/counting-origin.ts, in a child process), 64 requests in flight, the body
 * read as the edge reads a small one (taken whole from the stream when it came with the head).
 *
 * - `undici`: the Pool the edge uses (edge/undici-parts.ts), with the edge's options.
 * - `minimal`: a measuring stick, not a client to ship: 64 keep-alive sockets, the request head
 *   written in one string, the response head parsed with indexOf/split, Content-Length bodies only
 *   (no chunked, no 1xx, no timeouts, no errors handled). Whatever a real replacement would add to
 *   it only narrows the gap, so the gap is the most replacing undici could save.
 *
 *   node dist/test/bench/upstream-client.js [--requests 20000] [--size 2048] [--rounds 6]
 *
 * Rounds alternate the two clients; prints µs of CPU per request, median and range for each.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { newPool, poolRequest } from '../../edge/undici-parts.js';
import { fixed, median, REPO_ROOT } from './bench-lib.js';

interface Answer {
  status: number;
  body: Readable;
}

const HEAD_END = Buffer.from('\r\n\r\n');

interface Exchange {
  head: string;
  resolve: (answer: Answer) => void;
  reject: (err: Error) => void;
}

interface Connection {
  socket: net.Socket;
  exchange?: Exchange;
  pending?: Buffer;
  body?: Readable;
  remaining: number;
}

/** See the module comment: Content-Length responses only, nothing else handled. */
class MinimalClient {
  private readonly idle: Connection[] = [];
  private readonly queue: Exchange[] = [];
  private readonly all = new Set<Connection>();

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly max: number,
  ) {}

  get(path: string, headers: Record<string, string>): Promise<Answer> {
    let head = `GET ${path} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    return new Promise((resolve, reject) => {
      const exchange = { head: `${head}\r\n`, resolve, reject };
      const conn = this.idle.pop();
      if (conn !== undefined) this.send(conn, exchange);
      else if (this.all.size < this.max) this.open(exchange);
      else this.queue.push(exchange);
    });
  }

  close(): void {
    for (const conn of this.all) conn.socket.destroy();
  }

  private open(exchange: Exchange): void {
    const conn: Connection = { socket: net.connect(this.port, this.host), remaining: 0 };
    this.all.add(conn);
    conn.socket.setNoDelay(true);
    conn.socket.on('data', (data: Buffer) => this.onData(conn, data));
    conn.socket.on('error', (err) => conn.exchange?.reject(err));
    conn.socket.on('close', () => this.all.delete(conn));
    this.send(conn, exchange);
  }

  private send(conn: Connection, exchange: Exchange): void {
    conn.exchange = exchange;
    conn.socket.write(exchange.head, 'latin1');
  }

  private onData(conn: Connection, data: Buffer): void {
    if (conn.body !== undefined) return this.onBody(conn, data);
    const buf = conn.pending === undefined ? data : Buffer.concat([conn.pending, data]);
    const end = buf.indexOf(HEAD_END);
    if (end === -1) {
      conn.pending = buf;
      return;
    }
    conn.pending = undefined;
    const lines = buf.toString('latin1', 0, end).split('\r\n');
    let length = 0;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (line.slice(0, colon).toLowerCase() === 'content-length') length = Number(line.slice(colon + 1).trim());
    }
    conn.body = new Readable({ read() {} });
    conn.remaining = length;
    conn.exchange!.resolve({ status: Number(lines[0]!.slice(9, 12)), body: conn.body });
    this.onBody(conn, buf.subarray(end + 4));
  }

  private onBody(conn: Connection, data: Buffer): void {
    if (data.length > 0) conn.body!.push(data);
    conn.remaining -= data.length;
    if (conn.remaining > 0) return;
    conn.body!.push(null);
    conn.body = undefined;
    conn.exchange = undefined;
    const next = this.queue.shift();
    if (next !== undefined) this.send(conn, next);
    else this.idle.push(conn);
  }
}

/** The body as the edge takes a small one (edge/fetcher.ts bufferedBody), else read to its end. */
async function bodyOf(body: Readable, size: number): Promise<Buffer> {
  if (body.readableLength === size) {
    const whole = body.read(size) as Buffer | null;
    body.resume();
    if (whole !== null) return whole;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: 'string', default: '20000' }, size: { type: 'string', default: '2048' }, rounds: { type: 'string', default: '6' } } });
  const requests = Number(values.requests);
  const size = Number(values.size);
  const origin = spawn(process.execPath, [`${REPO_ROOT}dist/test/bench/counting-origin.js`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<string>((resolve) => createInterface({ input: origin.stdout! }).once('line', resolve));
    const url = new URL((JSON.parse(line) as { url: string }).url);
    // What the edge sends on a miss (edge/forward-headers.ts) for a client that sent Host alone.
    const headers = { 'x-forwarded-for': '127.0.0.1', via: '1.1 anycdn-edge-1', 'x-forwarded-host': 'cdn.example' };
    const pool = newPool(url.origin, { connections: 64, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 5000, bodyTimeout: 5000, connect: { timeout: 5000 } });
    const minimal = new MinimalClient(url.hostname, Number(url.port), 64);
    const clients: Record<string, (path: string) => Promise<Answer>> = {
      undici: async (path) => {
        const res = await poolRequest(pool, { method: 'GET', path, headers });
        return { status: res.statusCode, body: res.body };
      },
      minimal: (path) => minimal.get(path, headers),
    };
    const round = async (name: string, tag: string): Promise<number> => {
      let next = 0;
      const before = process.cpuUsage();
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (next < requests) {
            const res = await clients[name]!(`/up/${tag}/${next++}-${size}.bin`);
            const body = await bodyOf(res.body, size);
            if (res.status !== 200 || body.length !== size) throw new Error(`${name}: ${res.status}, ${body.length} bytes`);
          }
        }),
      );
      const used = process.cpuUsage(before);
      return (used.user + used.system) / requests;
    };
    for (const name of Object.keys(clients)) await round(name, `warm-${name}`);
    const results: Record<string, number[]> = { undici: [], minimal: [] };
    for (let r = 0; r < Number(values.rounds); r++) {
      for (const name of r % 2 === 0 ? ['undici', 'minimal'] : ['minimal', 'undici']) {
        const us = await round(name, `${name}-${r}`);
        results[name]!.push(us);
        console.log(`${name} round ${r + 1}: ${fixed(us, 1)} µs of CPU per request, load ${os.loadavg()[0]!.toFixed(2)}`);
      }
    }
    for (const [name, runs] of Object.entries(results)) console.log(`${name}: median ${fixed(median(runs), 1)} µs, range ${fixed(Math.min(...runs), 1)}–${fixed(Math.max(...runs), 1)}`);
    minimal.close();
    await pool.destroy();
  } finally {
    origin.kill('SIGTERM');
  }
}

await main();
