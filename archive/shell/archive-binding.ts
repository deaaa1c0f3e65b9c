/**
 * Glue for the runtime (runtime/machine-host.ts): the archive server core and the archiver as
 * host bindings on the archive channel. An archive-role process adds archiveServerBinding; a ring
 * server adds archiverBinding and calls `archiver.archive(...)` through the host's `execute`
 * when its replica commits a version (the ring's output must carry the new blocks and the
 * certificate). Wire frames are the archive message codec (archive/messages.ts).
 */
import { signerOf, type Crypto } from '../../core/crypto.ts';
import type { MachineContext } from '../../core/machine.ts';
import { channels } from '../../runtime/roles.ts';
import type { Binding } from '../../runtime/machine-host.ts';
import { ArchiveServer, defaultArchiveTiming, type ArchiveOutput, type ArchiveServerOptions } from '../archive-server.ts';
import { Archiver, type ArchiverOptions, type ArchiverOutput } from '../archiver.ts';
import { archiveLimits, decodeArchiveMessage, encodeArchiveMessage, type ArchiveMessage } from '../messages.ts';
import { defaultRepairOptions } from '../repairer.ts';

export interface ArchiveServerBindingOptions {
  context: MachineContext;
  crypto: Crypto;
  secretKey: Uint8Array;
  archiveServers: readonly string[];
  ringServers: readonly string[];
  tickMs?: number;
  overrides?: Partial<Omit<ArchiveServerOptions, 'crypto' | 'signer' | 'archiveServers' | 'ringServers'>>;
  onOutput?: (event: ArchiveOutput) => void;
}

export function archiveServerBinding(o: ArchiveServerBindingOptions): { binding: Binding<ArchiveMessage, ArchiveOutput>; server: ArchiveServer } {
  const server = new ArchiveServer(o.context, {
    crypto: o.crypto,
    signer: signerOf(o.crypto, o.secretKey),
    archiveServers: o.archiveServers,
    ringServers: o.ringServers,
    ...defaultArchiveTiming,
    repair: defaultRepairOptions,
    ...o.overrides,
  });
  const binding: Binding<ArchiveMessage, ArchiveOutput> = {
    channel: channels.archive,
    protocol: 'archive',
    machine: server,
    decode: (bytes) => decodeArchiveMessage(bytes),
    encode: encodeArchiveMessage,
    frameBytesMax: archiveLimits.messageBytesMax,
    tickMs: o.tickMs ?? 50,
    onOutput: o.onOutput,
  };
  return { binding, server };
}

export function archiverBinding(
  context: MachineContext,
  options: ArchiverOptions,
  onOutput?: (event: ArchiverOutput) => void,
  tickMs = 50,
): { binding: Binding<ArchiveMessage, ArchiverOutput>; archiver: Archiver } {
  const archiver = new Archiver(context, options);
  const binding: Binding<ArchiveMessage, ArchiverOutput> = {
    channel: channels.archive,
    protocol: 'archive',
    machine: archiver,
    decode: (bytes) => decodeArchiveMessage(bytes),
    encode: encodeArchiveMessage,
    frameBytesMax: archiveLimits.messageBytesMax,
    tickMs,
    onOutput,
  };
  return { binding, archiver };
}
