import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // Stage surfaces: a folder of src/ is imported through its index.ts, never into its
    // files. Four exceptions. src/wire/: leaf modules of the shared protocol (proto, time,
    // framing, goRegexp), imported one by one so that each thread loads only what it needs.
    // src/event/scan.ts: the msgpack reader the encoders call per field; through index.ts
    // every call would go through the getter TypeScript compiles a re-export to, which cost
    // the span encoder about a tenth of its speed (npm run bench, encode).
    // src/ingest/synthetic.ts: the event generator, which the load tool's producer thread
    // runs too; through ingest's index.ts that thread would load the whole ingest stage
    // (config, TLS, the NATS client) for it. src/cli/nodeFlags.ts: the node options of
    // every launcher of the broker (the load tool's included); src/cli has no surface, its
    // entry (main.ts) loads every command. src/export/options.ts and src/tls/files.ts: the
    // option rules config checks, without the runtime behind them (the NATS client,
    // grpc-js), which every command would otherwise load at start (src/config).
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          group: ['../*/*', './*/*', '!../wire/*', '!./wire/*', '!../event/scan', '!../ingest/synthetic', '!../cli/nodeFlags', '!../export/options', '!../tls/files'],
          message: "Import another folder of src/ through its index.ts (add what you need to that folder's surface).",
        }],
      }],
    },
  },
);
