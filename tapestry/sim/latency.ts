/**
 * Latency model for the large simulations: every node is a random point on a sphere and one-way
 * delay grows with the great-circle distance (a metric, like the Internet's geography at first
 * order), plus a fixed per-message floor. Deterministic given the seed.
 */
import { Prng } from '../../sim/prng.ts';

export interface LatencyModel {
  /** One-way delay in ms between the nodes with these indices. */
  latencyMs(a: number, b: number): number;
}

export class SphereLatency implements LatencyModel {
  private readonly xs: number[] = [];
  private readonly ys: number[] = [];
  private readonly zs: number[] = [];
  private readonly prng: Prng;

  /** Antipodal nodes are floorMs + spanMs apart. */
  constructor(
    seed: number,
    readonly floorMs = 1,
    readonly spanMs = 150,
  ) {
    this.prng = new Prng(seed).fork('sphere');
  }

  latencyMs(a: number, b: number): number {
    if (a === b) return 0;
    this.ensure(Math.max(a, b));
    const dot = this.xs[a]! * this.xs[b]! + this.ys[a]! * this.ys[b]! + this.zs[a]! * this.zs[b]!;
    return this.floorMs + (this.spanMs * Math.acos(Math.max(-1, Math.min(1, dot)))) / Math.PI;
  }

  private ensure(index: number): void {
    while (this.xs.length <= index) {
      // Uniform on the sphere: z uniform in [-1, 1], longitude uniform.
      const z = 2 * this.prng.float() - 1;
      const phi = 2 * Math.PI * this.prng.float();
      const r = Math.sqrt(1 - z * z);
      this.xs.push(r * Math.cos(phi));
      this.ys.push(r * Math.sin(phi));
      this.zs.push(z);
    }
  }
}
