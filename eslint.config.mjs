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
    // files. Two exceptions. src/wire/: leaf modules of the shared protocol (proto, time,
    // framing, goRegexp), imported one by one so that each thread loads only what it needs.
    // src/event/scan.ts: the msgpack reader the encoders call per field; through index.ts
    // every call would go through the getter TypeScript compiles a re-export to, which cost
    // the span encoder about a tenth of its speed (npm run bench, encode).
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          group: ['../*/*', './*/*', '!../wire/*', '!./wire/*', '!../event/scan'],
          message: "Import another folder of src/ through its index.ts (add what you need to that folder's surface).",
        }],
      }],
    },
  },
  {
    // The load tester, the tuner and their report are being reorganised (issue 14, load's
    // part: LoadClient, the tuner's own folder); they join the rule with that work.
    files: ['src/load/**/*.ts', 'src/report/**/*.ts', 'src/cli/load.ts', 'src/cli/tune.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
