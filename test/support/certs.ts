/**
 * Certificates for tests, made at test time with the openssl command into a temporary folder
 * (never committed): a throwaway CA, and leaf certificates it signs for given names, valid for
 * given dates (an expired one included). ECDSA P-256 keys: quick to make.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface IssuedCert {
  /** PEM files. */
  cert: string;
  key: string;
}

export interface TestCa {
  dir: string;
  /** The CA certificate (PEM file). */
  caFile: string;
  /**
   * A certificate for `names` (DNS names; IP addresses given as `IP:127.0.0.1`), signed by this CA,
   * written to `<file>.pem` and `<file>.key`. Valid from yesterday for `days`, or over `dates`.
   */
  issue(file: string, names: string[], options?: { days?: number; dates?: { start: Date; end: Date } }): Promise<IssuedCert>;
  /** A self-signed certificate (no CA), for "an upstream with a bad certificate". */
  selfSigned(file: string, names: string[]): Promise<IssuedCert>;
  remove(): Promise<void>;
}

const CA_CONFIG = `[ca]
default_ca = test
[test]
dir = .
database = index.txt
new_certs_dir = issued
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = copy
rand_serial = yes
[any]
commonName = supplied
`;

/** openssl's dates: YYYYMMDDHHMMSSZ. */
function opensslDate(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

function altNames(names: string[]): string {
  return names.map((n) => (n.startsWith('IP:') ? n : `DNS:${n}`)).join(',');
}

export async function testCa(): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'anycdn-certs-'));
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=anycdn test CA');
  await writeFile(join(dir, 'ca.cnf'), CA_CONFIG);
  await writeFile(join(dir, 'index.txt'), '');
  await run('mkdir', ['-p', join(dir, 'issued')]);
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    async issue(file, names, options = {}) {
      const start = options.dates?.start ?? new Date(Date.now() - 86_400_000);
      const end = options.dates?.end ?? new Date(Date.now() + (options.days ?? 7) * 86_400_000);
      const base = join(dir, file);
      await openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0]!.replace(/^IP:/, '')}`, '-addext', `subjectAltName=${altNames(names)}`);
      await openssl('ca', '-batch', '-config', 'ca.cnf', '-in', `${base}.csr`, '-out', `${base}.pem`, '-startdate', opensslDate(start), '-enddate', opensslDate(end), '-notext');
      return { cert: `${base}.pem`, key: `${base}.key` };
    },
    async selfSigned(file, names) {
      const base = join(dir, file);
      await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.pem`, '-days', '7', '-subj', `/CN=${names[0]!.replace(/^IP:/, '')}`, '-addext', `subjectAltName=${altNames(names)}`);
      return { cert: `${base}.pem`, key: `${base}.key` };
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
