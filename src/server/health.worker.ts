/**
 * The health thread (healthPort.ts): serves grpc.health.v1 on gRPCHealthPort, and says
 * NOT_SERVING when the main thread says so or has stopped beating for stallMs.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { parentPort, workerData } from 'node:worker_threads';
import { HealthSlot, MAIN_BEAT_MS, type FromHealthWorker, type HealthWorkerData } from './healthPort';

const data = workerData as HealthWorkerData;
const port = parentPort as NonNullable<typeof parentPort>;
const slots = new Int32Array(data.state);
// From the first answer on, what the main thread set before this thread started.
let shown = Atomics.load(slots, HealthSlot.SERVING) === 1;
const health = new HealthImplementation({ '': shown ? 'SERVING' : 'NOT_SERVING', 'feeder.LogService': shown ? 'SERVING' : 'NOT_SERVING' });
const server = new grpc.Server();
health.addToServer(server);

function post(msg: FromHealthWorker): void {
  port.postMessage(msg);
}

let lastBeat = Atomics.load(slots, HealthSlot.MAIN_BEAT);
let lastBeatChangeMs = performance.now();
const check = setInterval(() => {
  const now = performance.now();
  const beat = Atomics.load(slots, HealthSlot.MAIN_BEAT);
  if (beat !== lastBeat) {
    lastBeat = beat;
    lastBeatChangeMs = now;
    Atomics.store(slots, HealthSlot.STALLED, 0);
  } else if (now - lastBeatChangeMs > data.stallMs && Atomics.load(slots, HealthSlot.STALLED) === 0) {
    Atomics.store(slots, HealthSlot.STALLED, 1);
    Atomics.add(slots, HealthSlot.STALLS, 1);
  }
  const serving = Atomics.load(slots, HealthSlot.SERVING) === 1 && Atomics.load(slots, HealthSlot.STALLED) === 0;
  if (serving === shown) return;
  shown = serving;
  for (const service of ['', 'feeder.LogService']) health.setStatus(service, serving ? 'SERVING' : 'NOT_SERVING');
}, MAIN_BEAT_MS / 2);

server.bindAsync(data.address, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) post({ type: 'failed', message: err.message });
  else post({ type: 'ready', port: bound });
});

port.on('message', (msg: { type: 'stop'; timeoutMs: number }) => {
  if (msg.type !== 'stop') return;
  clearInterval(check);
  for (const service of ['', 'feeder.LogService']) health.setStatus(service, 'NOT_SERVING');
  const timer = setTimeout(() => server.forceShutdown(), msg.timeoutMs);
  server.tryShutdown(() => {
    clearTimeout(timer);
    post({ type: 'stopped' });
    port.close();
  });
});
