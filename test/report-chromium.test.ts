import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startBroker, type RunningBroker } from '../src/load/broker-process';
import type { LoadReport } from '../src/load/report-model';
import { runLoad } from '../src/load/run-load';
import { recommend, pointFromReport, tuneDefaults, type TuneReport } from '../src/tune';
import { checkReportInChromium, defaultChromium, screenshotReport } from '../src/report/chromium';
import { renderLoadReport, renderTuneReport, writeReportFile } from '../src/report/html';
import { loadOptions } from './helpers/load';

const chromiumMissing = fs.existsSync(defaultChromium) ? false : `${defaultChromium} is not installed (CI installs Debian's chromium)`;
let broker: RunningBroker;
let report: LoadReport;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-report-'));

before(async () => {
  broker = await startBroker({ queueSize: 256 });
  report = await runLoad(loadOptions(broker, { slowClients: 1, slowDelayUs: 1000, rate: 3000 }));
});

after(async () => {
  await broker.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('report - the load report is one self-contained file with the chart library inlined and no network references', () => {
  const html = renderLoadReport(report);
  assert.match(html, /var uPlot=function/);
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|@import/);
  assert.doesNotMatch(html, /https?:\/\/(?!github\.com\/leeoniya)[^\s"'<]+\.(js|css)/);
  // The embedded data round-trips: the page carries the whole report.
  // One sentence per client says what limited it, and the tool's threads are charted.
  for (const c of report.clients) assert.ok(html.includes(`${c.name}</b>`) && c.limit.length > 20, c.limit);
  assert.match(html, /What limited each client/);
  assert.match(html, /tool-threads/);
  const json = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
  assert.equal((JSON.parse(json) as LoadReport).aggregate.received, report.aggregate.received);
});

test('report - headless Chromium renders every chart of a load report with non-zero size and drawn series', { skip: chromiumMissing }, async () => {
  const file = path.join(dir, 'load.html');
  writeReportFile(file, renderLoadReport(report));
  const check = await checkReportInChromium(file);
  assert.equal(check.error, undefined);
  assert.equal(check.charts, 6, `latency x2, throughput, drops, broker, load threads: ${JSON.stringify(check)}`);
  assert.equal(check.rendered, check.charts, JSON.stringify(check));
  assert.ok(check.ok, JSON.stringify(check));
  assert.match(check.title, /charts rendered 6\/6/);
  for (const s of check.sizes) {
    const [, w, h] = /:(\d+)x(\d+):/.exec(s) ?? [];
    assert.ok(Number(w) >= 480 && Number(h) >= 300, s);
  }
  const png = path.join(dir, 'load.png');
  await screenshotReport(file, png);
  const bytes = fs.readFileSync(png);
  assert.equal(bytes.subarray(1, 4).toString('latin1'), 'PNG');
  assert.equal(bytes.readUInt32BE(16), 1280, 'screenshot width from the PNG header');
  assert.ok(bytes.length > 50_000, `a page with tables and charts is not a ${bytes.length}-byte PNG`);
});

test('report - headless Chromium renders the tune charts (drop rate, latency, memory against queue size)', { skip: chromiumMissing }, async () => {
  // Points from real runs would take a sweep; the three charts only need points, so derive
  // two from the real load run above at two nominal queue sizes and rates.
  const opts = { ...tuneDefaults, encoderThreads: [null], batchSizes: [null], ringSizes: [null], cliMain: undefined };
  const points = [256, 1024].flatMap((queueSize) =>
    [3000, 6000].map((rate) => pointFromReport(report, { settings: { queueSize, encoderThreads: null, batchSize: null, ringSize: null }, rate, slowDelayUs: 1000 }, '4 clients', { ...opts, burst: 0 })),
  );
  const t: TuneReport = {
    kind: 'tune',
    version: 1,
    startedAt: report.startedAt,
    wallSec: report.wallSec,
    targetDropPct: 0.1,
    pointDurationSec: 3,
    points,
    recommendations: recommend(points, 0.1),
    detail: report,
    machine: report.machine,
  };
  const file = path.join(dir, 'tune.html');
  writeReportFile(file, renderTuneReport(t));
  const check = await checkReportInChromium(file);
  assert.equal(check.charts, 9, JSON.stringify(check));
  assert.equal(check.rendered, 9, JSON.stringify(check));
  assert.ok(check.ok);
});
