/**
 * The script inlined into the report page. It reads the chart specs from a JSON
 * block, draws each with uPlot, then checks that every chart has a canvas of
 * non-zero size and writes the result into #render-check and the page title, so
 * headless Chromium (--dump-dom) can tell whether the charts really rendered.
 */
export const browserScript = String.raw`
(function () {
  'use strict';
  var check = document.getElementById('render-check');
  function fmtNum(v) {
    if (v == null) return '';
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(0) + 'k';
    if (a >= 1e3) return (v / 1e3).toFixed(1) + 'k';
    return String(Math.round(v * 100) / 100);
  }
  function fmtPercentile(x) {
    if (x <= 1) return '0%';
    var p = 100 * (1 - 1 / x);
    var s = p >= 99 ? p.toFixed(Math.max(0, Math.ceil(Math.log10(x)) - 2)) : p.toFixed(0);
    return s + '%';
  }
  function fmtMicros(v) {
    if (v == null) return '';
    if (v >= 1e6) return (v / 1e6).toFixed(v >= 1e7 ? 0 : 1) + 's';
    if (v >= 1e3) return (v / 1e3).toFixed(v >= 1e4 ? 0 : 1) + 'ms';
    return Math.round(v) + 'us';
  }
  function fmtBytes(v) {
    if (v == null) return '';
    if (v >= 1073741824) return (v / 1073741824).toFixed(1) + 'GiB';
    if (v >= 1048576) return (v / 1048576).toFixed(0) + 'MiB';
    if (v >= 1024) return (v / 1024).toFixed(0) + 'KiB';
    return v + 'B';
  }
  function formatter(kind) {
    switch (kind) {
      case 'percentile': return fmtPercentile;
      case 'seconds': return function (v) { return v + 's'; };
      case 'percent': return function (v) { return v == null ? '' : (Math.round(v * 1000) / 1000) + '%'; };
      case 'micros': return fmtMicros;
      case 'bytes': return fmtBytes;
      default: return fmtNum;
    }
  }
  function scale(axis) {
    var s = { auto: true };
    if (axis.log) { s.distr = 3; s.log = axis.log; }
    if (axis.min != null && !axis.log) { s.range = function (u, min, max) { return [axis.min, max > axis.min ? max * 1.05 : axis.min + 1]; }; }
    return s;
  }
  function axisOpts(axis, scaleKey, side) {
    var f = formatter(axis.format);
    var a = {
      scale: scaleKey, side: side, label: axis.label, labelSize: 20, size: 60,
      grid: { show: side !== 1, stroke: '#e5e5e5', width: 1 },
      values: function (u, ticks) { return ticks.map(f); }
    };
    // On log axes label only whole powers of the base: 1, 10, 100 (= 0%, 90%, 99%) rather than every 2..9.
    if (axis.log) {
      a.splits = function (u, i, min, max) {
        var s = [];
        for (var v = 1; v <= max * 1.0001; v *= axis.log) if (v >= min * 0.9999) s.push(v);
        return s.length > 1 ? s : [min, max];
      };
    }
    if (axis.format === 'seconds') a.incrs = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600];
    return a;
  }
  function draw(spec, host, width) {
    var fig = document.createElement('figure');
    fig.className = 'chart';
    fig.id = 'chart-' + spec.id;
    var div = document.createElement('div');
    fig.appendChild(div);
    var cap = document.createElement('figcaption');
    cap.textContent = spec.caption;
    fig.appendChild(cap);
    host.appendChild(fig);
    var xScale = scale(spec.x); xScale.time = false;
    var scales = { x: xScale, y: scale(spec.y) };
    var axes = [axisOpts(spec.x, 'x', 2), axisOpts(spec.y, 'y', 3)];
    if (spec.y2) { scales.y2 = scale(spec.y2); axes.push(axisOpts(spec.y2, 'y2', 1)); }
    var yf = formatter(spec.y.format), y2f = spec.y2 ? formatter(spec.y2.format) : yf, xf = formatter(spec.x.format);
    var series = [{ label: spec.x.label, value: function (u, v) { return xf(v); } }];
    spec.series.forEach(function (s) {
      series.push({
        label: s.label, stroke: s.color, width: 2, dash: s.dash, spanGaps: false,
        scale: s.secondAxis ? 'y2' : 'y',
        points: { show: !!s.points, size: 6, fill: s.color },
        value: function (u, v) { return (s.secondAxis ? y2f : yf)(v); }
      });
    });
    var opts = { title: spec.title, width: width, height: 320, scales: scales, axes: axes, series: series, legend: { live: false } };
    return { spec: spec, el: fig, plot: new uPlot(opts, spec.data, div) };
  }
  try {
    var specs = JSON.parse(document.getElementById('chart-specs').textContent);
    var made = [];
    specs.forEach(function (spec) {
      var host = document.getElementById('charts-' + (spec.group || 'main')) || document.getElementById('charts-main');
      var width = Math.max(480, Math.min(1100, host.clientWidth || 960));
      made.push(draw(spec, host, width));
    });
    // uPlot sizes its canvas in a microtask after construction: check once that has run.
    setTimeout(function () { verify(specs, made); }, 50);
  } catch (e) {
    fail(e);
  }
  function fail(e) {
    check.setAttribute('data-ok', 'false');
    check.setAttribute('data-error', String(e && e.message || e));
    document.title = document.title + ' [charts failed]';
  }
  function saturatedPixels(canvas) {
    var d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    var n = 0;
    for (var i = 0; i < d.length; i += 4) {
      var hi = Math.max(d[i], d[i + 1], d[i + 2]), lo = Math.min(d[i], d[i + 1], d[i + 2]);
      if (d[i + 3] > 128 && hi - lo > 60) n++;
    }
    return n;
  }
  function verify(specs, made) {
    var rendered = 0, sizes = [];
    made.forEach(function (m) {
      var canvas = m.el.querySelector('canvas');
      var r = canvas ? canvas.getBoundingClientRect() : { width: 0, height: 0 };
      // Sized by uPlot (not the 300x150 default) and showing series lines: axes and grid
      // are grey, series colours are saturated, so count saturated pixels.
      var sized = canvas && canvas.width >= 0.9 * m.plot.width * (window.devicePixelRatio || 1) && canvas.height > 0 && r.width > 0 && r.height > 0;
      var inked = sized ? saturatedPixels(canvas) : 0;
      if (sized && inked > 20) rendered++;
      sizes.push(m.spec.id + ':' + (canvas ? canvas.width + 'x' + canvas.height + ':' + inked : 'none'));
    });
    check.setAttribute('data-charts', String(specs.length));
    check.setAttribute('data-rendered', String(rendered));
    check.setAttribute('data-sizes', sizes.join(','));
    check.setAttribute('data-ok', String(rendered === specs.length && specs.length > 0));
    document.title = document.title + ' [charts rendered ' + rendered + '/' + specs.length + ']';
  }
})();
`;
