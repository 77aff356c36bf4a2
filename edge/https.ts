/**
 * The edge over HTTPS: its `tls` listener (HTTP/2 and HTTP/1.1, certificates by SNI, reloaded
 * live; src/serve/listen-secure.ts) serving the same app as the cleartext one, and, with
 * `tls.redirectHttp`, where the cleartext listener sends content requests instead (`httpsLocation`).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { CdnError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { listenSecure, type SecureRunningServer } from '../src/serve/listen-secure.js';
import { CertificateStore } from '../src/serve/tls.js';
import type { EdgeApp } from './app.js';
import type { EdgeConfig } from './config.js';
import type { EdgeMetrics } from './metrics.js';
import type { UpstreamTls } from './upstream.js';

export interface EdgeHttps extends SecureRunningServer {
  certificates: CertificateStore;
}

/** Loads the certificates (an error names the file at fault) and binds the TLS listener. */
export async function startEdgeHttps(config: EdgeConfig, app: EdgeApp, logger: Logger, metrics: EdgeMetrics, ticketKey: Buffer | undefined): Promise<EdgeHttps> {
  const tls = config.tls!;
  const certificates = await CertificateStore.open({ config: tls, logger, metrics: { registry: metrics.registry, prefix: 'anycdn_edge_' }, ticketKey });
  const running = await listenSecure({
    address: tls.listen,
    handler: app.handle,
    quick: app.quick,
    quickFront: tls.quickFront,
    certificates,
    socketIdleTimeoutMs: config.timeouts.clientIdle,
    onFlood: (kind, client) => logger.warn({ kind, client }, 'HTTP/2 flood: session ended with GOAWAY'),
  }).catch((err: unknown) => {
    certificates.close();
    throw err;
  });
  certificates.watch();
  return {
    ...running,
    certificates,
    close: async (graceMs?: number) => {
      certificates.close();
      await running.close(graceMs);
    },
  };
}

/**
 * The https URL of a cleartext request (RFC 9110 §4.2.2): its host without the port (from the
 * Host field, or from an absolute-form target, RFC 9112 §3.2.2), the TLS listener's port unless
 * 443, the path and query as received. Undefined without a usable host: the app then answers the
 * request's 400 itself.
 */
export function httpsLocation(host: string | undefined, target: string, port: number): string | undefined {
  let pathAndQuery = target;
  const absolute = /^https?:\/\/([^/?#]*)([^#]*)/i.exec(target);
  if (absolute !== null) {
    host = absolute[1];
    pathAndQuery = absolute[2]!.startsWith('/') ? absolute[2]! : `/${absolute[2]!}`;
  }
  if (host === undefined || host === '' || !pathAndQuery.startsWith('/')) return undefined;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::\d{0,5})?$/.exec(host);
  if (m === null) return undefined;
  return `https://${m[1]!.toLowerCase()}${port === 443 ? '' : `:${port}`}${pathAndQuery}`;
}

/** How often, at most, a refused upstream certificate is logged (every request fails the same way). */
const REFUSED_LOG_INTERVAL_MS = 60_000;

/**
 * `upstreamTls` read into what the upstream pool verifies with: Node's bundled roots plus the
 * configured CA files, the servername, the client certificate. Each file is checked (a PEM
 * certificate; a key that is the certificate's) and an error names it. A refused certificate is
 * logged at most once a minute, with upstream's host and OpenSSL's reason.
 */
export async function upstreamTls(config: EdgeConfig, logger: Logger): Promise<UpstreamTls | undefined> {
  if (!config.upstream.startsWith('https:')) return undefined;
  const settings = config.upstreamTls;
  const read = async (file: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new CdnError('invalid_certificate', 'client', `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
  };
  const certificate = (file: string, pem: Buffer): X509Certificate => {
    try {
      return new X509Certificate(pem);
    } catch (err) {
      throw new CdnError('invalid_certificate', 'client', `${file}: not a PEM certificate`, { cause: err });
    }
  };
  const ca: Buffer[] = [];
  for (const file of settings?.ca ?? []) {
    const pem = await read(file);
    certificate(file, pem);
    ca.push(pem);
  }
  let cert: Buffer | undefined;
  let key: Buffer | undefined;
  if (settings?.cert !== undefined && settings.key !== undefined) {
    cert = await read(settings.cert);
    key = await read(settings.key);
    let matches: boolean;
    try {
      matches = certificate(settings.cert, cert).checkPrivateKey(createPrivateKey(key));
    } catch (err) {
      if (err instanceof CdnError) throw err;
      throw new CdnError('invalid_certificate', 'client', `${settings.key}: not an unencrypted PEM private key`, { cause: err });
    }
    if (!matches) throw new CdnError('invalid_certificate', 'client', `${settings.key}: this key does not match the certificate in ${settings.cert}`);
  }
  let lastLogged = -Infinity;
  return {
    // Given a `ca`, Node trusts it alone: the bundled roots are added back.
    ca: ca.length === 0 ? undefined : [...rootCertificates, ...ca],
    servername: settings?.servername,
    cert,
    key,
    onRefused(err) {
      const now = performance.now();
      if (now - lastLogged < REFUSED_LOG_INTERVAL_MS) return;
      lastLogged = now;
      logger.error({ upstream: config.upstream, servername: settings?.servername, code: (err.cause as NodeJS.ErrnoException | undefined)?.code }, `upstream certificate refused, requests fail (502, or a stale copy): ${err.message}`);
    },
  };
}
