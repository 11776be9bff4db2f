export { EncoderPool, type EncoderPoolOptions, type EncodeFailure } from './pool';
export * from './batch';
