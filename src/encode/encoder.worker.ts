/**
 * Encoder worker (runs in a piscina thread): one span encoder per thread, with the
 * run's settings from workerData. The work itself is in encodeSpan.ts. The batch's
 * buffers are fresh per batch, so they are transferred to the main thread, not copied.
 */
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { workerData } from 'node:worker_threads';
import type { EncodeTask, EncodedBatch, EncoderSettings } from './batch';
import { createSpanEncoder } from './encodeSpan';

const encodeSpan = createSpanEncoder((workerData as { encoder: EncoderSettings }).encoder);

export default function encode(task: EncodeTask): unknown {
  const batch: EncodedBatch = encodeSpan(task);
  const transfer = [batch.alerts, batch.logs].flatMap((s) => [s.bytes.buffer, s.ends.buffer, s.ingestedUs.buffer, s.attrs.buffer]);
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
