// chart.js: line charts on a canvas, sized to the canvas's CSS box and the screen's pixel
// ratio, coloured from the page's CSS variables (so light and dark schemes both read well).
// After drawing, the canvas carries data-points (how many points it drew) and an aria-label
// that says what it shows; the legend is text beside it.

import { el, fill, human } from "./format.js";

// The colours of the series, in order: CSS variables --series-0 ... --series-5.
export function seriesColor(index) {
  const style = getComputedStyle(document.documentElement);
  return style.getPropertyValue(`--series-${index % 6}`).trim() || "#888";
}

// Draws `series` ([{label, points: [[t, v], ...]}], t in seconds) on `canvas` over
// [from, to]; `legend` (an element, optional) gets one entry per series. `empty` is the text
// drawn when no series has a point.
export function drawLines(canvas, series, { from, to, legend, empty = "no data yet", unit = "" }) {
  const style = getComputedStyle(document.documentElement);
  const fg = style.getPropertyValue("--muted").trim() || "#666";
  const grid = style.getPropertyValue("--grid").trim() || "#ddd";
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(200, canvas.clientWidth);
  const height = Math.max(120, canvas.clientHeight);
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "12px system-ui, sans-serif";

  const left = 48;
  const right = 8;
  const top = 8;
  const bottom = 20;
  const plotW = width - left - right;
  const plotH = height - top - bottom;

  let max = 0;
  let count = 0;
  for (const s of series) {
    for (const [t, v] of s.points) {
      if (t >= from && t <= to) {
        max = Math.max(max, v);
        count += 1;
      }
    }
  }
  const yMax = niceMax(max);

  // Grid and axis labels.
  ctx.strokeStyle = grid;
  ctx.fillStyle = fg;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i += 1) {
    const y = top + plotH - (plotH * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, Math.round(y) + 0.5);
    ctx.lineTo(left + plotW, Math.round(y) + 0.5);
    ctx.stroke();
    ctx.fillText(human((yMax * i) / 4), left - 6, y);
  }
  ctx.textBaseline = "top";
  const ticks = plotW < 420 ? 2 : 4;  // labels that fit side by side
  for (let i = 0; i <= ticks; i += 1) {
    const t = from + ((to - from) * i) / ticks;
    ctx.textAlign = i === 0 ? "left" : i === ticks ? "right" : "center";
    ctx.fillText(clock(t, to - from), left + (plotW * i) / ticks, top + plotH + 4);
  }

  const x = (t) => left + ((t - from) / (to - from)) * plotW;
  const y = (v) => top + plotH - (v / yMax) * plotH;
  series.forEach((s, index) => {
    const pts = s.points.filter(([t]) => t >= from && t <= to);
    ctx.strokeStyle = seriesColor(s.color ?? index);
    ctx.fillStyle = ctx.strokeStyle;
    ctx.lineWidth = 2;
    ctx.beginPath();
    pts.forEach(([t, v], i) => {
      if (i === 0) {
        ctx.moveTo(x(t), y(v));
      } else {
        ctx.lineTo(x(t), y(v));
      }
    });
    ctx.stroke();
    if (pts.length === 1) {
      ctx.beginPath();
      ctx.arc(x(pts[0][0]), y(pts[0][1]), 3, 0, 2 * Math.PI);
      ctx.fill();
    }
  });
  if (count === 0) {
    ctx.fillStyle = fg;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(empty, left + plotW / 2, top + plotH / 2);
  }

  canvas.dataset.points = String(count);
  canvas.setAttribute(
    "aria-label",
    `${series.map((s) => s.label).join(", ")}: ${count} points, up to ${human(max)}${unit}`,
  );
  if (legend) {
    fill(
      legend,
      series.map((s, index) => {
        const last = s.points.length ? s.points[s.points.length - 1][1] : null;
        const swatch = el("span", { class: `swatch swatch-${(s.color ?? index) % 6}` });
        return el("li", {}, swatch, s.label, " ", el("span", { class: "muted" }, last === null ? "" : `${human(last)}${unit}`));
      }),
    );
  }
}

// The smallest of 1, 2, 5 x 10^n at or above v (at least 1).
function niceMax(v) {
  if (v <= 1) {
    return 1;
  }
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) {
    if (m * p >= v) {
      return m * p;
    }
  }
  return 10 * p;
}

// An axis label: hh:mm:ss for spans under 10 minutes, hh:mm up to 2 days, day/month and
// hour beyond.
function clock(t, span) {
  const d = new Date(t * 1000);
  const p = (n) => String(n).padStart(2, "0");
  if (span > 2 * 86400) {
    return `${p(d.getDate())}/${p(d.getMonth() + 1)} ${p(d.getHours())}h`;
  }
  if (span < 600) {
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  return `${p(d.getHours())}:${p(d.getMinutes())}`;
}
