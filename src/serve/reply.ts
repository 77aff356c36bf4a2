/**
 * An HTTP answer as plain data: status, a header record with lower-case names, and a body that is
 * bytes in memory, a Node stream or nothing. The edge writes it straight to Node's response (one
 * `writeHead`, one `end` on a cache hit: no `Response`, no `Headers`); the origin, which routes
 * with Hono, turns it into a `Response`.
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

export function toResponse(reply: Reply): Response {
  const body = reply.body === null ? null : Buffer.isBuffer(reply.body) ? reply.body : (Readable.toWeb(reply.body) as ReadableStream<Uint8Array>);
  let headers: Record<string, string> | Headers = reply.headers as Record<string, string>;
  for (const v of Object.values(reply.headers)) {
    if (typeof v === 'string') continue;
    headers = new Headers();
    for (const [name, value] of Object.entries(reply.headers)) {
      if (typeof value === 'string') headers.append(name, value);
      else for (const one of value) headers.append(name, one);
    }
    break;
  }
  return new Response(body, { status: reply.status, headers });
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
