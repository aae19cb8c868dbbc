// Small SVG plots for the dataset page (no library): bar charts (grouped or stacked series) and a
// scatter plot. Each returns a <figure data-plot="name"> holding one <svg role="img">.
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#2f5bea", "#e07b39", "#1d9a6c", "#c4322b", "#7b4fd0", "#a15c00", "#0f8fb3", "#d04f98"];
const W = 560, H = 240, M = {top: 12, right: 12, bottom: 56, left: 52};

function el(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((m) => m * step).find((v) => v >= value);
}

function short(n) {
  if (Math.abs(n) >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (Math.abs(n) >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

function frame(name, title, svg, legend) {
  const figure = document.createElement("figure");
  figure.className = "plot";
  figure.dataset.plot = name;
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption, svg);
  if (legend && legend.length > 1) {
    const list = document.createElement("div");
    list.className = "legend";
    legend.forEach((label, i) => {
      const item = document.createElement("span");
      item.innerHTML = `<i style="background:${COLOURS[i % COLOURS.length]}"></i>`;
      item.append(label);
      list.append(item);
    });
    figure.append(list);
  }
  return figure;
}

function axes(svg, yMax, format, yLabel) {
  const plotH = H - M.top - M.bottom;
  for (let i = 0; i <= 4; i++) {
    const y = M.top + plotH - (plotH * i) / 4;
    svg.append(el("line", {x1: M.left, x2: W - M.right, y1: y, y2: y, class: "gridline"}),
      el("text", {x: M.left - 6, y: y + 4, "text-anchor": "end", class: "tick"}, format((yMax * i) / 4)));
  }
  if (yLabel) {
    svg.append(el("text", {x: 12, y: M.top + plotH / 2, transform: `rotate(-90 12 ${M.top + plotH / 2})`,
      "text-anchor": "middle", class: "axis-label"}, yLabel));
  }
}

// bars("name", "Title", ["cat", "dog"], [{name: "train", values: [3, 4]}, ...], {stacked, percent, yLabel})
export function bars(name, title, labels, series, options = {}) {
  const {stacked = false, percent = false, yLabel = ""} = options;
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const top = stacked ? Math.max(0, ...totals) : Math.max(0, ...series.flatMap((s) => s.values));
  const yMax = percent ? Math.min(1, niceMax(top)) : niceMax(top);
  const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title});
  const format = percent ? (v) => `${Math.round(v * 100)}%` : short;
  axes(svg, yMax, format, yLabel);
  const plotW = W - M.left - M.right, plotH = H - M.top - M.bottom;
  const slot = plotW / Math.max(1, labels.length);
  const groups = stacked ? 1 : series.length;
  const barW = Math.max(1, Math.min(40, (slot * 0.8) / groups));
  const every = Math.ceil(labels.length / 24);
  labels.forEach((label, i) => {
    let base = 0;
    series.forEach((s, k) => {
      const value = s.values[i] || 0;
      const h = (plotH * value) / yMax;
      const x = M.left + slot * i + (slot - barW * groups) / 2 + (stacked ? 0 : k * barW);
      const y = M.top + plotH - h - (stacked ? (plotH * base) / yMax : 0);
      svg.append(el("rect", {x, y, width: barW, height: Math.max(0, h), fill: COLOURS[k % COLOURS.length], class: "plot-bar"},
        el("title", {}, `${label}${series.length > 1 ? ` · ${s.name}` : ""}: ${percent ? `${(value * 100).toFixed(1)}%` : value}`)));
      base += value;
    });
    if (i % every === 0) {
      const x = M.left + slot * (i + 0.5), y = H - M.bottom + 12;
      const text = String(label).length > 12 ? `${String(label).slice(0, 11)}…` : String(label);
      svg.append(el("text", {x, y, "text-anchor": "end", transform: `rotate(-35 ${x} ${y})`, class: "tick"}, text));
    }
  });
  return frame(name, title, svg, series.map((s) => s.name));
}

// A histogram {edges, counts} as bars labelled by their ranges.
export function histogram(name, title, hist, options = {}) {
  const {format = short, yLabel = "images"} = options;
  const labels = hist.counts.map((_, i) => (i === hist.counts.length - 1 && hist.edges[i + 1] >= 1000
    ? `≥${format(hist.edges[i])}` : `${format(hist.edges[i])}–${format(hist.edges[i + 1])}`));
  return bars(name, title, labels, [{name: yLabel, values: hist.counts}], {yLabel});
}

// scatter("name", "Title", [[x, y], ...], {xLabel, yLabel})
export function scatter(name, title, points, options = {}) {
  const {xLabel = "", yLabel = ""} = options;
  const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title});
  const xMax = niceMax(Math.max(1, ...points.map((p) => p[0])));
  const yMax = niceMax(Math.max(1, ...points.map((p) => p[1])));
  axes(svg, yMax, short, yLabel);
  const plotW = W - M.left - M.right, plotH = H - M.top - M.bottom;
  for (let i = 0; i <= 4; i++) {
    const x = M.left + (plotW * i) / 4;
    svg.append(el("text", {x, y: H - M.bottom + 16, "text-anchor": "middle", class: "tick"}, short((xMax * i) / 4)));
  }
  svg.append(el("text", {x: M.left + plotW / 2, y: H - 12, "text-anchor": "middle", class: "axis-label"}, xLabel));
  for (const [x, y] of points) {
    svg.append(el("circle", {cx: M.left + (plotW * x) / xMax, cy: M.top + plotH - (plotH * y) / yMax, r: 3,
      fill: COLOURS[0], "fill-opacity": 0.45, class: "plot-point"}, el("title", {}, `${x} × ${y}`)));
  }
  return frame(name, title, svg);
}
