/**
 * The quick front of a Node HTTP server: it reads each connection's requests itself and answers
 * the ones a `QuickResponder` can answer at once from memory (the edge's fresh hits) by writing a
 * response head prepared once per second and the body bytes straight to the socket. The first
 * request it does not answer, or cannot read with certainty, hands the connection over to Node's
 * HTTP server together with every byte not yet answered, and Node serves the connection from then
 * on as if it had had it from the start.
 *
 * Why: Node's HTTP server spends ~15–25 µs of CPU on a request before and after the handler
 * (parser callbacks, request and response objects, header validation and formatting). For a 1 KiB
 * hit that is most of the cost; Varnish and nginx spend ~10 µs for the whole request.
 *
 * What the front reads is deliberately narrow, so that anything unusual gets Node's handling
 * (limits, errors, timeouts, bodies): a whole request head in the bytes at hand, `GET` or `HEAD`,
 * an origin-form target of visible ASCII, `HTTP/1.1`, each field `token:` then visible ASCII,
 * spaces or tabs, each field name once, no body (Content-Length, Transfer-Encoding), no Expect or
 * Upgrade or Proxy-Connection, Connection only `keep-alive` or `close`, a Host, at most 64 fields
 * and 16 KiB (Node's limit). Anything else, a head split over several reads included, goes to Node.
 */
import { STATUS_CODES } from 'node:http';
import type { Server, Socket } from 'node:net';
import { IdleSweep } from './idle-sweep.js';
import { readHead, type FieldNames } from './quick-head.js';

export { fieldNames, readHead, type FieldNames } from './quick-head.js';

/** A request as the front read it; shaped like the fields of Node's IncomingMessage it stands for. */
export interface QuickRequest {
  method: 'GET' | 'HEAD';
  /** The request target, as sent. */
  url: string;
  /** Field names as sent and values without surrounding whitespace, in turn. */
  rawHeaders: string[];
  /** The same fields by lower-case name (each name occurs once). */
  readonly headers: Record<string, string>;
  /**
   * The value of the field named `name` (lower case), undefined without one. The front's
   * requests make no string for the fields not asked for (quick-head.ts), where `rawHeaders` and
   * `headers` make one for every field, and each name occurs once.
   */
  field?(name: string): string | undefined;
  /** Whether any of `names` is among the fields (with `field`: a request the front read). */
  hasAny?(names: FieldNames): boolean;
  /** How the request came, for the access log: `HTTP/1.1` (the front's only version) when left out, `HTTP/2.0` for a stream. */
  readonly protocol?: string;
}

export interface QuickReply {
  status: number;
  /**
   * Lower-case names. Reused records are worth it: the head written for a record is kept until
   * the next second (a record is never to be changed once returned). `connection: close` makes
   * the front close the connection after this answer.
   */
  headers: Readonly<Record<string, string>>;
  /** Written after the head; null for none (a HEAD request, or a body-less answer). */
  body: Buffer | null;
  /** Called once the body is written (or will not be): its memory is lent (HotEntry.release). */
  release?: () => void;
  /**
   * With `release`: bytes right before `body` in its memory that the front may fill. When the head
   * fits there, it is copied in and head and body leave as one buffer, one write (HotEntry.headroom).
   */
  headroom?: number;
}

/** Answers a request now, or returns undefined for Node's server to answer it. `socket`: the connection it came on (its client's address). */
export type QuickResponder = (req: QuickRequest, socket: Socket) => QuickReply | undefined;

export interface QuickFrontOptions {
  /** Idle time allowed before a connection's first request. Default 15 s (Node's `headersTimeout` default). */
  firstRequestTimeoutMs?: number;
  /** Idle time allowed between requests (and while an answer waits for the client to read). Default 65 s. */
  keepAliveTimeoutMs?: number;
  /**
   * The server event that hands over a connection: `connection` (default; node:http), or
   * `secureConnection` for a TLS server, whose decrypted connections the front then reads.
   */
  event?: 'connection' | 'secureConnection';
  /** Whether the front takes this connection; the others go straight to the server's own handling (HTTP/2 on a TLS server). Default: all. */
  accepts?: (socket: Socket) => boolean;
}

export interface QuickFront {
  /** Ends every held connection once its answers are written (stop accepting is the server's). */
  closeIdle(): void;
  /** Destroys every held connection. */
  destroyAll(): void;
}

const UNSAFE_IN_HEAD = /[\r\n\0]/;

/**
 * Puts a front before `server`'s connection handling: its own `connection` listeners (Node's
 * HTTP connection handler) are taken off and called for the connections the front hands over.
 */
export function installQuickFront(server: Server, respond: QuickResponder, options: QuickFrontOptions = {}): QuickFront {
  const firstTimeout = options.firstRequestTimeoutMs ?? 15_000;
  const keepAliveTimeout = options.keepAliveTimeoutMs ?? 65_000;
  const keepAliveField = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(keepAliveTimeout / 1000)}\r\n\r\n`;
  const event = options.event ?? 'connection';
  const nodeHandlers = server.listeners(event) as ((socket: Socket) => void)[];
  server.removeAllListeners(event);
  /** Connections held by the front, each with whether it has requests waiting to be answered. */
  const held = new Map<Socket, { busy(): boolean; finish(): void }>();
  const heads = new HeadCache(keepAliveField);
  // Idle limits met within a tenth of the shorter one (idle-sweep.ts: no timer restarted per request).
  const idle = new IdleSweep(Math.max(10, Math.min(firstTimeout, keepAliveTimeout) / 10), (socket) => socket.destroy());
  /** close() was called: connections end once what they have read is answered. */
  let stopping = false;

  server.on(event, (socket: Socket) => {
    if (options.accepts !== undefined && !options.accepts(socket)) {
      for (const handler of nodeHandlers) handler.call(server, socket);
      return;
    }
    /** Nothing more is read: the connection closes once the answers are written. */
    let closing = false;
    let answered = false;
    /** The client has sent all it will (it half-closed). */
    let clientEnded = false;
    /** Bytes read but not answered, while the client catches up with reading the answers so far. */
    let waiting: Buffer | undefined;
    /** Releases of lent bodies still in the socket's queue (sendLent). */
    const unsent: (() => void)[] = [];

    const finish = (): void => {
      // Nothing more is read; the socket goes once the answers are flushed, as Node's server does
      // (it allows half-open connections, so end() alone would leave it readable).
      closing = true;
      socket.pause();
      socket.destroySoon();
    };

    const handOver = (rest: Buffer): void => {
      socket.off('data', onData).off('end', onEnd).off('error', onError).off('drain', onDrain);
      idle.unwatch(socket);
      held.delete(socket);
      for (const handler of nodeHandlers) handler.call(server, socket);
      // Synchronously, before any further read reaches Node's parser; then what Node missed.
      if (rest.length > 0) socket.emit('data', rest);
      if (clientEnded) socket.emit('end');
    };

    /** Answers the requests in `bytes` until one is not the front's, or the client must read first. */
    const answer = (bytes: Buffer): void => {
      let at = 0;
      while (at < bytes.length && !closing) {
        if (socket.writableNeedDrain) {
          // The client is behind reading: what it sent waits, unread, and TCP holds back the rest.
          waiting = bytes.subarray(at);
          socket.pause();
          return;
        }
        const head = readHead(bytes, at);
        if (head === undefined) return handOver(bytes.subarray(at));
        let reply: QuickReply | undefined;
        try {
          reply = respond(head.request, socket);
        } catch {
          // A responder's bug: Node's server answers the request and reports what fails.
          return handOver(bytes.subarray(at));
        }
        const out = reply === undefined ? undefined : heads.get(reply, head.close);
        if (reply === undefined || out === undefined) return handOver(bytes.subarray(at));
        at = head.end;
        if (unsent.length !== 0 && socket.writableLength === 0) releaseUnsent(unsent);
        writeReply(socket, out.head, reply, head.request.method !== 'HEAD', unsent);
        if (!answered) {
          answered = true;
          idle.watch(socket, keepAliveTimeout); // idle from now: every read and write restarts it
        }
        if (out.close || head.close) return finish();
      }
      if (clientEnded || stopping) finish();
    };
    function onData(chunk: Buffer): void {
      if (!closing) answer(chunk);
    }
    function onDrain(): void {
      if (socket.writableLength === 0) releaseUnsent(unsent);
      if (waiting === undefined) return;
      const rest = waiting;
      waiting = undefined;
      socket.resume();
      answer(rest);
    }
    function onEnd(): void {
      clientEnded = true;
      // Once what was read is answered, end our side too.
      if (waiting === undefined) finish();
    }
    function onError(): void {
      socket.destroy();
    }
    held.set(socket, { busy: () => waiting !== undefined, finish });
    socket.once('close', () => {
      held.delete(socket);
      idle.unwatch(socket);
    });
    socket.on('data', onData).on('end', onEnd).on('error', onError).on('drain', onDrain);
    idle.watch(socket, firstTimeout);
  });

  return {
    closeIdle() {
      stopping = true;
      // A connection is idle unless requests wait for the client to read: answers are written whole, at once.
      for (const state of held.values()) if (!state.busy()) state.finish();
    },
    destroyAll() {
      for (const socket of held.keys()) socket.destroy();
    },
  };
}

/**
 * Writes `head`, then the body of `reply` unless `withBody` is false (a HEAD request). A lent body
 * with room for the head before it goes out as one buffer: one write through the socket's stream,
 * where a head and a body written apart cost a corked pair of writes gathered into one writev, with
 * per-chunk bookkeeping in the stream (seen in perf profiles of 50 KiB disk hits under wrk).
 * `unsent`: the connection's lent bodies still queued in the socket (sendLent).
 */
function writeReply(socket: Socket, head: Buffer, reply: QuickReply, withBody: boolean, unsent: (() => void)[]): void {
  const body = withBody ? reply.body : null;
  if (body === null) {
    socket.write(head);
    reply.release?.();
    return;
  }
  if (reply.headroom !== undefined && head.length <= reply.headroom) {
    const whole = Buffer.from(body.buffer, body.byteOffset - head.length, head.length + body.length);
    head.copy(whole, 0);
    if (reply.release === undefined) socket.write(whole);
    else sendLent(socket, whole, reply.release, unsent);
    return;
  }
  // The write's callback runs once the socket is done with the bytes (written, or failed).
  socket.cork();
  socket.write(head);
  socket.write(body, reply.release);
  socket.uncork();
}

/**
 * Writes lent memory and gives it back (`release`) once the socket no longer reads it. Nearly
 * always the kernel takes every byte within write() itself: the socket's queue is then empty
 * (`writableLength` 0) when write() returns, and the memory goes back at once, without a write
 * callback, which costs the stream a tick and an allocation per write (Writable's onwrite
 * schedules afterWrite for any callback but none). Bytes the kernel did not take wait in the
 * socket's queue: their release goes into `unsent`, and runs once that queue is empty
 * (releaseUnsent: on 'drain', or when a later write finds it empty; the queue is written in
 * order). Memory still queued when the connection goes elsewhere or closes is never given back,
 * and its pool simply makes a new buffer (ReadBuffers).
 */
function sendLent(socket: Socket, data: Buffer, release: () => void, unsent: (() => void)[]): void {
  if (socket.writableLength !== 0) {
    // Behind earlier bytes: given back with its callback, after them.
    socket.write(data, release);
    return;
  }
  socket.write(data);
  if (socket.writableLength === 0) release();
  else unsent.push(release);
}

/** The socket's queue is empty: every body written before is out of its memory (sendLent). */
function releaseUnsent(unsent: (() => void)[]): void {
  if (unsent.length === 0) return;
  const releases = unsent.splice(0);
  for (const release of releases) release();
}

/**
 * Response heads by header record, made once per record and second (Date). The records come
 * from the responder, which reuses one per object and second, so most answers find their head.
 */
class HeadCache {
  private second = -1;
  private date = '';
  private heads = new WeakMap<object, { head: Buffer; close: boolean } | null>();

  constructor(private readonly keepAliveField: string) {}

  /**
   * The head for `reply`, or undefined when a field could not be written safely. `close`: the
   * client asked to close the connection after it, and the head says so (made anew each time).
   */
  get(reply: QuickReply, close: boolean): { head: Buffer; close: boolean } | undefined {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.second) {
      this.second = second;
      this.date = new Date(second * 1000).toUTCString();
      this.heads = new WeakMap();
    }
    if (close) return formatHead(reply, this.date, this.keepAliveField, true) ?? undefined;
    let out = this.heads.get(reply.headers);
    if (out === undefined) {
      out = formatHead(reply, this.date, this.keepAliveField);
      // Keyed by the record alone: one record, one status.
      this.heads.set(reply.headers, out);
    }
    return out ?? undefined;
  }
}

function formatHead(reply: QuickReply, date: string, keepAliveField: string, closeAsked = false): { head: Buffer; close: boolean } | null {
  let head = `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? ''}\r\n`;
  for (const name in reply.headers) {
    const value = reply.headers[name]!;
    // A stored field carrying a line break would split the response: leave it to Node, which refuses it.
    if (UNSAFE_IN_HEAD.test(name) || UNSAFE_IN_HEAD.test(value)) return null;
    if (name !== 'connection' && name !== 'keep-alive') head += `${name}: ${value}\r\n`;
  }
  if (!('date' in reply.headers)) head += `Date: ${date}\r\n`;
  const close = closeAsked || reply.headers['connection']?.toLowerCase() === 'close';
  head += close ? 'Connection: close\r\n\r\n' : keepAliveField;
  return { head: Buffer.from(head, 'latin1'), close };
}
