/**
 * `npm run sim -- [scenario] [--seed N] [...]`: runs a simulation scenario. A scenario is a module
 * exporting `run(args)`; the default is the inner ring (PBFT) scenario.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const scenarios: Record<string, { path: string; summary: string }> = {
  ring: { path: 'ring/sim-scenario.ts', summary: 'PBFT inner ring under faults (default)' },
  tapestry: { path: 'tapestry/sim-scenario.ts', summary: 'Tapestry overlay at scale: hops, RDP, churn' },
  replica: { path: 'replica/sim-scenario.ts', summary: 'dissemination tree of secondary replicas' },
  archive: { path: 'archive/sim-scenario.ts', summary: 'archive repair and restore' },
  echo: { path: 'sim/echo-scenario.ts', summary: 'the simulator itself: a ping workload under faults' },
};

const argv = process.argv.slice(2);
const named = argv[0] && !argv[0].startsWith('-') ? argv.shift()! : 'ring';
if (named === 'help' || argv.includes('--help')) {
  console.log('usage: npm run sim -- [scenario] [--seed N] [scenario options]\nscenarios:');
  for (const [name, s] of Object.entries(scenarios)) console.log(`  ${name.padEnd(9)} ${s.summary}`);
  process.exit(0);
}
const scenario = scenarios[named];
if (!scenario) {
  console.error(`unknown scenario '${named}' (try: ${Object.keys(scenarios).join(', ')})`);
  process.exit(2);
}
const path = join(root, scenario.path);
if (!existsSync(path)) {
  console.error(`scenario '${named}' is not available in this build (${scenario.path} is missing)`);
  process.exit(1);
}
const mod = (await import(path)) as { run(args: string[]): Promise<void> };
await mod.run(argv);
