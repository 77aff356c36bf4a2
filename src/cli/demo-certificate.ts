/**
 * The demo's throwaway certificate (`anycdn demo --tls`): self-signed, for localhost, 127.0.0.1
 * and ::1, made with the openssl command (Node has no X.509 writer, and a dependency for a demo is
 * not worth it: openssl is on every Debian and macOS machine). Kept in the data folder and made
 * again when missing, unreadable or within a day of expiry.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CdnError } from '../errors.js';

const run = promisify(execFile);

/** Days the certificate is valid: long enough for a demo folder kept a while, short for a key lying around. */
const DAYS = 30;

export async function demoCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  try {
    const existing = new X509Certificate(await readFile(cert));
    if (Date.parse(existing.validTo) > Date.now() + 86_400_000) return { cert, key };
  } catch {
    // none yet, or not readable: make one
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-sha256',
      '-keyout', key, '-out', cert, '-days', String(DAYS),
      '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'keyUsage=critical,digitalSignature',
      '-addext', 'extendedKeyUsage=serverAuth',
    ]);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new CdnError(
      'demo_certificate',
      'internal',
      missing
        ? 'anycdn demo --tls makes its certificate with the openssl command, which is not installed (Debian: apt-get install openssl); or run the demo without --tls'
        : `openssl could not make the demo certificate: ${((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`,
      { cause: err },
    );
  }
  return { cert, key };
}
