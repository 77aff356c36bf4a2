/**
 * The edge over HTTPS: its `tls` listener (HTTP/2 and HTTP/1.1, certificates by SNI, reloaded
 * live; src/serve/listen-secure.ts) serving the same app as the cleartext one, and, with
 * `tls.redirectHttp`, where the cleartext listener sends content requests instead (`httpsLocation`).
 */
import type { Logger } from '../src/log.js';
import { listenSecure, type SecureRunningServer } from '../src/serve/listen-secure.js';
import { CertificateStore } from '../src/serve/tls.js';
import type { EdgeApp } from './app.js';
import type { EdgeConfig } from './config.js';
import type { EdgeMetrics } from './metrics.js';

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
