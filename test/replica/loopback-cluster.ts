/**
 * The tree on the real runtime, in one process: a ring root and a secondary replica, each a
 * MachineHost on its own authenticated ws Transport on 127.0.0.1, plus a reader with its own
 * transport. Everything a real deployment runs except separate processes and lmdb (the secondary
 * keeps only subscriptions durable; a memory store that flushes at once stands in).
 */
import { randomBytes } from 'node:crypto';
import { MemoryKvStore } from '../../core/store.ts';
import { silentLogger } from '../../runtime/log.ts';
import { MachineHost, type DurableKvStore } from '../../runtime/machine-host.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { Transport, type PeerAddress } from '../../runtime/transport.ts';
import { CachingTrust } from '../../replica/caching-trust.ts';
import { ConfigLocator } from '../../replica/config-locator.ts';
import type { TreeMessage } from '../../replica/messages.ts';
import { TreeRootMachine } from '../../replica/root.ts';
import { SecondaryReplica } from '../../replica/secondary.ts';
import { treeWire } from '../../replica/wire.ts';
import { Prng } from '../../sim/prng.ts';
import type { TestObject, TestRingSigner } from './test-ring.ts';
import { freePort } from '../free-port.ts';

/** runtime/roles.ts channels.replica; not imported so this file does not pull in every role. */
export const replicaChannel = 4;
const frameBytesMax = 16 * 1024 * 1024;

class ImmediateStore extends MemoryKvStore implements DurableKvStore {
  readonly dirty = false;
  flush(): Promise<void> {
    return Promise.resolve();
  }
}


type ReadRequest = Extract<TreeMessage, { type: 'read' }>;
type ReadReply = Extract<TreeMessage, { type: 'read-reply' }>;

export interface LoopbackCluster {
  readonly root: TreeRootMachine;
  readonly replica: SecondaryReplica;
  /** One read from the secondary over the socket; resolves with its reply. */
  read(request: Omit<ReadRequest, 'type' | 'requestId'>): Promise<{ request: ReadRequest; reply: ReadReply }>;
  stop(): Promise<void>;
}

export async function startLoopbackCluster(signer: TestRingSigner, object: TestObject): Promise<LoopbackCluster> {
  const names = ['client', 'replica-a', 'ring-0'] as const;
  const keys = new Map(names.map((n) => [n, new Uint8Array(randomBytes(32))]));
  const ports = new Map<string, number>();
  for (const n of names) ports.set(n, await freePort());
  const members = new Map<string, PeerAddress>(
    names.map((n) => [n, { publicKey: nodeCrypto.ed25519PublicKey(keys.get(n)!), url: `ws://127.0.0.1:${ports.get(n)}` }]),
  );
  const log = silentLogger();
  const transports = names.map(
    (name) => new Transport({ name, secretKey: keys.get(name)!, crypto: nodeCrypto, members, listen: { host: '127.0.0.1', port: ports.get(name)! }, frameBytesMax, log }),
  );
  const [client, replicaTransport, rootTransport] = transports as [Transport, Transport, Transport];

  const rootStore = new ImmediateStore();
  const root = new TreeRootMachine({ nodeId: 'ring-0', store: rootStore, random: new Prng(1), nowMs: Date.now() }, { fanOutMax: 4 });
  const rootHost = new MachineHost('ring-0', rootTransport, rootStore, log);
  rootHost.add({ channel: replicaChannel, machine: root, tickMs: 10, ...treeWire });

  const replicaStore = new ImmediateStore();
  const replica = new SecondaryReplica(
    { nodeId: 'replica-a', store: replicaStore, random: new Prng(2), nowMs: Date.now() },
    {
      crypto: nodeCrypto,
      trust: new CachingTrust(signer.trust()),
      executor: object.executor,
      locator: new ConfigLocator(['ring-0']),
      cacheBytesMax: 64 << 20,
      subscriptions: [object.aguid],
    },
  );
  const replicaHost = new MachineHost('replica-a', replicaTransport, replicaStore, log);
  replicaHost.add({ channel: replicaChannel, machine: replica, tickMs: 10, ...treeWire });

  const waiting = new Map<number, (reply: ReadReply) => void>();
  client.onFrame((_from, frame) => {
    if (frame[0] !== replicaChannel) return;
    const message = treeWire.decode(frame.subarray(1));
    if (message.type === 'read-reply') waiting.get(message.requestId)?.(message);
  });
  await Promise.all(transports.map((t) => t.start()));
  rootHost.start();
  replicaHost.start();
  let requestIdNext = 1;

  return {
    root,
    replica,
    read(fields) {
      const request: ReadRequest = { type: 'read', requestId: requestIdNext++, ...fields };
      const body = treeWire.encode(request);
      const frame = new Uint8Array(body.length + 1);
      frame[0] = replicaChannel;
      frame.set(body, 1);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`read ${request.requestId} timed out`)), 5000);
        waiting.set(request.requestId, (reply) => {
          clearTimeout(timer);
          waiting.delete(request.requestId);
          resolve({ request, reply });
        });
        client.send('replica-a', frame);
      });
    },
    async stop() {
      await Promise.all([rootHost.stop(), replicaHost.stop()]);
      await Promise.all(transports.map((t) => t.stop()));
    },
  };
}
