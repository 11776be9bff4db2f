/**
 * Test worker: the producing end of a ring in its own thread. Writes `count` records
 * whose payload encodes their index, retrying on a full ring (so nothing is lost), then
 * closes the ring.
 */
import { workerData } from 'node:worker_threads';
import { RingProducer } from '../../src/ring';

const { ring, count } = workerData as { ring: SharedArrayBuffer; count: number };
const producer = new RingProducer(ring);
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
for (let i = 0; i < count; i++) {
  const payload = new Uint8Array(8 + (i % 97));
  new DataView(payload.buffer).setUint32(0, i, true);
  payload.fill(i & 0xff, 4);
  while (!producer.offer(payload, i, true)) Atomics.wait(sleepCell, 0, 0, 0.05);
}
producer.close();
