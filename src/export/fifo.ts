/**
 * A first-in first-out queue of unbounded length in fixed-size circular chunks (undici's
 * FixedQueue): push and shift are O(1) at any length, where Array#shift moves every
 * element (the export buffer holds up to exportBufferEvents, 100,000 by default).
 *
 *   head                                   tail
 *    |                                      |
 *   [chunk: .. x x x x]--next-->[chunk: x x x . . .]
 *         ^bottom      ^top             ^bottom ^top
 *
 * Invariants: `shift` reads at the head chunk's bottom, `push` writes at the tail chunk's
 * top; a chunk is full when top+1 == bottom (mod size), empty when top == bottom; the
 * head chunk is dropped once emptied and it is not the tail.
 */
const CHUNK = 2048;

class Chunk<T> {
  readonly slots: (T | undefined)[] = new Array<T | undefined>(CHUNK);
  bottom = 0;
  top = 0;
  next: Chunk<T> | undefined;

  isFull(): boolean {
    return ((this.top + 1) & (CHUNK - 1)) === this.bottom;
  }

  isEmpty(): boolean {
    return this.top === this.bottom;
  }
}

export class Fifo<T> {
  private head = new Chunk<T>();
  private tail = this.head;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.tail.isFull()) {
      const chunk = new Chunk<T>();
      this.tail.next = chunk;
      this.tail = chunk;
    }
    this.tail.slots[this.tail.top] = item;
    this.tail.top = (this.tail.top + 1) & (CHUNK - 1);
    this.count++;
  }

  shift(): T | undefined {
    const chunk = this.head;
    if (chunk.isEmpty()) return undefined;
    const item = chunk.slots[chunk.bottom];
    chunk.slots[chunk.bottom] = undefined;
    chunk.bottom = (chunk.bottom + 1) & (CHUNK - 1);
    this.count--;
    if (chunk.isEmpty() && chunk.next !== undefined) this.head = chunk.next;
    return item;
  }

  peek(): T | undefined {
    const chunk = this.head;
    return chunk.isEmpty() ? undefined : chunk.slots[chunk.bottom];
  }
}
