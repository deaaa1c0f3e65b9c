/** The machine a benchmark ran on, printed under every table and stored in its JSON. */
import { cpus, totalmem } from 'node:os';

export function machineDescription(): { cpu: string; cores: number; memoryGiB: number; node: string } {
  const cpu = cpus()[0]?.model ?? 'unknown';
  return { cpu, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
}
