/**
 * `deploy/lab/up`: build the anycast lab (lab.ts) and leave it running, printing where everything
 * is; `deploy/lab/down ID` tears it down. Needs root, BIRD 2, iproute2 and a build (npm run build).
 */
import { describeLab, Lab } from './lab.js';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h') || args.length > 0) {
    process.stdout.write('usage: deploy/lab/up\n\nBuilds the anycast lab (deploy/lab/README.md) and leaves it running; deploy/lab/down ID removes it.\n');
    return args.includes('--help') || args.includes('-h') ? 0 : 2;
  }
  const lab = await Lab.start({ detached: true, log: (line) => process.stdout.write(`${line}\n`) });
  process.stdout.write(`\n${await describeLab(lab)}\n`);
  for (const node of lab.pops.values()) node.control.close();
  for (const node of lab.routers.values()) node.control.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`deploy/lab/up: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
