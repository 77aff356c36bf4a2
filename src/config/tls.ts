/**
 * The `tls` setting shared by the edge and the origin (an HTTPS listener of its own, certificates
 * chosen by SNI, session ticket keys), and the edge's `upstreamTls` (how it verifies an https://
 * upstream and which client certificate it shows). Files are named here and read by
 * src/serve/tls.ts, at start-up and again when they change.
 */
import { z } from 'zod';
import { listenAddress } from './common.js';

const file = z.string().min(1, 'a file path');

/** A certificate chain (leaf first, then intermediates) and its private key, PEM files. */
const certificatePair = z.strictObject({
  cert: file,
  key: file,
});

const tlsShape = {
  /** Address of the HTTPS listener, e.g. `0.0.0.0:443`. Required: the cleartext `listen` stays as it is. */
  listen: z
    .union([z.string(), z.number()], { error: (issue) => (issue.input === undefined ? 'required: the HTTPS listener\'s address, e.g. "0.0.0.0:443"' : 'expected "host:port" or a port number') })
    .pipe(listenAddress),
  /**
   * Certificate/key pairs, chosen by the name a client sends (SNI) among each certificate's
   * subjectAltName DNS names (exact, or `*.example.com` for one label); the first pair is the
   * default, for clients that send no name or one no certificate covers. Reloaded when a file
   * changes or on SIGHUP. 1–100 pairs.
   */
  certificates: z.array(certificatePair).min(1, 'at least one { cert, key } pair').max(100, 'at most 100 pairs'),
  /**
   * Oldest TLS version accepted: `TLSv1.2` (default: every browser of the last ten years) or
   * `TLSv1.3`. TLS 1.3 is always preferred when the client has it; TLS 1.2 offers only ECDHE with
   * AEAD ciphers.
   */
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  /**
   * Session ticket keys, so clients resume sessions (a shorter handshake) on any process of this
   * node and, with one file deployed to every node, on any node. A text file, one key per line:
   * 48 random bytes in base64 (`openssl rand -base64 48`); `#` starts a comment. The first key
   * encrypts new tickets, every key decrypts; re-read when it changes. Rotation: add a key at the
   * top everywhere, later remove the last. Default: a random key per node, made at start (every
   * process of a `workers: N` node shares it).
   */
  ticketKeyFile: file.optional(),
} as const;

/** The edge's `tls`. */
export const edgeTlsSchema = z.strictObject({
  ...tlsShape,
  /**
   * The cleartext listener answers content requests with a 301 to the same URL on https (the TLS
   * listener's port, left out when 443); `/_cdn/` routes are still answered on both. Default false.
   */
  redirectHttp: z.boolean().default(false),
  /**
   * Fresh memory hits on TLS connections answered before Node's HTTP/1.1 parser, as on the
   * cleartext listener (src/serve/quick-front.ts; HTTP/2 streams have their own early answer).
   * Default true; false only to measure what it saves (bench:edge does).
   */
  quickFront: z.boolean().default(true),
});

/** The origin's `tls`. */
export const originTlsSchema = z.strictObject({
  ...tlsShape,
  /**
   * CA certificates (PEM files) that sign the client certificates the origin accepts: when set,
   * every HTTPS client must show a certificate one of them signed (mutual TLS: only your edges
   * reach the origin). Default: none, no client certificate asked for.
   */
  clientCa: z.array(file).min(1, 'at least one CA file, or leave clientCa out').optional(),
});

export type EdgeTlsConfig = z.output<typeof edgeTlsSchema>;
export type OriginTlsConfig = z.output<typeof originTlsSchema>;
export type TlsConfig = EdgeTlsConfig | OriginTlsConfig;

/** The edge's `upstreamTls`: verification of an https:// upstream, and a client certificate for it. */
export const upstreamTlsSchema = z
  .strictObject({
    /** CA certificates (PEM files) trusted besides Node's bundled roots (a private CA that signs your origin's). */
    ca: z.array(file).default([]),
    /** The name the upstream's certificate must carry, and sent in SNI. Default: the upstream URL's host. */
    servername: z.string().min(1).max(253).optional(),
    /** A client certificate chain (PEM) shown to upstream, for an origin that requires one (`tls.clientCa`). With `key`. */
    cert: file.optional(),
    /** The client certificate's private key (PEM). With `cert`. */
    key: file.optional(),
  })
  .superRefine((value, ctx) => {
    if ((value.cert === undefined) !== (value.key === undefined)) {
      ctx.addIssue({ code: 'custom', path: [value.cert === undefined ? 'cert' : 'key'], message: 'cert and key go together: give both or neither' });
    }
  });

export type UpstreamTlsConfig = z.output<typeof upstreamTlsSchema>;
