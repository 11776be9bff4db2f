/**
 * Encoder worker (runs in a piscina thread): one span encoder per thread, with the
 * run's settings from workerData. The work itself is in encodeSpan.ts.
 */
import { workerData } from 'node:worker_threads';
import type { EncoderSettings } from './batch';
import { createSpanEncoder } from './encodeSpan';

export default createSpanEncoder((workerData as { encoder: EncoderSettings }).encoder);
