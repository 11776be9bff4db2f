#!/usr/bin/env -S node --max-semi-space-size=2
'use strict';
// Thin launcher: the CLI is compiled TypeScript (npm ci runs `prepare`, which builds dist/).
require('../dist/src/cli/main.js').main(process.argv.slice(2));
