import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.ts';
import { loadClusterConfig, parseClusterConfig } from '../../runtime/cluster-config.ts';

const local = JSON.parse(readFileSync('cluster-configs/local.json', 'utf8')) as Record<string, unknown> & { nodes: Record<string, unknown>[] };
const parse = (v: unknown) => parseClusterConfig(v, '/x/test.json', '/x');
const withNodes = (nodes: Record<string, unknown>[]) => ({ ...local, nodes });

describe('cluster config', () => {
  it('loads the shipped configs with the topology the issue asks for', () => {
    const c = loadClusterConfig('cluster-configs/local.json');
    expect(c.nodes.filter((n) => n.role === 'ring').length).toBe(4);
    expect(c.nodes.filter((n) => n.role === 'archive').length).toBe(8);
    expect(c.nodes.filter((n) => n.role === 'replica').length).toBe(2);
    expect(c.dataDir.endsWith('/data/local')).toBe(true);
    expect(loadClusterConfig('cluster-configs/local-f2.json').nodes.filter((n) => n.role === 'ring').length).toBe(7);
    expect(loadClusterConfig('cluster-configs/multi-host.example.json').nodes.every((n) => n.listenHost === '0.0.0.0')).toBe(true);
  });

  it('refuses a ring whose size is not 3f+1', () => {
    const nodes = local.nodes.filter((n) => n.name !== 'ring-3');
    expect(() => parse(withNodes(nodes))).toThrow(new ConfigError('ring: 3 ring servers, but a ring tolerating f = 1 needs n = 3f+1 = 4'));
    expect(() => parse({ ...local, f: 2 })).toThrow(/needs n = 3f\+1 = 7/);
  });

  it('refuses duplicate ports, naming both nodes', () => {
    const nodes = local.nodes.map((n) => (n.name === 'archive-0' ? { ...n, port: 7100 } : n));
    expect(() => parse(withNodes(nodes))).toThrow(/duplicate port 7100 on host 127.0.0.1: ring-0.port and archive-0.port/);
    const admin = local.nodes.map((n) => (n.name === 'replica-1' ? { ...n, adminPort: 7100 } : n));
    expect(() => parse(withNodes(admin))).toThrow(/duplicate port 7100/);
  });

  it('refuses ring parameters the ring core refuses, before any node starts (a node failed at start-up and stayed alive)', () => {
    expect(() => parse({ ...local, ring: { checkpointInterval: 0 } })).toThrow(ConfigError);
    expect(() => parse({ ...local, ring: { checkpointInterval: 0 } })).toThrow(/config\.ring: .*checkpointInterval/);
    expect(() => parse({ ...local, ring: { checkpointInterval: 100, watermarkWindow: 150 } })).toThrow(/config\.ring: .*watermarkWindow/);
    expect(() => parse({ ...local, ring: { requestTimeoutMs: 0 } })).toThrow(/config\.ring: .*timeouts are positive/);
    expect(parse({ ...local, ring: { checkpointInterval: 64, watermarkWindow: 256 } }).ring.checkpointInterval).toBe(64);
    expect(parse({ ...local, ring: { timestampBehindMaxMs: 15_000 } }).ring.timestampBehindMaxMs).toBe(15_000);
    expect(() => parse({ ...local, ring: { timestampBehindMaxMs: 0 } })).toThrow(/config\.ring: .*timestampBehindMaxMs/);
  });

  it('refuses ring timeouts a reconfiguration phase would not outlast (a primary holding complaints back would be replaced too late)', () => {
    expect(() => parse({ ...local, ring: { requestTimeoutMs: 12_000 } })).toThrow(/config\.ring: .*must stay under a reconfiguration phase \(20000 ms\)/);
    expect(parse({ ...local, ring: { requestTimeoutMs: 9_000 } }).ring.requestTimeoutMs).toBe(9_000);
  });

  it('takes an optional clientsMax (the clients a node accepts at once) and refuses one out of range', () => {
    expect(parse(local).clientsMax).toBeUndefined();
    expect(parse({ ...local, clientsMax: 8 }).clientsMax).toBe(8);
    expect(() => parse({ ...local, clientsMax: 0 })).toThrow(/config\.clientsMax: expected an integer in 1\.\.65536/);
  });

  it('refuses a host a dialer could not put in a URL, and takes host names, IPv4 and bracketed IPv6', () => {
    const withHost = (host: string, key = 'host') => withNodes(local.nodes.map((n, i) => (i === 0 ? { ...n, [key]: host } : n)));
    for (const bad of ['::1', 'localhost:1', 'has space', 'a/b', '[not-ipv6]', '-x.example']) {
      expect(() => parse(withHost(bad)), bad).toThrow(new ConfigError(`nodes[0] (ring-0).host: '${bad}' is not a host name, an IPv4 address or an IPv6 address in brackets (such as [::1])`));
    }
    expect(() => parse(withHost('has space', 'listenHost'))).toThrow(/nodes\[0\] \(ring-0\)\.listenHost: 'has space' is not a host name/);
    for (const good of ['localhost', 'ring-0.example.org', 'ring_1', 'node.example.com.', '10.0.0.7', '[::1]', '[fd00::7]']) expect(parse(withHost(good)).nodes[0]!.host).toBe(good);
  });

  it('refuses k + m larger than the archive servers', () => {
    expect(() => parse({ ...local, erasure: { k: 8, m: 4 } })).toThrow(/k \+ m = 12 fragments per block, but only 8 archive servers/);
  });

  it('refuses unknown roles, missing keys, unknown keys and bad names with the field named', () => {
    const role = local.nodes.map((n) => (n.name === 'replica-0' ? { ...n, role: 'cache' } : n));
    expect(() => parse(withNodes(role))).toThrow(/nodes\[12\] \(replica-0\)\.role: unknown role 'cache'/);
    const { port: _port, ...noPort } = local.nodes[0]!;
    expect(() => parse(withNodes([noPort, ...local.nodes.slice(1)]))).toThrow(/nodes\[0\]: missing required key 'port'/);
    const { f: _f, ...noF } = local;
    expect(() => parse(noF)).toThrow(/config: missing required key 'f'/);
    expect(() => parse({ ...local, replicas: 3 })).toThrow(/unknown key 'replicas'/);
    const badName = local.nodes.map((n, i) => (i === 0 ? { ...n, name: 'Ring 0' } : n));
    expect(() => parse(withNodes(badName))).toThrow(/nodes\[0\]\.name: 'Ring 0' must match/);
    expect(() => parse({ ...local, f: 1.5 })).toThrow(/config\.f: expected an integer/);
  });

  it('reports unreadable and non-JSON files as ConfigError', () => {
    expect(() => loadClusterConfig('cluster-configs/nope.json')).toThrow(ConfigError);
    expect(() => loadClusterConfig('package-lock.json')).toThrow(/missing required key 'dataDir'|unknown key/);
  });
});
