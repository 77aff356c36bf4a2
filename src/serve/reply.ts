/**
 * An HTTP answer as plain data: status, a header record with lower-case names, and a body that is
 * bytes in memory, a Node stream or nothing. Both servers write it straight to Node's response (one
 * `writeHead`, one `end` for bytes in memory: no `Response`, no `Headers`).
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';

/** Header values are strings; only fields that may repeat (Set-Cookie) come as lists. */
export type ReplyHeaders = Record<string, string | string[]>;

export interface Reply {
  status: number;
  headers: ReplyHeaders;
  body: Buffer | Readable | null;
  /** A body of bytes lent by a store: called once they are written (HotEntry.release). A writer that never calls it is safe. */
  release?: () => void;
  /** With a lent body: bytes right before it in its memory that the writer may fill (HotEntry.headroom). */
  headroom?: number;
}

/** A JSON reply (errors, health): `value` serialised, with Content-Type and Content-Length. */
export function jsonReply(status: number, value: unknown, extra: Record<string, string> = {}): Reply {
  const body = Buffer.from(JSON.stringify(value));
  return { status, headers: { ...extra, 'content-type': 'application/json', 'content-length': String(body.length) }, body };
}

/**
 * Writes a reply to Node's response; resolves with the body bytes handed over once they are.
 * A streamed body's headers go out with its first bytes: when the stream fails before any,
 * `failedEarly` (if given) names the answer to send instead (a 502 rather than a connection cut
 * with nothing said). A stream that fails midway destroys the response (the client sees a cut
 * connection, never a truncated "complete" body), and a client that goes away destroys the stream.
 * `sent.headAt` (if given) is set to performance.now() when the head is handed to Node (the access
 * log's time to first byte).
 */
export async function writeReply(res: ServerResponse, reply: Reply, failedEarly?: (err: unknown) => Reply, sent?: { headAt?: number }): Promise<number> {
  const body = reply.body;
  if (body === null || Buffer.isBuffer(body)) {
    res.writeHead(reply.status, reply.headers);
    res.end(body ?? undefined);
    if (sent !== undefined) sent.headAt = performance.now();
    return body?.length ?? 0;
  }
  // A client that goes away lets the body go at once, not when its next bytes arrive: the body may
  // be a reader of one still arriving from upstream (whose next bytes may be long in coming), and
  // neither a pending read nor pipeline() notices the response is gone before they do.
  if (res.destroyed) body.destroy();
  else res.once('close', () => body.destroy());
  const chunks: AsyncIterator<Buffer> = body[Symbol.asyncIterator]();
  let first: IteratorResult<Buffer>;
  try {
    first = await chunks.next();
  } catch (err) {
    if (failedEarly === undefined || res.destroyed) {
      res.destroy();
      return 0;
    }
    return writeReply(res, failedEarly(err), undefined, sent);
  }
  res.writeHead(reply.status, reply.headers);
  if (sent !== undefined) sent.headAt = performance.now();
  if (first.done === true) {
    res.end();
    return 0;
  }
  // The copy loop is written out rather than left to stream.pipeline(), which makes an
  // AbortController per call and aborts it when done (a DOMException with its stack each time: a
  // few percent of a cold miss's CPU).
  let bytes = 0;
  try {
    for (let next: IteratorResult<Buffer> = first; next.done !== true; next = await chunks.next()) {
      if (res.destroyed) throw new Error('response closed');
      bytes += next.value.length;
      if (!res.write(next.value)) await drained(res);
    }
    if (res.destroyed) throw new Error('response closed');
    res.end();
    await finished(res);
  } catch {
    // Reading or sending failed: the client must see a cut connection, never a truncated
    // "complete" body; the body (a reader of one perhaps still arriving) is let go.
    res.destroy();
    body.destroy();
  }
  return bytes;
}

/** Resolves when `res` may take more bytes, or is closed (the caller checks which). */
export function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Sends an informational (1xx) response ahead of the final one (RFC 9110 §15.2), as long as the
 * final one has not started. It goes out through the raw write Node uses for its own 100 and 103
 * (queued behind an earlier response on a pipelined connection), with the fields given, in order;
 * a field whose value could break the head is left out. Where that write does not exist (HTTP/2's
 * compatibility response), only a 103 is sent, by writeEarlyHints. Returns whether it was sent.
 */
export function writeInformational(res: ServerResponse, status: number, fields: readonly [string, string][]): boolean {
  if (status < 100 || status > 199 || status === 101 || res.headersSent || res.destroyed || res.writableEnded) return false;
  const safe = fields.filter(([name, value]) => FIELD_NAME.test(name) && !UNSAFE_VALUE.test(value));
  const raw = (res as unknown as { _writeRaw?: (data: string, encoding: BufferEncoding) => boolean })._writeRaw;
  if (typeof raw === 'function') {
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Informational'}\r\n`;
    for (const [name, value] of safe) head += `${name}: ${value}\r\n`;
    raw.call(res, head + '\r\n', 'latin1');
    return true;
  }
  if (status !== 103) return false;
  const hints: Record<string, string | string[]> = {};
  for (const [name, value] of safe) {
    const seen = hints[name];
    hints[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  try {
    res.writeEarlyHints(hints);
    return true;
  } catch {
    return false; // a Link Node will not write
  }
}

/** A field name is a token (RFC 9110 §5.1); a value has no CR, LF or NUL (§5.5). */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const UNSAFE_VALUE = /[\r\n\0]/;
