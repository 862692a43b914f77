// bounceproc dashboard: draws the charts (uPlot) from the page's JSON and refreshes the panels
// from /dashboard/data without reloading the page. The panels' HTML is rendered by the server.
(function () {
  "use strict";
  var PALETTE = ["#4a78c2", "#e07b39", "#3a9a5b", "#b54a9a", "#c2a23a", "#3ab0b5", "#8a5a3a", "#7a7ac2", "#999999"];
  var plots = [];
  var bars = uPlot.paths.bars({ size: [0.8, 40] });

  function stacked(buckets, byProvider, providers) {
    // cumulative series, drawn from the top one down so each band shows its own provider
    var names = providers.filter(function (p) { return byProvider[p]; });
    var acc = buckets.map(function () { return 0; });
    var layers = names.map(function (p) {
      acc = acc.map(function (v, i) { return v + byProvider[p][i]; });
      return acc.slice();
    });
    return { names: names.reverse(), layers: layers.reverse() };
  }

  function draw(el, xs, names, layers, colours) {
    var width = Math.max(240, el.clientWidth || 260);
    var series = [{}].concat(names.map(function (n, i) {
      var c = colours[i % colours.length];
      return { label: n, stroke: c, fill: c + "cc", width: 1, points: { show: false }, paths: bars };
    }));
    var opts = { width: width, height: 160, series: series, legend: { show: true },
                 scales: { y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
                 axes: [{}, { size: 40 }] };
    plots.push(new uPlot(opts, [xs].concat(layers), el));
  }

  function render(data) {
    plots.forEach(function (p) { p.destroy(); });
    plots = [];
    var t = data.traffic;
    var colour = {};
    t.providers.forEach(function (p, i) { colour[p] = PALETTE[i % PALETTE.length]; });
    document.querySelectorAll(".plot[data-kind]").forEach(function (el) {
      var s = stacked(t.buckets, t.series[el.dataset.kind] || {}, t.providers);
      draw(el, t.buckets, s.names, s.layers, s.names.map(function (n) { return colour[n]; }));
    });
    var g = document.querySelector(".plot[data-growth]");
    if (g) {
      var xs = data.growth.days.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
      var reasons = Object.keys(data.growth.by_reason).sort();
      var s = stacked(xs, data.growth.by_reason, reasons);
      draw(g, xs, s.names, s.layers, PALETTE);
    }
    document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
  }

  function query() {
    var params = new URLSearchParams();
    new FormData(document.getElementById("filters")).forEach(function (v, k) { if (v) params.set(k, v); });
    return params.toString();
  }

  function refresh() {
    var q = query();
    return fetch("/dashboard/data" + (q ? "?" + q : ""), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (doc) {
        document.getElementById("panels").innerHTML = doc.html;
        document.getElementById("at").textContent = doc.at;
        render(doc.charts);
        document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      })
      .catch(function (e) { document.getElementById("at").textContent = "refresh failed: " + e.message; });
  }

  document.getElementById("filters").addEventListener("change", function () {
    history.replaceState(null, "", "/dashboard" + (query() ? "?" + query() : ""));
    refresh();
  });
  render(JSON.parse(document.getElementById("chart-data").textContent));
  var every = Number(document.getElementById("panels").dataset.refresh) || 30;
  setInterval(refresh, every * 1000);
  window.bounceprocRefresh = refresh;
})();
