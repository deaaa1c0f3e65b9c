/**
 * Connecting to a cluster that is down (session-22 review, finding 7): every ring address refuses
 * TCP connections at once, so connect fails within seconds with UnavailableError, not after its
 * whole timeout with ConfigError (60 s for every CLI verb). Addresses that accept but never finish
 * a handshake (a cluster too busy to answer) still get the whole timeout. An initialised scratch
 * config whose nodes were never started; loopback only.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, newIdentity } from '../../client/index.ts';
import { toHex } from '../../core/bytes.ts';
import { UnavailableError } from '../../core/errors.ts';
import { loadClusterConfig, type ClusterConfig } from '../../runtime/cluster-config.ts';
import { removeScratchCluster, tempClusterConfig } from '../runtime/cluster-fixture.ts';
import { runCli } from './sdk-cluster.ts';

let cluster: { config: ClusterConfig; dir: string } | undefined;
let identityFile: string;

beforeAll(async () => {
  const temp = await tempClusterConfig('cluster-configs/local.json');
  cluster = { config: loadClusterConfig(temp.file), dir: temp.dir };
  const init = await runCli(cluster.config, ['cluster', 'init']);
  expect(init.code).toBe(0);
  const id = newIdentity();
  identityFile = join(temp.dir, 'identity.json');
  writeFileSync(identityFile, JSON.stringify({ secretKey: toHex(id.secretKey), publicKey: toHex(id.publicKey) }), { mode: 0o600 });
}, 60_000);

afterAll(() => removeScratchCluster(cluster), 30_000);

describe('connect with the cluster down', () => {
  it('the SDK: UnavailableError within seconds, though the timeout is 60 s', async () => {
    const startedMs = Date.now();
    const failure = await connect({ config: cluster!.config.file, identity: newIdentity(), connectTimeoutMs: 60_000 }).then(
      async (store) => (await store.close(), null),
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(UnavailableError);
    expect((failure as Error).message).toMatch(/no ring server is listening: .* refused connections/);
    expect(Date.now() - startedMs).toBeLessThan(15_000);
  }, 90_000);

  it('the CLI: exit 1, UnavailableError, within seconds', async () => {
    const startedMs = Date.now();
    const r = await runCli(cluster!.config, ['stat', 'notes'], identityFile, true);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/UnavailableError: no ring server is listening/);
    expect(Date.now() - startedMs).toBeLessThan(30_000);
  }, 120_000);
});

describe('connect to ring servers that accept but never answer', () => {
  it('waits its whole timeout, then UnavailableError', async () => {
    const servers: Server[] = [];
    const sockets: Socket[] = [];
    try {
      for (const node of cluster!.config.nodes.filter((n) => n.role === 'ring')) {
        const server = createServer((socket) => void sockets.push(socket)); // accepts, says nothing
        await new Promise<void>((resolve) => server.listen(node.port, '127.0.0.1', resolve));
        servers.push(server);
      }
      const startedMs = Date.now();
      const failure = await connect({ config: cluster!.config.file, identity: newIdentity(), connectTimeoutMs: 3_000 }).then(
        async (store) => (await store.close(), null),
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(UnavailableError);
      expect((failure as Error).message).toMatch(/could not reach 3 ring servers within 3000 ms/);
      expect(Date.now() - startedMs).toBeGreaterThanOrEqual(3_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      for (const server of servers) await new Promise((resolve) => server.close(resolve));
    }
  }, 60_000);
});
