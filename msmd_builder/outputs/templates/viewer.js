"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const heads = DATA.heads;
  const perfs = DATA.performances;
  const pxPerFrame = DATA.px_per_frame;
  const boxes = Array.from(document.querySelectorAll("rect.nh"));
  const boxOf = new Array(heads.id.length);
  boxes.forEach(function (el) { boxOf[Number(el.dataset.i)] = el; });
  // Every box of a measure (two when a line break falls inside it), by measure.
  const measureBoxes = new Map();
  document.querySelectorAll("rect.ms").forEach(function (el) {
    const m = Number(el.dataset.m);
    if (!measureBoxes.has(m)) { measureBoxes.set(m, []); }
    measureBoxes.get(m).push(el);
  });
  const audio = document.getElementById("audio");
  const select = document.getElementById("perf");
  const spec = document.getElementById("spec");
  const specInner = document.getElementById("spec-inner");
  const specImg = document.getElementById("spec-img");
  const marks = document.getElementById("spec-marks");
  const playhead = document.getElementById("playhead");
  const timeLabel = document.getElementById("time");
  const follow = document.getElementById("follow");
  const tip = document.getElementById("tip");
  const note = document.getElementById("note");
  const SVGNS = "http://www.w3.org/2000/svg";

  // Onsets of every drawn notehead: in score seconds and per performance.
  function onsetsByHead(events) {
    const out = new Map();
    events.forEach(function (e) {
      if (e[0] < 0) { return; }
      if (!out.has(e[0])) { out.set(e[0], []); }
      out.get(e[0]).push(e[1]);
    });
    return out;
  }
  const scoreOnsets = onsetsByHead(DATA.score_events);
  const perfOnsets = perfs.map(function (p) { return onsetsByHead(p.events); });

  let current = -1;
  let lit = [];
  let litMeasure = [];
  let nowMeasure = null;
  let lastFollowed = null;

  function fmt(t) { return t.toFixed(2) + " s"; }

  function selectPerformance(k) {
    current = k;
    clearCursor();
    marks.innerHTML = "";
    if (k < 0 || k >= perfs.length) {
      note.textContent = "no performance of this piece was built";
      specInner.style.width = "0px";
      return;
    }
    const p = perfs[k];
    const fps = p.fps;
    const width = p.n_frames * pxPerFrame;
    audio.src = p.audio;
    specImg.src = p.spectrogram;
    specImg.style.width = width + "px";
    specInner.style.width = width + "px";
    marks.setAttribute("width", width);
    marks.setAttribute("height", 138);
    const seen = new Set();
    p.events.forEach(function (e) {
      const x = Math.round(e[1] * fps * pxPerFrame * 10) / 10;
      if (seen.has(x)) { return; }
      seen.add(x);
      [[0, 8], [130, 138]].forEach(function (y) {
        const line = document.createElementNS(SVGNS, "line");
        line.setAttribute("x1", x); line.setAttribute("x2", x);
        line.setAttribute("y1", y[0]); line.setAttribute("y2", y[1]);
        line.setAttribute("stroke", e[0] >= 0 ? "#7CFC00" : "#ff4040");
        line.setAttribute("stroke-width", "1");
        marks.appendChild(line);
      });
    });
    update();
  }

  function clearCursor() {
    lit.forEach(function (el) { el.classList.remove("on"); });
    lit = [];
    litMeasure.forEach(function (el) { el.classList.remove("now"); });
    litMeasure = [];
    nowMeasure = null;
  }

  // The measure occurrence [measure, occurrence, start, end] playing at time t, or null.
  function measureAt(p, t) {
    for (let i = 0; i < p.measures.length; i++) {
      const m = p.measures[i];
      if (m[2] <= t && t < m[3]) { return m; }
    }
    return null;
  }

  function update() {
    const t = audio.currentTime || 0;
    timeLabel.textContent = fmt(t);
    if (current < 0) { return; }
    const p = perfs[current];
    const x = t * p.fps * pxPerFrame;
    playhead.style.left = x + "px";
    const view = spec.clientWidth;
    if (x < spec.scrollLeft + 0.1 * view || x > spec.scrollLeft + 0.7 * view) {
      spec.scrollLeft = Math.max(0, x - 0.3 * view);
    }
    const now = [];
    p.events.forEach(function (e) {
      if (e[0] >= 0 && e[1] <= t && t < e[2] && boxOf[e[0]]) { now.push(boxOf[e[0]]); }
    });
    clearCursor();
    now.forEach(function (el) { el.classList.add("on"); });
    lit = now;
    const m = measureAt(p, t);
    if (m) {
      nowMeasure = [m[0], m[1]];
      litMeasure = measureBoxes.get(m[0]) || [];
      litMeasure.forEach(function (el) { el.classList.add("now"); });
    }
    if (follow.checked) {
      if (now.length) { followTo(now[0]); } else if (litMeasure.length) { followTo(litMeasure[0]); }
    }
  }

  function followTo(el) {
    const k = Number(el.dataset.i);
    const key = el.dataset.i === undefined ? el : heads.book[k] + "/" + heads.system[k];
    if (key === lastFollowed) { return; }
    lastFollowed = key;
    const top = document.getElementById("player").getBoundingClientRect().bottom;
    const r = el.getBoundingClientRect();
    if (r.top < top + 20 || r.bottom > window.innerHeight - 20) {
      window.scrollBy({ top: r.top - top - 0.25 * (window.innerHeight - top) });
    }
  }

  function loop() {
    update();
    if (!audio.paused) { window.requestAnimationFrame(loop); }
  }

  function showTip(el, ev) {
    const k = Number(el.dataset.i);
    const lines = [];
    lines.push("<b>" + heads.name[k] + "</b> (MIDI " + heads.pitch[k] + ")" +
      (heads.tied[k] ? " · tie continuation" : ""));
    lines.push("moment " + heads.moment[k] + " (whole notes) · source line " + heads.line[k] +
      ", char " + heads.char[k] + " · notehead " + heads.id[k]);
    const s = scoreOnsets.get(k);
    lines.push("score: " + (s ? s.map(fmt).join(", ") : "not played"));
    perfs.forEach(function (p, j) {
      const o = perfOnsets[j].get(k);
      lines.push("<span class='perf'>" + escapeHtml(p.label) + ": " +
        (o ? o.map(fmt).join(", ") : "—") + "</span>");
    });
    tip.innerHTML = lines.join("<br>");
    tip.style.display = "block";
    moveTip(ev);
  }

  function moveTip(ev) {
    const w = tip.offsetWidth, h = tip.offsetHeight;
    let x = ev.clientX + 14, y = ev.clientY + 14;
    if (x + w > window.innerWidth) { x = ev.clientX - w - 14; }
    if (y + h > window.innerHeight) { y = ev.clientY - h - 14; }
    tip.style.left = Math.max(0, x) + "px";
    tip.style.top = Math.max(0, y) + "px";
  }

  function escapeHtml(s) {
    return s.replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  boxes.forEach(function (el) {
    el.addEventListener("mouseenter", function (ev) { showTip(el, ev); });
    el.addEventListener("mousemove", moveTip);
    el.addEventListener("mouseleave", function () { tip.style.display = "none"; });
    el.addEventListener("click", function () {
      if (current < 0) { return; }
      const o = perfOnsets[current].get(Number(el.dataset.i));
      if (o) { audio.currentTime = o[0]; }
    });
  });
  spec.addEventListener("click", function (ev) {
    if (current < 0) { return; }
    const rect = specInner.getBoundingClientRect();
    audio.currentTime = (ev.clientX - rect.left) / (perfs[current].fps * pxPerFrame);
  });
  select.addEventListener("change", function () { selectPerformance(Number(select.value)); });
  audio.addEventListener("play", function () { lastFollowed = null; loop(); });
  ["seeked", "timeupdate", "pause", "ended"].forEach(function (name) {
    audio.addEventListener(name, update);
  });
  audio.addEventListener("seeking", function () { lastFollowed = null; });
  audio.addEventListener("error", function () {
    note.textContent = "audio not found: " + (perfs[current] ? perfs[current].audio : "");
  });
  selectPerformance(perfs.length ? 0 : -1);
  // For tests and the console: the notehead ids under the cursor now.
  window.msmdViewer = { select: selectPerformance, update: update, lit: function () {
    return lit.map(function (el) { return heads.id[Number(el.dataset.i)]; });
  }, measure: function () {
    return nowMeasure === null ? null : [nowMeasure[0], nowMeasure[1], litMeasure.length];
  } };
})();
