/**
 * Archive servers (and one archiver) hosted in this process on the real transport over loopback:
 * the WebSocket test and the benchmark's network restore use it. Each node gets its own
 * Transport (authenticated handshake) and MachineHost, with an in-memory store that is durable at
 * once (no disk in this picture: the runtime's lmdb store is measured elsewhere).
 */
import { createServer } from 'node:net';
import type { Logger } from 'pino';
import type { Crypto } from '../../core/crypto.ts';
import type { RandomSource } from '../../core/machine.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { MachineHost, type DurableKvStore } from '../../runtime/machine-host.ts';
import { channels } from '../../runtime/roles.ts';
import { Transport, type PeerAddress } from '../../runtime/transport.ts';
import type { Archiver } from '../archiver.ts';
import type { BlockToArchive } from '../archiver-types.ts';
import { archiveServerBinding, archiverBinding } from './archive-binding.ts';

class InstantStore extends MemoryKvStore implements DurableKvStore {
  readonly dirty = false;
  async flush(): Promise<void> {}
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface LoopbackArchiveOptions {
  crypto: Crypto;
  random: RandomSource;
  log: Logger;
  archiveServerCount: number;
  k: number;
  m: number;
}

export class LoopbackArchive {
  readonly archiveServers: string[];
  readonly members = new Map<string, PeerAddress>();
  private readonly stops = new Map<string, () => Promise<void>>();
  private archiver: Archiver | null = null;
  private ringHost: MachineHost | null = null;

  private constructor(private readonly options: LoopbackArchiveOptions) {
    this.archiveServers = Array.from({ length: options.archiveServerCount }, (_, i) => `archive-${i}`);
  }

  static async start(options: LoopbackArchiveOptions): Promise<LoopbackArchive> {
    const cluster = new LoopbackArchive(options);
    await cluster.boot();
    return cluster;
  }

  private async boot(): Promise<void> {
    const { crypto, random, log, k, m } = this.options;
    const names = [...this.archiveServers, 'ring-0'];
    const secrets = new Map(names.map((n) => [n, random.bytes(32)]));
    const ports = new Map<string, number>();
    for (const n of names) {
      ports.set(n, await freePort());
      this.members.set(n, { publicKey: crypto.ed25519PublicKey(secrets.get(n)!), url: `ws://127.0.0.1:${ports.get(n)}` });
    }
    for (const name of names) {
      const transport = new Transport({
        name, secretKey: secrets.get(name)!, crypto, members: this.members, listen: { host: '127.0.0.1', port: ports.get(name)! },
        acceptClients: true, frameBytesMax: 64 * 2 ** 20 + 1, log,
      });
      const store = new InstantStore();
      const host = new MachineHost(name, transport, store, log);
      const context = { nodeId: name, store, random, nowMs: Date.now() };
      if (name === 'ring-0') {
        const built = archiverBinding(context, {
          crypto, ringServers: ['ring-0'], archiveServers: this.archiveServers,
          archiveServerKeys: new Map(this.archiveServers.map((n) => [n, this.members.get(n)!.publicKey])),
          k, m, fallbackTimeoutMs: 1000, fallbackRanksMax: 0, storeTimeoutMs: 5000, attemptsMax: 5,
        });
        this.archiver = built.archiver;
        this.ringHost = host;
        host.add(built.binding);
      } else {
        host.add(archiveServerBinding({ context, crypto, secretKey: secrets.get(name)!, archiveServers: this.archiveServers, ringServers: ['ring-0'], coding: { k, m } }).binding);
      }
      await transport.start();
      host.start();
      this.stops.set(name, async () => {
        await host.stop();
        await transport.stop();
      });
    }
  }

  /** Hands a version to the archiver and resolves when it has nothing pending (false on timeout). */
  async archive(blocks: BlockToArchive[], rootBguid: Uint8Array, certificate: Uint8Array, timeoutMs: number): Promise<boolean> {
    const archiver = this.archiver!;
    this.ringHost!.execute(channels.archive, (nowMs) => archiver.archive(blocks, rootBguid, certificate, nowMs));
    const endMs = performance.now() + timeoutMs;
    while (performance.now() < endMs) {
      if (archiver.pendingCount() === 0) return true;
      await new Promise((r) => setTimeout(r, 10));
    }
    return archiver.pendingCount() === 0;
  }

  archivedCount(): number {
    return this.archiver!.counters.archived;
  }

  /** Archive servers' addresses, as a restore client gets them from the cluster descriptor. */
  serverAddresses(): Map<string, PeerAddress> {
    return new Map(this.archiveServers.map((n) => [n, this.members.get(n)!]));
  }

  async stopNode(name: string): Promise<void> {
    const stop = this.stops.get(name);
    this.stops.delete(name);
    await stop?.();
  }

  async stop(): Promise<void> {
    for (const name of [...this.stops.keys()]) await this.stopNode(name);
  }
}
