import { describe, expect, it } from 'vitest';
import { modelRepair, type RepairModelOptions } from '../../archive/repair-model.ts';
import { Prng } from '../../sim/prng.ts';

const base: Omit<RepairModelOptions, 'serverCount'> = {
  k: 4,
  m: 4,
  lostBytes: 1e12,
  sampleCount: 1500,
  diskBytesPerSecond: 200e6,
  networkBytesPerSecond: 1.25e9,
  decodeBytesPerSecond: 1e9,
};

describe('repair time model (FDS OSDI 2012 section 3.3: recovery spread over all servers)', () => {
  it('re-protects a lost server faster as archive servers are added', () => {
    const seconds = [8, 16, 64, 256].map((serverCount) => modelRepair({ ...base, serverCount }, new Prng(serverCount)).spreadSeconds);
    for (let i = 1; i < seconds.length; i++) expect(seconds[i]!).toBeLessThan(seconds[i - 1]!);
    // 32x the servers should give well over 8x faster repair (ideal ~32x; sampling noise in the max).
    expect(seconds[0]! / seconds[3]!).toBeGreaterThan(8);
  });

  it('beats the one-replacement-server rebuild, whose time does not depend on the server count', () => {
    const small = modelRepair({ ...base, serverCount: 16 }, new Prng(1));
    const large = modelRepair({ ...base, serverCount: 128 }, new Prng(2));
    expect(small.singleSeconds).toBeCloseTo(large.singleSeconds, 6);
    expect(large.spreadSeconds * 10).toBeLessThan(large.singleSeconds);
    expect(large.coordinatorCount).toBeGreaterThan(100);
  });
});
