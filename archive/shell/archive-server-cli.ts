/**
 * One archive server as its own process, for the multi-process tests until the runtime's node
 * process hosts the archive role: `node --import tsx archive/shell/archive-server-cli.ts SPEC NAME`.
 * SPEC is a JSON file: { members: {name: {url, publicKey hex}}, secrets: {name: secret hex},
 * archiveServers, ringServers, coding: {k, m}, dataDir, ringPublicKey? (hex: certificates are checked), timing? }. State lives in lmdb under dataDir/NAME, so a
 * killed and restarted server comes back with its fragments (and its repair queue). Prints
 * "ready" on stdout once listening; SIGTERM stops it cleanly.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { fromHex } from '../../core/bytes.ts';
import { MachineHost } from '../../runtime/machine-host.ts';
import { LmdbKvStore } from '../../runtime/lmdb-kv-store.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { secureRandom } from '../../runtime/cluster-keys.ts';
import { Transport, type PeerAddress } from '../../runtime/transport.ts';
import type { ArchiveServerOptions } from '../archive-server.ts';
import { archiveServerBinding } from './archive-binding.ts';

export interface ArchiveProcessSpec {
  members: Record<string, { url: string; publicKey: string }>;
  secrets: Record<string, string>;
  archiveServers: string[];
  ringServers: string[];
  /** The cluster's erasure code (ArchiveServerOptions.coding). */
  coding: { k: number; m: number };
  dataDir: string;
  ringPublicKey?: string;
  timing?: Partial<Omit<ArchiveServerOptions, 'crypto' | 'signer' | 'archiveServers' | 'ringServers'>>;
}

async function main(specFile: string, name: string): Promise<void> {
  const spec = JSON.parse(readFileSync(specFile, 'utf8')) as ArchiveProcessSpec;
  const log = pino({ level: 'warn' }, pino.destination(2));
  const members = new Map<string, PeerAddress>(Object.entries(spec.members).map(([n, m]) => [n, { url: m.url, publicKey: fromHex(m.publicKey) }]));
  const secretKey = fromHex(spec.secrets[name]!);
  const port = Number(new URL(spec.members[name]!.url).port);
  const store = new LmdbKvStore({ path: join(spec.dataDir, name), syncCommit: true });
  const transport = new Transport({ name, secretKey, crypto: nodeCrypto, members, listen: { host: '127.0.0.1', port }, acceptClients: true, frameBytesMax: 64 * 2 ** 20 + 1, log });
  const host = new MachineHost(name, transport, store, log);
  const context = { nodeId: name, store, random: secureRandom, nowMs: Date.now() };
  host.add(archiveServerBinding({ context, crypto: nodeCrypto, secretKey, archiveServers: spec.archiveServers, ringServers: spec.ringServers, coding: spec.coding, ringPublicKey: spec.ringPublicKey === undefined ? undefined : fromHex(spec.ringPublicKey), tickMs: 50, overrides: spec.timing }).binding);
  await transport.start();
  host.start();
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    void (async () => {
      await host.stop();
      await transport.stop();
      await store.close();
      process.exit(0);
    })();
  });
}

const [specFile, name] = process.argv.slice(2);
if (!specFile || !name) {
  console.error('usage: archive-server-cli.ts SPEC NAME');
  process.exit(2);
}
await main(specFile, name);
