/**
 * The archive in the deterministic simulator (sim/simulation.ts): archive servers and the
 * archivers beside ring servers as real cores on virtual time, plus an in-process ArchiveSource
 * so the restore logic runs against them exactly as it would over the network. Tests and the
 * benchmark share it.
 */
import { assert } from '../../core/assert.ts';
import { signerOf, type Crypto } from '../../core/crypto.ts';
import type { Effect, Machine, MachineContext } from '../../core/machine.ts';
import { Prng } from '../../sim/prng.ts';
import { Simulation } from '../../sim/simulation.ts';
import { ArchiveServer, defaultArchiveTiming, type ArchiveOutput, type ArchiveServerOptions } from '../archive-server.ts';
import { Archiver } from '../archiver.ts';
import { certificateCheckOf } from '../certificate-check.ts';
import type { ArchiverOutput, BlockToArchive } from '../archiver-types.ts';
import type { ArchiveMessage } from '../messages.ts';
import { defaultRepairOptions } from '../repairer.ts';
import type { ArchiveSource } from '../shell/archive-source.ts';

export type ArchiveCommand = { type: 'archive-command'; blocks: BlockToArchive[]; rootBguid: Uint8Array | null; certificate: Uint8Array | null };
export type SimMessage = ArchiveMessage | ArchiveCommand;
export type SimOutput = ArchiveOutput | ArchiverOutput;

export interface SimArchiveOptions {
  seed: number;
  crypto: Crypto;
  archiveServerCount: number;
  ringServerCount: number;
  k: number;
  m: number;
  /** With it, archive servers check certificates as real ones do (archive/certificate-check.ts). */
  ringPublicKey?: Uint8Array;
  /** A server's config.erasure when it differs from (k, m): read each time the server is (re)built, so a test can change it across a restart. */
  codingOf?: (server: string) => { k: number; m: number } | undefined;
  /** Overrides of the archive servers' timing (virtual ms). */
  server?: Partial<Omit<ArchiveServerOptions, 'crypto' | 'signer' | 'archiveServers' | 'ringServers'>>;
}

/** Virtual-time settings scaled for tests: a lost peer is noticed within seconds, not minutes. */
export const simTiming = {
  scrubEveryMs: 5_000,
  scrubPerTickMax: 64,
  pingEveryMs: 200,
  lostAfterMs: 2_000,
  repair: { ...defaultRepairOptions, phaseTimeoutMs: 500 },
} as const;

class ArchiverNode implements Machine<SimMessage, SimOutput> {
  constructor(
    readonly archiver: Archiver,
    private readonly self: string,
  ) {}
  onMessage(from: string, message: SimMessage, nowMs: number): Effect<SimMessage, SimOutput>[] {
    if (message.type === 'archive-command') {
      return from === this.self ? this.archiver.archive(message.blocks, message.rootBguid, message.certificate, nowMs) : [];
    }
    return this.archiver.onMessage(from, message, nowMs);
  }
  onTick(nowMs: number): Effect<SimMessage, SimOutput>[] {
    return this.archiver.onTick(nowMs);
  }
}

class ServerNode implements Machine<SimMessage, SimOutput> {
  constructor(readonly server: ArchiveServer) {}
  onMessage(from: string, message: SimMessage, nowMs: number): Effect<SimMessage, SimOutput>[] {
    return message.type === 'archive-command' ? [] : this.server.onMessage(from, message, nowMs);
  }
  onTick(nowMs: number): Effect<SimMessage, SimOutput>[] {
    return this.server.onTick(nowMs);
  }
}

export class SimArchive {
  readonly sim: Simulation<SimMessage, SimOutput>;
  readonly archiveServers: string[];
  readonly ringServers: string[];
  readonly outputs: { node: string; event: SimOutput }[] = [];
  readonly serverKeys = new Map<string, Uint8Array>();
  /** Replies rewritten by a Byzantine archive server when the restore tool asks it (see source()). */
  readonly byzantine = new Map<string, (reply: ArchiveMessage) => ArchiveMessage>();

  constructor(readonly options: SimArchiveOptions) {
    this.sim = new Simulation<SimMessage, SimOutput>({ seed: options.seed, tickMs: 10, describeMessage: (m) => m.type });
    this.archiveServers = Array.from({ length: options.archiveServerCount }, (_, i) => `archive-${i}`);
    this.ringServers = Array.from({ length: options.ringServerCount }, (_, i) => `ring-${i}`);
    const keys = new Prng(options.seed).fork('keys');
    const secrets = new Map(this.archiveServers.map((s) => [s, keys.bytes(32)]));
    for (const [s, secret] of secrets) this.serverKeys.set(s, options.crypto.ed25519PublicKey(secret));
    this.sim.onOutput((node, event) => this.outputs.push({ node, event }));
    for (const id of this.archiveServers) {
      this.sim.addNode(id, (context: MachineContext) => {
        const server = new ArchiveServer(context, {
          crypto: options.crypto,
          signer: signerOf(options.crypto, secrets.get(id)!),
          archiveServers: this.archiveServers,
          ringServers: this.ringServers,
          coding: { k: options.k, m: options.m },
          ...defaultArchiveTiming,
          ...simTiming,
          ...(options.ringPublicKey ? { certificateCheck: certificateCheckOf(options.crypto, options.ringPublicKey) } : {}),
          ...options.server,
          ...(options.codingOf?.(id) ? { coding: options.codingOf(id)! } : {}),
        });
        return new ServerNode(server);
      });
    }
    const f = Math.floor((options.ringServerCount - 1) / 3);
    for (const id of this.ringServers) {
      this.sim.addNode(id, (context: MachineContext) => {
        const archiver = new Archiver(context, {
          crypto: options.crypto,
          ringServers: this.ringServers,
          archiveServers: this.archiveServers,
          archiveServerKeys: this.serverKeys,
          k: options.k,
          m: options.m,
          fallbackTimeoutMs: 1_000,
          fallbackRanksMax: f,
          storeTimeoutMs: 500,
          attemptsMax: 6,
        });
        return new ArchiverNode(archiver, id);
      });
    }
  }

  server(id: string): ArchiveServer | null {
    const machine = this.sim.machine(id) as ServerNode | null;
    return machine ? machine.server : null;
  }

  archiver(id: string): Archiver | null {
    const machine = this.sim.machine(id) as ArchiverNode | null;
    return machine ? machine.archiver : null;
  }

  /** Hands one committed version to every ring server's archiver, as each ring server would. */
  archiveVersion(blocks: BlockToArchive[], rootBguid: Uint8Array | null, certificate: Uint8Array | null): void {
    for (const id of this.ringServers) {
      if (this.sim.isUp(id)) this.sim.send(id, id, { type: 'archive-command', blocks, rootBguid, certificate });
    }
  }

  /** Runs until no archiver (but those `except`) has work left; false if that takes longer than `timeMsMax` virtual ms. */
  settleArchivers(timeMsMax: number, except: readonly string[] = []): boolean {
    return this.sim.runUntil(() => {
      this.sim.runFor(50);
      return this.ringServers.every((id) => except.includes(id) || (this.archiver(id)?.pendingCount() ?? 0) === 0);
    }, timeMsMax);
  }

  /**
   * An ArchiveSource for the restore logic: each request is delivered to the server core now and
   * its reply taken from the effects (a crashed server answers null, as a dead socket would).
   */
  source(clientId = 'restore-client'): ArchiveSource {
    return {
      servers: this.archiveServers,
      request: async (server: string, message: ArchiveMessage): Promise<ArchiveMessage | null> => {
        const core = this.server(server);
        if (!core) return null;
        const effects = core.onMessage(clientId, message, this.sim.nowMs);
        const reply = effects.find((e) => e.kind === 'send' && e.to === clientId);
        if (!reply || reply.kind !== 'send') return null;
        const rewrite = this.byzantine.get(server);
        return rewrite ? rewrite(reply.message) : reply.message;
      },
    };
  }

  /** Flips one byte inside the payload of up to `count` stored fragments on `server` (a disk fault). */
  corruptFragments(server: string, count: number, random: Prng): string[] {
    const store = this.sim.store(server);
    const keys = store.keys('f/');
    assert(keys.length > 0, 'nothing to corrupt');
    const hit: string[] = [];
    for (const key of random.shuffle([...keys]).slice(0, count)) {
      const bytes = store.get(key)!;
      const copy = bytes.slice();
      // The payload sits near the end of the record (before the path): flip a byte in the middle.
      copy[Math.floor(copy.length / 2)]! ^= 0x5a;
      store.put(key, copy);
      hit.push(key);
    }
    return hit;
  }
}
