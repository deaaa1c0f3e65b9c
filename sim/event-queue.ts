/** Binary min-heap of timed events; ties broken by insertion order so runs are deterministic. */
export interface Timed<T> {
  atMs: number;
  order: number;
  item: T;
}

export class EventQueue<T> {
  private heap: Timed<T>[] = [];
  private orderNext = 0;

  get size(): number {
    return this.heap.length;
  }

  push(atMs: number, item: T): void {
    this.heap.push({ atMs, order: this.orderNext++, item });
    this.up(this.heap.length - 1);
  }

  peek(): Timed<T> | undefined {
    return this.heap[0];
  }

  pop(): Timed<T> | undefined {
    const top = this.heap[0];
    const last = this.heap.pop();
    if (top && last && this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
    return top;
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    return x.atMs < y.atMs || (x.atMs === y.atMs && x.order < y.order);
  }

  private swap(a: number, b: number): void {
    [this.heap[a], this.heap[b]] = [this.heap[b]!, this.heap[a]!];
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.heap.length && this.less(l, m)) m = l;
      if (r < this.heap.length && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
