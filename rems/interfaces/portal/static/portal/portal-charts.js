// The reports' charts, drawn with Chart.js from the figures the page carries (each chart's table holds the same
// figures, for screen readers and for browsers without scripts).
(function () {
  "use strict";
  function draw(canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart"));
    if (!source || !window.Chart) { return; }
    var figures = JSON.parse(source.textContent);
    var narrow = window.matchMedia("(max-width: 30rem)").matches;
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: figures.labels,
        datasets: figures.datasets.map(function (d) {
          return { label: d.label, data: d.data, backgroundColor: d.colour, borderColor: d.colour, maxBarThickness: 48 };
        })
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        font: { size: 13 },
        plugins: {
          legend: { position: "top", align: "start", labels: { boxWidth: 14, color: "#1a1a1a", font: { size: 13 } } },
          tooltip: { callbacks: { label: function (item) {
            return item.dataset.label + ": " + (item.raw === null ? "none" : item.raw + " " + figures.unit);
          } } }
        },
        scales: {
          x: { ticks: { color: "#1a1a1a", autoSkip: true, maxRotation: narrow ? 60 : 0, font: { size: 12 } },
               grid: { display: false } },
          y: { beginAtZero: true, grace: "10%",
               title: { display: true, text: figures.unit, color: "#1a1a1a", font: { size: 12 } },
               ticks: { color: "#1a1a1a", precision: figures.unit === "hours" || figures.unit === "days" || figures.unit === "minutes" ? undefined : 0, font: { size: 12 } } }
        }
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("canvas[data-chart]"), draw);
  });
})();
