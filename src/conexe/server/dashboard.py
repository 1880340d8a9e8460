"""``GET /``: a live dashboard in one self-contained page (inline CSS and
JS, the chart drawn on a canvas, nothing fetched but this server's own API).

It polls ``GET /stats?history=300`` every second for the counters and the
throughput of the last five minutes, and the two task listings every two.

    >>> "<canvas" in PAGE and "://" not in PAGE  # no external asset
    True
"""

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>conexe serve</title>
<style>
  :root { --fg: #1d2330; --muted: #6b7385; --bg: #f5f6f8; --card: #fff;
          --accent: #2f6fdb; --warn: #c7422f; --ok: #2c8a4b; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
         color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 12px; padding: 14px 24px;
           background: var(--card); border-bottom: 1px solid #e2e5ea; }
  header h1 { margin: 0; font-size: 18px; }
  #state { font-weight: 600; padding: 2px 8px; border-radius: 10px; background: #e7f3ec;
           color: var(--ok); }
  #state.stopping, #state.stopped, #state.offline { background: #fbe9e6; color: var(--warn); }
  #updated { margin-left: auto; color: var(--muted); font-size: 12px; }
  main { padding: 18px 24px; display: grid; gap: 16px;
         grid-template-columns: repeat(4, minmax(0, 1fr)); }
  @media (max-width: 720px) { main { grid-template-columns: repeat(2, minmax(0, 1fr)); }
                              .half { grid-column: 1 / -1; } }
  .card { background: var(--card); border: 1px solid #e2e5ea; border-radius: 8px;
          padding: 12px 14px; }
  .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
                 letter-spacing: .04em; }
  .card .value { font-size: 30px; font-weight: 650; font-variant-numeric: tabular-nums; }
  .wide { grid-column: 1 / -1; }
  .half { grid-column: span 2; }
  canvas { width: 100%; height: 220px; display: block; }
  ul { margin: 6px 0 0; padding: 0; list-style: none; max-height: 180px; overflow: auto;
       font-variant-numeric: tabular-nums; }
  li { padding: 2px 0; border-bottom: 1px solid #f0f1f4; display: flex; }
  li span:last-child { margin-left: auto; color: var(--muted); }
  .counters { display: flex; flex-wrap: wrap; gap: 18px; color: var(--muted); }
  .counters b { color: var(--fg); font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<header>
  <h1>conexe serve</h1><span id="state">connecting</span>
  <span id="updated">waiting for the first update</span>
</header>
<main id="dash" data-live="0">
  <div class="card"><div class="label">Running</div><div class="value" id="running">-</div></div>
  <div class="card"><div class="label">Pending</div><div class="value" id="pending">-</div></div>
  <div class="card"><div class="label">Workers</div><div class="value" id="workers">-</div></div>
  <div class="card"><div class="label">Tasks/s (last 10 s)</div>
    <div class="value" id="rate">-</div></div>
  <div class="card wide">
    <div class="label">Tasks ended per second, last 5 minutes
      (peak <span id="peak">0</span>/s)</div>
    <canvas id="chart" width="1000" height="220"></canvas>
  </div>
  <div class="card wide counters">
    <span>accepted <b id="c-accepted">0</b></span>
    <span>duplicate <b id="c-duplicate">0</b></span>
    <span>refused (queue full) <b id="c-refused">0</b></span>
    <span>done <b id="c-done">0</b></span>
    <span>failed <b id="c-failed">0</b></span>
    <span>cancelled <b id="c-cancelled">0</b></span>
    <span>queue size <b id="c-queue">0</b></span>
    <span>state kept <b id="c-store">-</b></span>
  </div>
  <div class="card half"><div class="label">Running tasks</div><ul id="running-list"></ul></div>
  <div class="card half"><div class="label">Pending tasks (queue order)</div>
    <ul id="pending-list"></ul></div>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const fmt = (n) => n.toLocaleString("en-US");
let history = [];

// Behind --token the page is opened as /#token=TOKEN: the fragment never
// leaves the browser, and every request here carries it.
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const auth = token ? {Authorization: "Bearer " + token} : {};

async function getJSON(path) {
  const r = await fetch(path, {cache: "no-store", headers: auth});
  if (r.status === 401) throw new Error("needs-token");
  if (!r.ok && r.status !== 503) throw new Error(path + ": " + r.status);
  return r.json();
}

function fillList(ul, items) {
  ul.replaceChildren(...items.slice(0, 50).map((t) => {
    const li = document.createElement("li");
    const a = document.createElement("span"), b = document.createElement("span");
    a.textContent = t.name;
    b.textContent = t.handler ? t.handler + "()" : t.duration + " ms";
    li.append(a, b);
    return li;
  }));
  if (items.length > 50) {
    const li = document.createElement("li");
    li.textContent = "... and " + fmt(items.length - 50) + " more";
    ul.append(li);
  }
}

function drawChart() {
  const c = $("chart"), ratio = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = c.clientHeight;
  if (c.width !== Math.round(w * ratio)) { c.width = Math.round(w * ratio);
                                           c.height = Math.round(h * ratio); }
  const g = c.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 44, bottom = 20, top = 8, plotW = w - left - 8, plotH = h - top - bottom;
  const peak = Math.max(1, ...history);
  const step = Math.pow(10, Math.floor(Math.log10(peak)));
  const yMax = Math.ceil(peak / step) * step;
  g.font = "11px system-ui, sans-serif"; g.fillStyle = "#6b7385";
  g.strokeStyle = "#e2e5ea"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    g.beginPath(); g.moveTo(left, y + 0.5); g.lineTo(left + plotW, y + 0.5); g.stroke();
    g.textAlign = "right"; g.fillText(fmt(Math.round((yMax * i) / 4)), left - 6, y + 4);
  }
  const n = history.length;
  for (const m of [5, 4, 3, 2, 1, 0]) {
    const x = left + plotW * (1 - (m * 60) / Math.max(n, 1));
    g.textAlign = m === 0 ? "right" : "center";
    if (x >= left) g.fillText(m ? "-" + m + " min" : "now", x, h - 4);
  }
  if (!n) return;
  const barW = plotW / n;
  g.fillStyle = "#2f6fdb";
  history.forEach((v, i) => {
    if (!v) return;
    const bh = (plotH * v) / yMax;
    g.fillRect(left + i * barW, top + plotH - bh, Math.max(1, barW - 0.5), bh);
  });
}

async function pollStats() {
  try {
    const s = await getJSON("/stats?history=300");
    const t = s.tasks;
    $("running").textContent = fmt(t.running);
    $("pending").textContent = fmt(t.pending);
    $("workers").textContent = fmt(s.executor.workers) + " / " + fmt(s.pool_size);
    for (const k of ["accepted", "duplicate", "refused", "done", "failed", "cancelled"])
      $("c-" + k).textContent = fmt(t[k]);
    $("c-queue").textContent = fmt(s.queue_size);
    $("c-store").textContent = s.journal
      ? "in the journal " + s.journal.path + " (" + fmt(s.journal.recovered) +
        " run again at start, " + fmt(t.pending + t.running) + " unfinished)"
      : "in memory only (lost when the process ends)";
    history = s.throughput.ended;
    const last = history.slice(-11, -1);
    $("rate").textContent = fmt(Math.round(last.reduce((a, b) => a + b, 0) / 10));
    $("peak").textContent = fmt(Math.max(0, ...history));
    $("state").textContent = s.state; $("state").className = s.state;
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    $("dash").dataset.live = "1";
    drawChart();
  } catch (e) {
    const locked = e.message === "needs-token";
    $("state").textContent = locked ? "token needed: open /#token=TOKEN" : "offline";
    $("state").className = "offline";
  }
}

async function pollLists() {
  try {
    const [running, pending] = await Promise.all([getJSON("/tasks/running"),
                                                  getJSON("/tasks/pending")]);
    fillList($("running-list"), running);
    fillList($("pending-list"), pending);
  } catch (e) { /* pollStats shows the outage */ }
}

pollStats(); pollLists();
setInterval(pollStats, 1000);
setInterval(pollLists, 2000);
window.addEventListener("resize", drawChart);
</script>
</body>
</html>
"""
