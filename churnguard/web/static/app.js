// churnguard dashboard: draws the page's charts from its <script type="application/json" id="chart-data">.
(function () {
  "use strict";
  var node = document.getElementById("chart-data");
  if (!node || typeof Plotly === "undefined") { return; }
  var data = JSON.parse(node.textContent);
  var config = { displayModeBar: false, responsive: true };
  var layout = function (extra) {
    return Object.assign({
      margin: { l: 48, r: 12, t: 8, b: 40 }, height: 260, font: { size: 12 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", showlegend: false
    }, extra || {});
  };
  function draw(id, traces, extra) {
    var el = document.getElementById(id);
    if (!el) { return; }
    if (!traces.length || traces.every(function (t) { return !(t.x || t.labels || t.y || []).length; })) {
      el.classList.add("empty");
      return;
    }
    Plotly.newPlot(el, traces, layout(extra), config);
  }
  if (data.trend) {
    draw("chart-trend", [{ x: data.trend.x, y: data.trend.y, type: "scatter", mode: "lines+markers",
      name: data.trend.name, line: { color: "#2563eb" } }], { yaxis: { tickformat: ".1%" }, xaxis: { type: "category" } });
  }
  if (data.reasons) {
    draw("chart-reasons", [{ y: data.reasons.labels, x: data.reasons.values, type: "bar", orientation: "h",
      name: data.reasons.name, marker: { color: "#f97316" } }],
      { xaxis: { tickformat: ".0%" }, yaxis: { autorange: "reversed", automargin: true }, margin: { l: 12, r: 12, t: 8, b: 40 } });
  }
  // Months as YYYY-MM, in calendar order whichever series first shows a month.
  var month = function (m) { return String(m).slice(0, 7); };
  var monthAxis = { type: "category", categoryorder: "category ascending", automargin: true, tickangle: -45 };
  if (data.activity) {
    var byType = {};
    data.activity.forEach(function (r) {
      (byType[r.event_type] = byType[r.event_type] || { x: [], y: [] });
      byType[r.event_type].x.push(month(r.month));
      byType[r.event_type].y.push(r.events);
    });
    var traces = Object.keys(byType).sort().map(function (k) {
      return { x: byType[k].x, y: byType[k].y, type: "bar", name: k };
    });
    draw("chart-activity", traces, { barmode: "stack", showlegend: traces.length > 1,
      legend: { orientation: "h", y: -0.35 }, xaxis: monthAxis });
  }
  if (data.revenue) {
    draw("chart-revenue", [{ x: data.revenue.x.map(month), y: data.revenue.y, type: "bar", name: data.revenue.name,
      marker: { color: "#16a34a" } }], { xaxis: monthAxis });
  }
})();
