/**
 * The certificates of an HTTPS listener: each configured certificate/key pair loaded, checked
 * (the PEM parses, the key matches, not expired) and made into a SecureContext; the one a client
 * gets chosen by the name it sends (SNI) among each certificate's subjectAltName DNS names; the
 * first pair for a client that sends none, or a name nothing covers (as nginx's default server).
 *
 * Reloading (a file changed, or SIGHUP) builds every pair again and swaps the whole set at once,
 * between two handshakes: connections already open keep the session they have, new handshakes get
 * the new certificates. A pair that no longer loads keeps its previous version, with a log line
 * naming the file; its expiry stays visible in the metrics (`…tls_certificate_expiry_timestamp_seconds`).
 * Name matching is pure (`certificateNames`, `nameIndex`, `selectCertificate`) and tested apart.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { Counter, Gauge, type Registry } from '../prom-parts.js';
import type { TlsConfig } from '../config/tls.js';
import { CdnError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseTicketKeys, randomTicketKey, TicketKeys } from './ticket-keys.js';
import { watchFiles, type FileWatch } from './watch-files.js';

/**
 * Cipher suites, in order of preference: TLS 1.3's three, then for TLS 1.2 only ECDHE key exchange
 * with AEAD ciphers (Mozilla's "intermediate" list). AES-GCM first: with AES-NI it is the cheapest
 * per byte; ChaCha20 for clients without it.
 */
export const CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Key exchange groups: X25519 first (fast, what browsers send a key share for), then the NIST curves. */
const ECDH_CURVES = 'X25519:P-256:P-384';

/**
 * The session ID context every context shares. Node's default is a hash of the command line, which
 * differs between nodes started with other arguments, and a session is only resumed under the
 * context it was made in.
 */
const SESSION_ID_CONTEXT = 'anycdn';

/** How long changes to the watched files settle before a reload (a deploy hook writes the certificate, then the key). */
export const RELOAD_DEBOUNCE_MS = 300;

/** The options every context of a listener is made with, besides its certificate and key. */
export function contextOptions(config: Pick<TlsConfig, 'minVersion'>, extra: SecureContextOptions = {}): SecureContextOptions {
  return { minVersion: config.minVersion, ciphers: CIPHERS, ecdhCurve: ECDH_CURVES, honorCipherOrder: true, sessionIdContext: SESSION_ID_CONTEXT, ...extra };
}

// ---- names (pure) ----

/**
 * The DNS names a certificate is for: its subjectAltName DNS entries (RFC 6125 §6.4.4: the CN
 * counts only without any), lower-cased. `subjectAltName` as Node gives it: `DNS:a, DNS:*.b, IP Address:…`.
 */
export function certificateNames(subjectAltName: string | undefined, subject: string): string[] {
  const dns: string[] = [];
  for (const entry of (subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) dns.push(entry.slice(4).toLowerCase());
  }
  if (dns.length > 0) return dns;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}

export interface NameIndex {
  exact: ReadonlyMap<string, number>;
  /** `*.example.com` by `example.com`. */
  wildcard: ReadonlyMap<string, number>;
}

/** Names to the pair that serves them; when two pairs name the same, the first configured wins. */
export function nameIndex(pairs: readonly { names: readonly string[] }[]): NameIndex {
  const exact = new Map<string, number>();
  const wildcard = new Map<string, number>();
  pairs.forEach((pair, i) => {
    for (const name of pair.names) {
      if (name.startsWith('*.')) {
        if (!wildcard.has(name.slice(2))) wildcard.set(name.slice(2), i);
      } else if (!exact.has(name)) exact.set(name, i);
    }
  });
  return { exact, wildcard };
}

/**
 * The pair for a client's server name (RFC 6066 §3), or undefined for the default: an exact name
 * first, then a wildcard covering exactly one leftmost label (RFC 6125 §6.4.3: `*.example.com`
 * covers `a.example.com`, not `example.com` or `a.b.example.com`). Case-insensitive; a trailing
 * dot is ignored.
 */
export function selectCertificate(index: NameIndex, servername: string): number | undefined {
  const name = servername.toLowerCase().replace(/\.$/, '');
  const exact = index.exact.get(name);
  if (exact !== undefined) return exact;
  const dot = name.indexOf('.');
  return dot > 0 ? index.wildcard.get(name.slice(dot + 1)) : undefined;
}

// ---- loading ----

export interface LoadedPair {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  names: string[];
  /** The leaf certificate's notAfter, ms since the epoch. */
  notAfter: number;
}

function invalid(file: string, message: string, cause?: unknown): CdnError {
  return new CdnError('invalid_certificate', 'client', `${file}: ${message}`, { cause });
}

/**
 * Reads and checks one pair: the certificate file parses (its first certificate is the leaf), the
 * key file holds an unencrypted private key, the key is the certificate's, the certificate has not
 * expired at `now`, and OpenSSL accepts the two together. Throws a CdnError naming the file at fault.
 */
export async function loadPair(certFile: string, keyFile: string, now: number): Promise<LoadedPair> {
  const read = async (file: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (err) {
      throw invalid(file, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
    }
  };
  const [cert, key] = await Promise.all([read(certFile), read(keyFile)]);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw invalid(certFile, 'not a PEM certificate', err);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw invalid(keyFile, `not an unencrypted PEM private key (${(err as Error).message})`, err);
  }
  if (!leaf.checkPrivateKey(privateKey)) throw invalid(keyFile, `this key does not match the certificate in ${certFile}`);
  const notAfter = Date.parse(leaf.validTo);
  if (!(notAfter > now)) throw invalid(certFile, `the certificate expired on ${new Date(notAfter).toISOString()}`);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw invalid(certFile, `OpenSSL refuses this certificate with ${keyFile}: ${(err as Error).message}`, err);
  }
  return { certFile, keyFile, cert, key, names: certificateNames(leaf.subjectAltName, leaf.subject), notAfter };
}

// ---- the live set ----

interface CertificateSet {
  pairs: readonly LoadedPair[];
  contexts: readonly SecureContext[];
  index: NameIndex;
}

export interface CertificateStoreOptions {
  config: Pick<TlsConfig, 'certificates' | 'minVersion' | 'ticketKeyFile'> & { clientCa?: readonly string[] | undefined };
  logger: Logger;
  /** Where the expiry gauge and reload counter go, and their name prefix (`anycdn_edge_`). */
  metrics?: { registry: Registry; prefix: string };
  /** Ticket keys handed down (a cluster's primary made them); default: the key file, or a random key. */
  ticketKey?: Buffer;
  now?: () => number;
}

/**
 * The certificates and ticket keys of one listener, kept current. `sniCallback` and
 * `defaultOptions` go into the server; `attach` lets the store replace the server's default context
 * when the first pair changes.
 */
export class CertificateStore {
  private current: CertificateSet;
  private server: { setSecureContext(options: SecureContextOptions): void; _sharedCreds?: SecureContext } | undefined;
  private watches: FileWatch[] = [];
  private reloading: Promise<void> = Promise.resolve();
  private readonly expiry: Gauge | undefined;
  private readonly reloads: Counter | undefined;

  private constructor(
    private readonly options: CertificateStoreOptions,
    readonly ticketKeys: TicketKeys,
    pairs: LoadedPair[],
    /** CA certificates that sign the client certificates accepted (`clientCa`), PEM; undefined when none are asked for. */
    private clientCa: Buffer[] | undefined,
  ) {
    const prefix = options.metrics?.prefix ?? '';
    const registers = options.metrics === undefined ? [] : [options.metrics.registry];
    if (options.metrics !== undefined) {
      // A node's processes report one value each; the sum over them would be meaningless: the earliest counts.
      this.expiry = new Gauge({ name: `${prefix}tls_certificate_expiry_timestamp_seconds`, help: 'When each certificate in use expires (its notAfter), seconds since the epoch', labelNames: ['cert', 'name'], registers, aggregator: 'min' });
      this.reloads = new Counter({ name: `${prefix}tls_reloads_total`, help: 'Certificate and ticket key reloads: ok, or failed (the previous ones stay in use)', labelNames: ['result'], registers });
      this.reloads.inc({ result: 'ok' }, 0);
      this.reloads.inc({ result: 'failed' }, 0);
    }
    this.current = this.build(pairs);
    this.report();
  }

  /** Loads every pair and the ticket keys; throws the first problem (naming its file): nothing to fall back on yet. */
  static async open(options: CertificateStoreOptions): Promise<CertificateStore> {
    const now = (options.now ?? Date.now)();
    const pairs: LoadedPair[] = [];
    for (const { cert, key } of options.config.certificates) pairs.push(await loadPair(cert, key, now));
    const file = options.config.ticketKeyFile;
    const keys = options.ticketKey !== undefined ? [options.ticketKey] : file !== undefined ? await readTicketKeys(file) : [randomTicketKey()];
    const clientCa = options.config.clientCa === undefined ? undefined : await readCaFiles(options.config.clientCa);
    return new CertificateStore(options, new TicketKeys(keys), pairs, clientCa);
  }

  /** Options for the server's default context: the first pair's. */
  defaultOptions(): SecureContextOptions {
    return this.optionsFor(this.current.pairs[0]!);
  }

  private optionsFor(pair: LoadedPair): SecureContextOptions {
    return contextOptions(this.options.config, { cert: pair.cert, key: pair.key, ...(this.clientCa === undefined ? {} : { ca: this.clientCa }) });
  }

  /** The server whose default context (no SNI) follows the first pair; its tickets use these keys. */
  attach(server: NonNullable<CertificateStore['server']>): void {
    this.server = server;
    if (server._sharedCreds !== undefined) this.ticketKeys.install(server._sharedCreds);
  }

  /** tls.Server's SNICallback: the context of the certificate for `servername`, or the default. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    const set = this.current;
    cb(null, set.contexts[selectCertificate(set.index, servername) ?? 0]);
  };

  /** The pairs in use. */
  get pairs(): readonly LoadedPair[] {
    return this.current.pairs;
  }

  /**
   * Reads every file again; pairs that load replace theirs, the others stay as they were (logged,
   * naming the file). Also re-reads the ticket key file. Calls made while one runs run after it.
   */
  reload(reason: string): Promise<void> {
    this.reloading = this.reloading.then(() => this.reloadNow(reason));
    return this.reloading;
  }

  /** Reloads when a certificate, key or ticket key file changes. */
  watch(): void {
    const files = [...this.options.config.certificates.flatMap((p) => [p.cert, p.key]), ...(this.options.config.clientCa ?? [])];
    const onError = (err: unknown, dir: string): void => this.options.logger.warn({ err, dir }, 'cannot watch the TLS files in this folder; reload with SIGHUP');
    this.watches.push(watchFiles(files, () => void this.reload('certificate files changed'), { debounceMs: RELOAD_DEBOUNCE_MS, onError }));
    const ticketFile = this.options.config.ticketKeyFile;
    if (ticketFile !== undefined && this.options.ticketKey === undefined) {
      this.watches.push(watchFiles([ticketFile], () => void this.reload('ticket key file changed'), { debounceMs: RELOAD_DEBOUNCE_MS, onError }));
    }
  }

  close(): void {
    for (const w of this.watches) w.close();
    this.watches = [];
  }

  private async reloadNow(reason: string): Promise<void> {
    const { logger, config } = this.options;
    const now = (this.options.now ?? Date.now)();
    let failed = false;
    let caChanged = false;
    if (config.clientCa !== undefined) {
      try {
        const ca = await readCaFiles(config.clientCa);
        caChanged = ca.length !== this.clientCa?.length || ca.some((c, i) => !c.equals(this.clientCa![i]!));
        if (caChanged) this.clientCa = ca;
      } catch (err) {
        failed = true;
        logger.error({ err, reason }, `client CA not reloaded, the previous one stays in use: ${(err as Error).message}`);
      }
    }
    const previous = this.current.pairs;
    const pairs = await Promise.all(
      previous.map(async (old) => {
        try {
          return await loadPair(old.certFile, old.keyFile, now);
        } catch (err) {
          failed = true;
          logger.error({ err, cert: old.certFile, key: old.keyFile, reason }, `certificate not reloaded, the previous one stays in use: ${(err as Error).message}`);
          return old;
        }
      }),
    );
    const same = (p: LoadedPair, i: number): boolean => !caChanged && p.cert.equals(previous[i]!.cert) && p.key.equals(previous[i]!.key);
    const changed = pairs.some((p, i) => !same(p, i));
    if (changed) {
      // A pair that did not change keeps its object, and with it its context.
      const set = this.build(pairs.map((p, i) => (same(p, i) ? previous[i]! : p)));
      if (set.pairs[0] !== previous[0]) {
        this.server?.setSecureContext(this.optionsFor(set.pairs[0]!));
        if (this.server?._sharedCreds !== undefined) this.ticketKeys.install(this.server._sharedCreds);
      }
      this.current = set;
      this.report();
      logger.info({ reason, certificates: set.pairs.map((p) => ({ cert: p.certFile, names: p.names, notAfter: new Date(p.notAfter).toISOString() })) }, 'certificates reloaded');
    }
    if (config.ticketKeyFile !== undefined && this.options.ticketKey === undefined) {
      try {
        const keys = await readTicketKeys(config.ticketKeyFile);
        if (!this.ticketKeys.sameAs(keys)) {
          this.ticketKeys.set(keys);
          logger.info({ file: config.ticketKeyFile, keys: keys.length, reason }, 'ticket keys reloaded');
        }
      } catch (err) {
        failed = true;
        logger.error({ err, file: config.ticketKeyFile, reason }, `ticket keys not reloaded, the previous ones stay in use: ${(err as Error).message}`);
      }
    }
    this.reloads?.inc({ result: failed ? 'failed' : 'ok' });
  }

  /** Contexts for the pairs (one made anew only for a pair that changed) and their name index. */
  private build(pairs: readonly LoadedPair[]): CertificateSet {
    const before = this.current as CertificateSet | undefined;
    const contexts = pairs.map((pair, i) => {
      if (before?.pairs[i] === pair) return before.contexts[i]!;
      const context = createSecureContext(this.optionsFor(pair));
      this.ticketKeys.install(context);
      return context;
    });
    return { pairs, contexts, index: nameIndex(pairs) };
  }

  private report(): void {
    if (this.expiry === undefined) return;
    this.expiry.reset();
    for (const pair of this.current.pairs) this.expiry.set({ cert: pair.certFile, name: pair.names[0] ?? '' }, Math.floor(pair.notAfter / 1000));
  }
}

/** CA certificates for client verification, each file checked to hold a PEM certificate. */
async function readCaFiles(files: readonly string[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const file of files) {
    let pem: Buffer;
    try {
      pem = await readFile(file);
    } catch (err) {
      throw invalid(file, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
    }
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw invalid(file, 'not a PEM certificate', err);
    }
    out.push(pem);
  }
  return out;
}

async function readTicketKeys(file: string): Promise<Buffer[]> {
  let text: string;
  try {
    text = await readFile(file, 'latin1');
  } catch (err) {
    throw new CdnError('invalid_ticket_keys', 'client', `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  return parseTicketKeys(text, file);
}
