/**
 * Opens a report in headless Chromium (Debian's /usr/bin/chromium) to check that
 * its charts rendered, and to take the screenshot the README shows. Each run gets
 * a fresh profile directory and no network features, and is killed after a timeout.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

export const defaultChromium = process.env.CHROMIUM ?? '/usr/bin/chromium';

export interface RenderCheck {
  ok: boolean;
  charts: number;
  rendered: number;
  /** "id:WxH" of each chart's canvas. */
  sizes: string[];
  title: string;
  error?: string;
}

function baseFlags(profile: string): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    `--user-data-dir=${profile}`,
  ];
}

async function runChromium(args: string[], timeoutMs: number, chromium: string): Promise<string> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-chromium-'));
  try {
    return await new Promise<string>((resolve, reject) => {
      const child = spawn(chromium, [...baseFlags(profile), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`chromium exited with ${code ?? signal}: ${err.slice(-2000)}`));
      });
    });
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`${name}="([^"]*)"`).exec(tag);
  return m?.[1];
}

/** Loads the report, lets its scripts run for a virtual-time budget, and reads #render-check from the DOM. */
export async function checkReportInChromium(htmlFile: string, opts: { chromium?: string; timeoutMs?: number; width?: number } = {}): Promise<RenderCheck> {
  const dom = await runChromium(
    [`--window-size=${opts.width ?? 1280},1000`, '--virtual-time-budget=5000', '--dump-dom', pathToFileURL(path.resolve(htmlFile)).href],
    opts.timeoutMs ?? 60_000,
    opts.chromium ?? defaultChromium,
  );
  const tag = /<div id="render-check"[^>]*>/.exec(dom)?.[0] ?? '';
  const title = /<title>([^<]*)<\/title>/.exec(dom)?.[1] ?? '';
  return {
    ok: attr(tag, 'data-ok') === 'true',
    charts: Number(attr(tag, 'data-charts') ?? 0),
    rendered: Number(attr(tag, 'data-rendered') ?? 0),
    sizes: (attr(tag, 'data-sizes') ?? '').split(',').filter((s) => s !== ''),
    title,
    error: attr(tag, 'data-error'),
  };
}

/** Takes a PNG screenshot of the report's top `height` pixels. */
export async function screenshotReport(
  htmlFile: string,
  pngFile: string,
  opts: { chromium?: string; timeoutMs?: number; width?: number; height?: number } = {},
): Promise<void> {
  await runChromium(
    [
      `--window-size=${opts.width ?? 1280},${opts.height ?? 1600}`,
      '--hide-scrollbars',
      '--virtual-time-budget=5000',
      `--screenshot=${path.resolve(pngFile)}`,
      pathToFileURL(path.resolve(htmlFile)).href,
    ],
    opts.timeoutMs ?? 60_000,
    opts.chromium ?? defaultChromium,
  );
}
