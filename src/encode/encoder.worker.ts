/**
 * Encoder worker (runs in a piscina thread): one span encoder per thread, with the
 * run's settings and the output slabs from workerData. The work itself is in
 * encodeSpan.ts. A batch's bytes are written into the task's output slab when it has
 * one; its other buffers are fresh per batch, so they are transferred, not copied.
 */
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { workerData } from 'node:worker_threads';
import type { EncodeTask, EncodedBatch, EncoderSettings } from './batch';
import { createSpanEncoder } from './encodeSpan';
import type { SlabArea } from './slabs';
import { runEncoderTestHook } from '../testHooks';

const data = workerData as { encoder: EncoderSettings; slabs?: SlabArea };
const encodeSpan = createSpanEncoder(data.encoder, data.slabs);

export default function encode(task: EncodeTask): unknown {
  runEncoderTestHook(task.ring, task);
  const batch: EncodedBatch = encodeSpan(task);
  const transfer: ArrayBufferLike[] = [];
  for (const s of [batch.alerts, batch.logs]) {
    // Bytes in an output slab stay where they are; only the small arrays move.
    if (s.slab === undefined) transfer.push(s.bytes.buffer);
    transfer.push(s.ends.buffer, s.ingestedUs.buffer, s.attrs.buffer);
  }
  transfer.push(batch.throttleKeys.buffer);
  return move({
    get [transferableSymbol]() {
      return transfer;
    },
    get [valueSymbol]() {
      return batch;
    },
  });
}
