/**
 * The HTML report's browser script, inlined after Chart.js. It reads the JSON that chart-data.ts
 * embedded (`<script type="application/json" id="report-data">`) and draws one chart per
 * `<figure data-chart="…">`; a chart without data gets a "no data" note instead of a canvas, and a
 * chart that throws gets a note and a console error (the report test fails on console errors).
 * When every chart is done, `<body data-charts="done">`.
 *
 * Plain ES2017 in a string: the report must open offline in any current browser, and the project's
 * TypeScript has no DOM library. No backticks or `${` inside (this is a template literal).
 */
export const CHARTS_CLIENT_JS = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var TIER_COLORS = { single: '#db2777', proxy: '#6b7280', 'web-agent': '#2563eb', 'web-user': '#0891b2', app: '#d97706', db: '#7c3aed', relay: '#059669' };
  var PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563', '#65a30d', '#9333ea'];
  var OK = '#16a34a', BAD = '#dc2626', SUSPECT = '#f59e0b', SLO = '#dc2626';

  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  Chart.defaults.plugins.legend.labels.boxWidth = 12;

  function mix(hex, t) {
    var n = parseInt(hex.slice(1), 16), r = n >> 16, g = (n >> 8) & 255, b = n & 255;
    function m(c) { return Math.round(c + (255 - c) * t); }
    return 'rgb(' + m(r) + ',' + m(g) + ',' + m(b) + ')';
  }
  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return 'rgba(' + (n >> 16) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + a + ')';
  }
  function tierColor(t) { return TIER_COLORS[t] || '#64748b'; }
  /** The i-th node of a tier: the tier's colour, lighter for each further node. */
  function shadeOf(series, i) {
    var k = 0;
    for (var j = 0; j < i; j++) if (series[j].group === series[i].group) k++;
    return mix(tierColor(series[i].group), Math.min(0.6, k * 0.22));
  }
  function xy(points) { return points.map(function (p) { return { x: p[0], y: p[1] }; }); }
  function axis(title, extra) {
    var a = { type: 'linear', title: { display: true, text: title } };
    for (var k in extra || {}) a[k] = extra[k];
    return a;
  }
  function fmt(v, d) { return Number(v).toLocaleString('en-US', { maximumFractionDigits: d === undefined ? 1 : d }); }

  /** Shades the measured part of each window on time charts: green met the SLO, red did not. */
  var bandsPlugin = {
    id: 'rmmWindowBands',
    beforeDatasetsDraw: function (chart) {
      var x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx;
      ctx.save();
      data.bands.forEach(function (b) {
        var x0 = Math.max(area.left, x.getPixelForValue(b.fromSec));
        var x1 = Math.min(area.right, x.getPixelForValue(b.toSec));
        if (!(x1 > x0)) return;
        ctx.fillStyle = b.ok ? 'rgba(22,163,74,0.07)' : 'rgba(220,38,38,0.08)';
        ctx.fillRect(x0, area.top, x1 - x0, area.bottom - area.top);
      });
      ctx.restore();
    },
    /** Each fault that ran: a dashed line at its time, labelled at the top. */
    afterDatasetsDraw: function (chart) {
      var x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = 'rgba(124,58,237,0.9)';
      ctx.fillStyle = 'rgba(124,58,237,0.9)';
      ctx.setLineDash([4, 3]);
      ctx.font = '11px sans-serif';
      (data.faults || []).forEach(function (f) {
        var px = x.getPixelForValue(f.atSec);
        if (!(px >= area.left && px <= area.right)) return;
        ctx.beginPath();
        ctx.moveTo(px, area.top);
        ctx.lineTo(px, area.bottom);
        ctx.stroke();
        ctx.fillText('⚡ ' + f.label, px + 3, area.top + 11);
      });
      ctx.restore();
    }
  };

  function timeChart(series, yTitle, opts) {
    opts = opts || {};
    return {
      type: 'line',
      data: {
        datasets: series.map(function (s, i) {
          var c = opts.byTier ? tierColor(s.group) : shadeOf(series, i);
          return {
            label: opts.stacked ? s.label + ' (' + s.group + ')' : s.label,
            data: xy(s.points),
            borderColor: c,
            backgroundColor: c,
            borderWidth: 1.5,
            pointRadius: 0,
            stack: opts.stacked ? s.group : undefined,
            fill: opts.stacked ? 'stack' : false,
            borderDash: /\(db queries\)$/.test(s.label) ? [5, 3] : undefined
          };
        })
      },
      options: {
        parsing: true,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        scales: { x: axis('seconds from the start of the run'), y: axis(yTitle, { stacked: !!opts.stacked, beginAtZero: true, suggestedMax: opts.suggestedMax }) }
      },
      plugins: [bandsPlugin]
    };
  }

  /** Stacked fills need rgba: shades come back as rgb(...), so turn them translucent here. */
  function translucent(cfg) {
    cfg.data.datasets.forEach(function (d) {
      if (typeof d.borderColor === 'string' && d.borderColor.indexOf('rgb(') === 0) d.backgroundColor = d.borderColor.replace('rgb(', 'rgba(').replace(')', ',0.12)');
    });
    return cfg;
  }

  function pctLabel(x) {
    if (x <= 1) return '0%';
    var p = 100 * (1 - 1 / x);
    var digits = Math.max(0, Math.round(Math.log10(x)) - 2);
    return p.toFixed(digits) + '%';
  }

  function spectrumChart(series, colorOf, sloMs) {
    var maxX = 1;
    series.forEach(function (s) { s.points.forEach(function (p) { if (p[0] > maxX) maxX = p[0]; }); });
    var datasets = series.map(function (s, i) {
      var c = colorOf(s, i);
      return { label: s.label, data: xy(s.points), borderColor: c, backgroundColor: c, borderWidth: 2, pointRadius: 1.5, tension: 0 };
    });
    if (sloMs) datasets.push({ label: 'SLO p99 ' + fmt(sloMs) + ' ms', data: [{ x: 1, y: sloMs }, { x: maxX, y: sloMs }], borderColor: SLO, borderDash: [6, 4], borderWidth: 1.5, pointRadius: 0 });
    return {
      type: 'line',
      data: { datasets: datasets },
      options: {
        scales: {
          x: {
            type: 'logarithmic',
            min: 1,
            max: maxX,
            title: { display: true, text: 'percentile (log scale of 1/(1−p))' },
            afterBuildTicks: function (ax) {
              var ticks = [{ value: 1 }, { value: 2 }];
              for (var v = 10; v <= maxX * 1.0001; v *= 10) ticks.push({ value: v });
              ax.ticks = ticks;
            },
            ticks: { callback: function (v) { return pctLabel(v); } }
          },
          y: axis('latency (ms)', { beginAtZero: true })
        },
        plugins: {
          tooltip: { callbacks: { title: function (items) { return 'p' + pctLabel(items[0].parsed.x).replace('%', ''); }, label: function (it) { return it.dataset.label + ': ' + fmt(it.parsed.y, 2) + ' ms'; } } }
        }
      }
    };
  }

  function pointColors(points) {
    return points.map(function (p) { return !p.trustworthy ? SUSPECT : p.ok ? OK : BAD; });
  }

  function ceilingLine(c, yMax) {
    if (c.ceilingLoad === null || c.ceilingLoad === undefined) return null;
    return { label: 'ceiling ' + fmt(c.ceilingLoad, 0), data: [{ x: c.ceilingLoad, y: 0 }, { x: c.ceilingLoad, y: yMax }], borderColor: OK, borderDash: [4, 4], borderWidth: 1.5, pointRadius: 0, showLine: true };
  }

  var builders = {
    rate: function () {
      if (!data.rate.length) return 'no per-node timeline (an external target, or no node was scraped)';
      return translucent(timeChart(data.rate, 'requests/s (nodes of a tier stacked)', { stacked: true }));
    },
    'spectrum-nodes': function () {
      if (!data.spectrum.nodes.length) return data.spectrum.emptyReason.nodes;
      return spectrumChart(data.spectrum.nodes, function (s, i) { return shadeOf(data.spectrum.nodes, i); }, null);
    },
    'spectrum-ops': function () {
      if (!data.spectrum.ops.length) return data.spectrum.emptyReason.ops;
      return spectrumChart(data.spectrum.ops, function (s, i) { return PALETTE[i % PALETTE.length]; }, data.ceiling.sloP99Ms);
    },
    'ceiling-throughput': function () {
      var c = data.ceiling, pts = c.points;
      if (!pts.length) return 'no measured windows';
      var yMax = 0;
      pts.forEach(function (p) { yMax = Math.max(yMax, p.offered, p.achieved); });
      var ds = [
        { label: 'offered', data: pts.map(function (p) { return { x: p.load, y: p.offered }; }), borderColor: '#6b7280', borderDash: [6, 3], borderWidth: 1.5, pointRadius: 0, showLine: true },
        { label: 'achieved', data: pts.map(function (p) { return { x: p.load, y: p.achieved }; }), borderColor: '#2563eb', pointBackgroundColor: pointColors(pts), pointBorderColor: pointColors(pts), pointRadius: 5, borderWidth: 2, showLine: true },
        { label: 'SLO: achieved ≥ ' + fmt(c.minAchievedRatio * 100, 1) + '% of offered', data: pts.map(function (p) { return { x: p.load, y: p.offered * c.minAchievedRatio }; }), borderColor: SLO, borderDash: [2, 3], borderWidth: 1, pointRadius: 0, showLine: true }
      ];
      if (c.usl) ds.push({ label: 'USL fit', data: xy(c.usl.curve), borderColor: '#7c3aed', borderWidth: 1.5, pointRadius: 0, showLine: true });
      var cl = ceilingLine(c, yMax * 1.05);
      if (cl) ds.push(cl);
      return { type: 'scatter', data: { datasets: ds }, options: { scales: { x: axis('load (' + c.loadAxis + ')', { beginAtZero: true }), y: axis('requests/s', { beginAtZero: true }) } } };
    },
    'ceiling-p99': function () {
      var c = data.ceiling, pts = c.points;
      if (!pts.length) return 'no measured windows';
      var xMin = pts[0].load, xMax = pts[pts.length - 1].load, yMax = c.sloP99Ms, yMin = c.sloP99Ms;
      pts.forEach(function (p) { yMax = Math.max(yMax, p.p99Ms); if (p.p99Ms > 0) yMin = Math.min(yMin, p.p99Ms); });
      // A breached window's p99 can be 100× the SLO: a log axis keeps the passing ones readable.
      var logY = yMax / yMin > 20;
      var ds = [
        { label: 'client p99 (corrected)', data: pts.map(function (p) { return { x: p.load, y: p.p99Ms }; }), borderColor: '#2563eb', pointBackgroundColor: pointColors(pts), pointBorderColor: pointColors(pts), pointRadius: 5, borderWidth: 2, showLine: true },
        { label: 'SLO p99 ' + fmt(c.sloP99Ms) + ' ms', data: [{ x: Math.min(0, xMin), y: c.sloP99Ms }, { x: xMax * 1.05, y: c.sloP99Ms }], borderColor: SLO, borderDash: [6, 4], borderWidth: 1.5, pointRadius: 0, showLine: true }
      ];
      var cl = ceilingLine(c, yMax * 1.05);
      if (cl) {
        if (logY) cl.data[0].y = yMin / 1.5;
        ds.push(cl);
      }
      var y = logY ? { type: 'logarithmic', title: { display: true, text: 'p99 latency (ms, log scale)' } } : axis('p99 latency (ms)', { beginAtZero: true });
      return { type: 'scatter', data: { datasets: ds }, options: { scales: { x: axis('load (' + c.loadAxis + ')', { beginAtZero: true }), y: y } } };
    },
    reconnect: function () {
      var rc = data.reconnect || [];
      if (!rc.length) return 'no tunnel fault (a relay killed, stopped or restarted, or a disconnect)';
      var ds = [];
      rc.forEach(function (f, i) {
        var color = ['#2563eb', '#059669', '#d97706', '#7c3aed'][i % 4];
        if (f.share.length) ds.push({ type: 'line', label: f.label + ': share of its ' + fmt(f.agents, 0) + ' agents back', data: xy(f.share), borderColor: color, backgroundColor: color, pointRadius: 0, borderWidth: 2, stepped: true, yAxisID: 'y' });
        ds.push({ type: 'bar', label: f.label + ': connects/s (all agents)', data: xy(f.connectsPerSec), backgroundColor: alpha(color, 0.35), yAxisID: 'rate' });
      });
      return { type: 'line', data: { datasets: ds }, options: { scales: { x: axis('seconds after the fault', { type: 'linear', beginAtZero: true }), y: axis('share back', { beginAtZero: true, suggestedMax: 1 }), rate: axis('connects per second', { position: 'right', beginAtZero: true, grid: { drawOnChartArea: false } }) } } };
    },
    'alert-delay': function () {
      var ad = data.alertDelay || [];
      if (!ad.length) return 'no alert delay measured (a stack without an analytics node, or no alert raised)';
      function bars(label, side, q, color) {
        return {
          label: label,
          data: ad.map(function (f) { return f[side] ? f[side][q] : null; }),
          alerts: ad.map(function (f) { return f[side] ? f[side].alerts : 0; }),
          backgroundColor: color,
          borderColor: color,
          borderWidth: 1
        };
      }
      var ds = [
        bars('p50 during the fault', 'during', 'p50Ms', alpha(BAD, 0.85)),
        bars('p50 clean (same stage)', 'clean', 'p50Ms', alpha(OK, 0.85)),
        bars('p99 during the fault', 'during', 'p99Ms', alpha(BAD, 0.35)),
        bars('p99 clean (same stage)', 'clean', 'p99Ms', alpha(OK, 0.35))
      ];
      return {
        type: 'bar',
        data: { labels: ad.map(function (f) { return f.label; }), datasets: ds },
        options: {
          scales: { x: { type: 'category' }, y: axis('alert delay (ms)', { beginAtZero: true }) },
          plugins: { tooltip: { callbacks: { label: function (it) { return it.dataset.label + ': ' + fmt(it.parsed.y, 1) + ' ms (' + fmt(it.dataset.alerts[it.dataIndex], 0) + ' alerts)'; } } } }
        }
      };
    },
    'alert-delay-timeline': function () {
      var t = data.alertDelayTimeline || [];
      if (!t.length) return 'no alert delay per second in this result';
      var cfg = timeChart(t, 'alert delay (ms)');
      cfg.data.datasets.forEach(function (d, i) {
        var c = i === 0 ? '#2563eb' : '#dc2626';
        d.borderColor = c;
        d.backgroundColor = c;
        d.pointRadius = 1.5;
      });
      return cfg;
    },
    utilization: function () {
      if (!data.utilization.length) return 'no utilization gauges (nodes without a capacity profile, or an external target)';
      return timeChart(data.utilization, 'utilization (mean over the tier’s nodes)', { byTier: true, suggestedMax: 1 });
    },
    queue: function () {
      if (!data.queue.length) return 'no queue-depth gauges (nodes without a capacity profile, or an external target)';
      return timeChart(data.queue, 'queued requests (sum over the tier’s nodes)', { byTier: true });
    },
    generator: function () {
      var g = data.generator;
      if (!g.length) return 'no measured windows';
      var colors = g.map(function (w) { return w.trustworthy ? alpha('#2563eb', 0.6) : alpha(BAD, 0.8); });
      var ds = [
        { type: 'bar', label: 'worker CPU max (share of a core)', data: g.map(function (w) { return w.cpuMax; }), backgroundColor: colors, yAxisID: 'y' },
        { type: 'line', label: 'scheduling lag p99 (ms)', data: g.map(function (w) { return w.lagP99Ms; }), borderColor: '#d97706', backgroundColor: '#d97706', yAxisID: 'lag', pointRadius: 3 },
        { type: 'line', label: 'worker CPU limit 90%', data: g.map(function () { return 0.9; }), borderColor: SLO, borderDash: [6, 4], borderWidth: 1, pointRadius: 0, yAxisID: 'y' }
      ];
      if (g.some(function (w) { return w.hostCpuMean !== null; })) {
        ds.push({ type: 'line', label: 'host CPU mean', data: g.map(function (w) { return w.hostCpuMean; }), borderColor: '#6b7280', backgroundColor: '#6b7280', pointRadius: 2, yAxisID: 'y' });
      }
      return {
        type: 'bar',
        data: { labels: g.map(function (w) { return w.label; }), datasets: ds },
        options: { scales: { x: { type: 'category' }, y: axis('share of a core / of the host', { beginAtZero: true, suggestedMax: 1 }), lag: axis('scheduling lag p99 (ms)', { position: 'right', beginAtZero: true, grid: { drawOnChartArea: false } }) } }
      };
    }
  };

  var figures = document.querySelectorAll('figure[data-chart]');
  for (var i = 0; i < figures.length; i++) {
    var fig = figures[i], name = fig.getAttribute('data-chart'), holder = fig.querySelector('.chart');
    try {
      var build = builders[name];
      if (!build) throw new Error('no chart named ' + name);
      var cfg = build();
      if (typeof cfg === 'string') {
        var p = document.createElement('p');
        p.className = 'nodata';
        p.textContent = 'No data: ' + cfg + '.';
        holder.appendChild(p);
        holder.classList.add('empty');
        continue;
      }
      var canvas = document.createElement('canvas');
      canvas.setAttribute('role', 'img');
      canvas.setAttribute('aria-label', fig.querySelector('figcaption').textContent);
      holder.appendChild(canvas);
      new Chart(canvas, cfg);
    } catch (err) {
      console.error('rmmscale report: the ' + name + ' chart failed: ' + (err && err.stack || err));
      var e = document.createElement('p');
      e.className = 'nodata';
      e.textContent = 'This chart failed to draw: ' + (err && err.message || err);
      holder.appendChild(e);
    }
  }
  document.body.setAttribute('data-charts', 'done');
})();
`;
