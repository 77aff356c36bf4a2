/**
 * An HTTP answer as plain data: status, a header record with lower-case names, and a body that is
 * bytes in memory, a Node stream or nothing. Both servers write it straight to Node's response (one
 * `writeHead`, one `end` for bytes in memory: no `Response`, no `Headers`).
 */
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Header values are strings; only fields that may repeat (Set-Cookie) come as lists. */
export type ReplyHeaders = Record<string, string | string[]>;

export interface Reply {
  status: number;
  headers: ReplyHeaders;
  body: Buffer | Readable | null;
}

/** A JSON reply (errors, health): `value` serialised, with Content-Type and Content-Length. */
export function jsonReply(status: number, value: unknown, extra: Record<string, string> = {}): Reply {
  const body = Buffer.from(JSON.stringify(value));
  return { status, headers: { ...extra, 'content-type': 'application/json', 'content-length': String(body.length) }, body };
}

/**
 * Writes a reply to Node's response. Resolves when the body is handed over; a stream that fails
 * midway destroys the response (the client sees a cut connection, never a truncated "complete"
 * body), and a client that goes away destroys the stream.
 */
export async function writeReply(res: ServerResponse, reply: Reply): Promise<void> {
  res.writeHead(reply.status, reply.headers);
  const body = reply.body;
  if (body === null || Buffer.isBuffer(body)) {
    res.end(body ?? undefined);
    return;
  }
  try {
    await pipeline(body, res);
  } catch {
    // Reading or sending failed: pipeline() has destroyed both sides already.
  }
}
