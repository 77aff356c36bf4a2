/**
 * `deploy/lab/up`: build the anycast lab (lab.ts) and leave it running, printing where everything
 * is; `deploy/lab/down ID` tears it down. Needs root, BIRD 2, iproute2 and a build (npm run build).
 */
import { join } from 'node:path';
import { CLIENT, DOWN_SCRIPT } from './checkout.js';
import { Lab } from './lab.js';
import { routerFolder } from './lab-files.js';
import { LAB_URL } from './topology.js';

/** Where everything of a lab is and how to look at it. */
function describeLab(lab: Lab): string {
  const lines = [`lab ${lab.plan.id} is up (run folder ${lab.runDir})`, ''];
  for (const client of lab.plan.clients) lines.push(`  ${client.name} ${client.ns}  ${client.address} → ${client.preference.join(', ')}`);
  lines.push('', 'PIDs:');
  for (const node of lab.pops.values()) lines.push(`  ${node.pop.name}: bird ${node.bird?.pid}, edge ${node.edge?.pid}, agent ${node.agent?.pid}`);
  for (const node of lab.routers.values()) lines.push(`  ${node.router.name}: bird ${node.bird.pid}`);
  lines.push(`  origin: ${lab.origin?.pid}`);
  const c1 = lab.plan.clients[0]!;
  const p1 = lab.pop(lab.plan.pops[0]!.name);
  lines.push(
    '',
    'Try:',
    `  ip netns exec ${c1.ns} curl -si ${LAB_URL}`,
    `  ip netns exec ${c1.ns} ${process.execPath} ${CLIENT} --url ${LAB_URL} --interval 200`,
    `  birdc -s ${join(routerFolder(lab.runDir, lab.router(c1.router).router), 'bird.ctl')} show route all`,
    `  birdc -s ${p1.control.path} show protocols`,
    `  kill -TERM ${p1.edge?.pid}    # a planned drain of ${p1.pop.name}`,
    `  tail -f ${join(lab.runDir, 'logs')}/*.log`,
    '',
    `Tear down: ${DOWN_SCRIPT} ${lab.plan.id}`,
  );
  return lines.join('\n');
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h') || args.length > 0) {
    process.stdout.write('usage: deploy/lab/up\n\nBuilds the anycast lab (deploy/lab/README.md) and leaves it running; deploy/lab/down ID removes it.\n');
    return args.includes('--help') || args.includes('-h') ? 0 : 2;
  }
  const lab = await Lab.start({ detached: true, log: (line) => process.stdout.write(`${line}\n`) });
  process.stdout.write(`\n${describeLab(lab)}\n`);
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
