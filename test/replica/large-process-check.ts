/**
 * `npx tsx test/replica/large-process-check.ts [mib]` (default 40): a version larger than the old
 * 32 MiB push limit reaches the secondaries of a real local cluster as block references and is
 * served from them, verified. Too slow for the test suite on a shared 2-core machine (the write,
 * then the ring servers archive the version while the secondaries fetch its blocks): 30–60 s.
 * Prints how long replica-0 took and its tree log lines (parent changes and why); exits 1 on failure.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, newIdentity } from '../../client/index.ts';
import { clusterViewOf, Session } from '../../client/session.ts';
import { ringTrustOf } from '../../client/verify.ts';
import { clusterPaths } from '../../runtime/cluster-config.ts';
import { loadDescriptor } from '../../runtime/cluster-keys.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { secondaryFirstRead, startProcessCluster } from './process-cluster.ts';

const mib = Number(process.argv[2] ?? 40);
const cluster = await startProcessCluster();
let ok = false;
try {
  const store = await connect({ config: cluster.config.file, identity: newIdentity(), connectTimeoutMs: 30_000 });
  const view = clusterViewOf(loadDescriptor(cluster.config, nodeCrypto));
  const trust = ringTrustOf(nodeCrypto, view.ringId, view.ringPublicKey);
  const session = await Session.open(view, newIdentity(), nodeCrypto);
  try {
    const big = await store.create('big', { blockBytes: 1024 * 1024 });
    const data = new Uint8Array(randomBytes(mib * 1024 * 1024));
    let startedMs = Date.now();
    const written = await big.write(data);
    console.log(`wrote ${mib} MiB in ${Date.now() - startedMs} ms (version ${written.version})`);
    const tail = { aguid: big.aguid, version: null, offset: data.length - 65_536, length: 65_536, maxAgeMs: 0 };
    startedMs = Date.now();
    for (let i = 0; i < 3000 && Date.now() - startedMs < 180_000; i++) {
      const read = await secondaryFirstRead(session, trust, tail, written.version).catch(() => null);
      if (read?.member === 'replica-0') {
        ok = Buffer.compare(Buffer.from(read.bytes), Buffer.from(data.subarray(data.length - 65_536))) === 0;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    console.log(`replica-0 served the last 64 KiB ${ok ? 'verified and equal' : 'NOT'} after ${Date.now() - startedMs} ms (first read subscribed it)`);
    for (const name of ['ring-0', 'ring-1']) {
      const warnings = readFileSync(clusterPaths(cluster.config).log(name), 'utf8').split('\n').filter((l) => l.includes('"level":40') || l.includes('"level":50'));
      console.log(`${name} warnings (${warnings.length}):\n  ${warnings.slice(0, 8).map((l) => l.slice(0, 240)).join('\n  ')}`);
    }
    for (const name of ['replica-0', 'replica-1']) {
      const lines = readFileSync(clusterPaths(cluster.config).log(name), 'utf8').split('\n').filter((l) => l.includes('"tree '));
      console.log(`${name}:\n  ${lines.map((l) => { const j = JSON.parse(l) as Record<string, string>; return `${j.msg} ${j.parent ?? j.from ?? ''} ${j.reason ?? ''}`; }).join('\n  ')}`);
    }
  } finally {
    await session.close();
    await store.close();
  }
} finally {
  await cluster.stop();
}
process.exitCode = ok ? 0 : 1;
