/**
 * What the lab runs from this checkout: the built `anycdn` executable and client, the teardown
 * script, and BIRD from the system; and why the lab cannot run when one of them is missing.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root (where package.json is), from this module's place in the sources or in dist/. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'deploy', 'lab'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`cannot find the repository root from ${fileURLToPath(import.meta.url)}`);
}

export const ROOT = repoRoot();
export const CLI = join(ROOT, 'dist/src/cli/anycdn.cjs');
export const CLIENT = join(ROOT, 'dist/deploy/lab/client.js');
export const DOWN_SCRIPT = join(ROOT, 'deploy/lab/down');

export function findBird(): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  return dirs.map((dir) => join(dir, 'bird')).find((file) => file.startsWith('/') && existsSync(file));
}

/** Why the lab cannot run from this checkout (no build, no BIRD), or undefined. */
export function labPrerequisites(): string | undefined {
  if (findBird() === undefined) return 'bird (BIRD 2) is not installed (apt-get install bird2)';
  if (!existsSync(CLI) || !existsSync(CLIENT)) return 'needs dist/ (npm run build)';
  return undefined;
}
