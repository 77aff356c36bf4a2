/**
 * Hop-by-hop fields (RFC 9110 §7.6.1): meaningful only for one connection, so a proxy or cache
 * removes them before forwarding or storing a message (RFC 9111 §3.1).
 */

/**
 * Fields that are always connection-specific: Connection and the fields RFC 9110 §7.6.1 lists
 * (Proxy-Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade), plus Proxy-Authenticate /
 * Proxy-Authorization (they concern the next proxy only, RFC 9110 §11.7) and Trailer
 * (the framing of one message).
 */
export const HOP_BY_HOP_FIELDS: readonly string[] = Object.freeze([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'trailer',
]);

const HOP_BY_HOP = new Set(HOP_BY_HOP_FIELDS);

/** The field names listed in Connection (RFC 9110 §7.6.1), lower-cased. */
export function connectionOptions(connection: string | null | undefined): string[] {
  if (!connection) return [];
  return connection
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
}

/** True when `name` is hop-by-hop for a message whose Connection field is `connection`. */
export function isHopByHop(name: string, connection?: string | null): boolean {
  const lower = name.toLowerCase();
  return HOP_BY_HOP.has(lower) || connectionOptions(connection).includes(lower);
}

/**
 * A copy of `headers` without hop-by-hop fields, including every field the message's Connection
 * header names (RFC 9110 §7.6.1: "a proxy or gateway MUST parse a received Connection header
 * field before a message is forwarded and ... remove any header fields ... with the same name").
 */
export function stripHopByHop(headers: Headers): Headers {
  const named = new Set(connectionOptions(headers.get('connection')));
  const out = new Headers();
  for (const [name, value] of headers) {
    if (HOP_BY_HOP.has(name) || named.has(name)) continue;
    out.append(name, value);
  }
  return out;
}
