/**
 * uPlot (MIT, github.com/leeoniya/uPlot), read from node_modules at report time
 * and inlined, so a report opens with no network access. Its licence notice
 * travels with it in the page.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ChartLibrary {
  name: string;
  version: string;
  licenseNotice: string;
  script: string;
  css: string;
}

let cached: ChartLibrary | undefined;

export function loadUplot(): ChartLibrary {
  if (cached !== undefined) return cached;
  const scriptPath = require.resolve('uplot/dist/uPlot.iife.min.js');
  const root = path.resolve(path.dirname(scriptPath), '..');
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  const license = fs.readFileSync(path.join(root, 'LICENSE'), 'utf8');
  cached = {
    name: 'uPlot',
    version: pkg.version,
    licenseNotice: license.split('\n').find((l) => l.startsWith('Copyright')) ?? 'MIT licence',
    script: fs.readFileSync(scriptPath, 'utf8'),
    css: fs.readFileSync(path.join(root, 'dist', 'uPlot.min.css'), 'utf8'),
  };
  return cached;
}
