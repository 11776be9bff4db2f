/**
 * Test worker: a producer in its own thread, so it keeps writing while the test's main
 * thread (the feeder's) is held. It waits for `go`, then sends `count` numbered
 * ContainerLogs (hostPid = first + i) through FrameProducer as fast as the broker takes
 * them, and reports progress in `progress`:
 *   [0] connected (0/1)  [1] events framed so far  [2] done (0/1)  [3] events written
 * With `destroyAfter`, it drops the connection (and whatever is queued) once that many
 * events are framed.
 */
import { workerData } from 'node:worker_threads';
import { FrameProducer } from '../../src/producer';
import { seqLog } from '../helpers/events';
import { Progress } from '../helpers/flood';

interface FloodData {
  socket?: string;
  tcp?: string;
  count: number;
  first: number;
  progress: SharedArrayBuffer;
  go: SharedArrayBuffer;
  destroyAfter?: number;
}


const d = workerData as FloodData;
const progress = new Int32Array(d.progress);
const go = new Int32Array(d.go);
const producer = new FrameProducer({ socket: d.socket, tcp: d.tcp }, { highWaterBytes: 64 * 1024, batchBytes: 16 * 1024, reconnect: false });
producer.once('connect', () => Atomics.store(progress, Progress.CONNECTED, 1));

async function run(): Promise<void> {
  const w = Atomics.waitAsync(go, 0, 0);
  if (w.async) await w.value;
  for (let i = 0; i < d.count; i++) {
    if (d.destroyAfter !== undefined && i === d.destroyAfter) {
      producer.destroy();
      break;
    }
    await producer.send(seqLog(d.first + i));
    Atomics.store(progress, Progress.FRAMED, i + 1);
  }
  if (d.destroyAfter === undefined) await producer.close();
  Atomics.store(progress, Progress.WRITTEN, producer.stats().written);
  Atomics.store(progress, Progress.DONE, 1);
}
void run();
