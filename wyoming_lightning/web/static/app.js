// The status page: polls api/status and draws it; runs the microphone test over ws/mic.
// Every URL is relative, so the page works at "/" and under Home Assistant's ingress prefix.
"use strict";

const TARGET_RATE = 16000;
const MESSAGE_SAMPLES = 2048; // 4096 bytes of 16-bit PCM per message
const POLL_MS = 5000;
const $ = (id) => document.getElementById(id);

function fmt(n, digits) { return Number(n).toFixed(digits); }

function el(tag, attrs, text) {
  const ns = "http://www.w3.org/2000/svg";
  const node = document.createElementNS(ns, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Bars of audio minutes sent per day, today last, with the cost above each used day.
function drawChart(days) {
  const width = 420, height = 170, left = 30, bottom = 26, top = 18;
  const max = Math.max(0.01, ...days.map((d) => d.sent_min)) * 1.15;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, id: "chart-svg" });
  const step = (width - left - 14) / days.length;
  const scale = (height - bottom - top) / max;
  svg.appendChild(el("text", { x: 0, y: top, class: "axis" }, fmt(max, max < 1 ? 2 : 1)));
  svg.appendChild(el("text", { x: 0, y: height - bottom, class: "axis" }, "0"));
  days.forEach((d, i) => {
    const h = d.sent_min * scale;
    const x = left + i * step + 2;
    const today = i === days.length - 1;
    const bar = el("rect", {
      x, y: height - bottom - h, width: step - 4, height: Math.max(h, d.requests ? 1 : 0),
      class: today ? "bar-rect today" : "bar-rect",
      "data-day": d.day, "data-requests": d.requests, "data-sent-min": d.sent_min,
    });
    bar.appendChild(el("title", {}, `${d.day}: ${d.requests} requests, ${fmt(d.sent_min, 2)} min sent, ` +
      `$${fmt(d.cost_usd, 4)}, ${d.errors} errors`));
    svg.appendChild(bar);
    if (d.requests) {
      svg.appendChild(el("text", { x: x + step / 2 - 2, y: height - bottom - h - 3, "text-anchor": "middle" },
        `$${fmt(d.cost_usd, d.cost_usd < 0.01 ? 4 : 2)}`));
    }
    if (today || i % 2 === (days.length - 1) % 2) {
      svg.appendChild(el("text", { x: x + step / 2 - 2, y: height - 12, "text-anchor": "middle" },
        d.day.slice(5)));
    }
  });
  const box = $("chart");
  box.replaceChildren(svg);
}

function drawLimits(limits) {
  const fill = $("limit-fill");
  const parts = [];
  if (limits.daily_audio_min === null) {
    fill.style.width = "0";
    parts.push(`${fmt(limits.sent_today_min, 2)} min sent today; no daily limit.`);
  } else {
    const pct = Math.round(limits.used_fraction * 100);
    fill.style.width = `${pct}%`;
    fill.className = pct >= 100 ? "full" : pct >= 80 ? "high" : "";
    parts.push(`${fmt(limits.sent_today_min, 2)} of ${limits.daily_audio_min} min sent today (${pct}%).`);
  }
  parts.push(`At most ${limits.requests_per_client} requests at once per client, ${limits.connections} connections.`);
  parts.push(limits.allow ? `Allowed networks: ${limits.allow.join(", ")}.` : "Every address may connect (no allow-list).");
  $("limits").textContent = parts.join(" ");
}

function drawService(s) {
  const rows = [
    ["service", s.url], ["protocol", s.dialect], ["region", s.region || "by language (default)"],
    ["API key", s.key], ["warm sockets", s.warm_sockets], ["connections open", s.connections_open],
    ["VAD", s.vad], ["fallback", s.fallback],
    ["usage file", s.usage_file + (s.usage_file_ok ? "" : " (not writable: counting in memory)")],
    ["last error", s.last_error ? `${s.last_error.at} ${s.last_error.code}: ${s.last_error.text}` : "none"],
  ];
  const dl = $("service");
  dl.replaceChildren();
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = String(v);
    dl.append(dt, dd);
  }
}

function drawRecent(recent, showText) {
  const body = $("recent").querySelector("tbody");
  body.replaceChildren();
  document.querySelectorAll(".text-col").forEach((c) => { c.hidden = !showText; });
  for (const r of recent) {
    const tr = document.createElement("tr");
    const outcome = r.outcome + (r.code ? ` (${r.code})` : "") + (r.fallback ? `, local: ${r.fallback}` : "");
    const cells = [r.at.replace("T", " "), r.client, r.language || "-", fmt(r.received_s, 1),
      fmt(r.sent_s, 1), r.wait_s === null ? "-" : fmt(r.wait_s, 2), outcome];
    if (showText) cells.push(r.text === null ? "" : r.text);
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      td.textContent = String(c);
      if (i === 7) td.className = "text-col";
      tr.appendChild(td);
    });
    body.appendChild(tr);
  }
  if (!recent.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td"); td.colSpan = 8; td.textContent = "none yet";
    tr.appendChild(td); body.appendChild(tr);
  }
}

let languages = [], language = "en";

async function refresh() {
  try {
    const response = await fetch("api/status", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
    const s = await response.json();
    const t = s.today;
    $("today").textContent = `Today: ${t.requests} requests, ${fmt(t.sent_min, 2)} min sent ` +
      `(${fmt(t.received_min, 2)} received), about $${fmt(t.cost_usd, 4)}, ${t.errors} errors`;
    drawChart(s.days);
    drawLimits(s.limits);
    drawService(s.service);
    drawRecent(s.recent, s.show_text);
    languages = s.languages; language = s.language;
    if (!s.mic) { $("mic-start").disabled = true; $("mic-state").textContent = "unavailable (stdio server)"; }
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = "1";
  } catch (err) {
    $("updated").textContent = `cannot load the status: ${err.message}`;
  }
}

// ---------------------------------------------------------------- the microphone test

let test = null;

class Downsampler {
  constructor(fromRate) { this.ratio = fromRate / TARGET_RATE; this.pos = 0; this.prev = 0; this.out = []; }
  // Linear interpolation from the context's rate to 16 kHz; yields 4096-byte messages.
  push(samples) {
    const messages = [];
    let pos = this.pos;
    while (pos < samples.length) {
      const i = Math.floor(pos), frac = pos - i;
      const a = i === 0 ? this.prev : samples[i - 1], b = samples[i];
      const v = Math.max(-1, Math.min(1, a + (b - a) * frac));
      this.out.push(v < 0 ? v * 0x8000 : v * 0x7fff);
      if (this.out.length === MESSAGE_SAMPLES) messages.push(this.take());
      pos += this.ratio;
    }
    this.pos = pos - samples.length;
    this.prev = samples[samples.length - 1];
    return messages;
  }
  take() { const m = Int16Array.from(this.out); this.out = []; return m.buffer; }
}

function micState(text) { $("mic-state").textContent = text; }

async function startTest() {
  $("mic-error").textContent = ""; $("mic-partial").textContent = ""; $("mic-final").textContent = "";
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    $("mic-error").textContent = "The browser offers no microphone here: open the page over https " +
      "(Home Assistant with https) or on localhost.";
    return;
  }
  $("mic-start").disabled = true;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    const ctx = new AudioContext();
    await ctx.audioWorklet.addModule("mic-worklet.js");
    const source = ctx.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(ctx, "capture");
    const mute = ctx.createGain(); mute.gain.value = 0;
    source.connect(node); node.connect(mute); mute.connect(ctx.destination);
    const url = new URL("ws/mic", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    const down = new Downsampler(ctx.sampleRate);
    test = { stream, ctx, ws, down, open: false };
    ws.onopen = () => {
      test.open = true;
      ws.send(JSON.stringify({ type: "start", language }));
      micState("listening…"); $("mic-stop").disabled = false;
    };
    node.port.onmessage = (e) => {
      if (!test || !test.open || test.ended) return;
      for (const m of down.push(e.data)) ws.send(m);
    };
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.type === "partial") $("mic-partial").textContent = msg.text;
      else if (msg.type === "final") { $("mic-final").textContent = msg.text || "(no speech heard)"; micState("done"); finish(); refresh(); }
      else if (msg.type === "error") { $("mic-error").textContent = msg.text + (msg.code ? ` (${msg.code})` : ""); micState("failed"); finish(); }
    };
    ws.onclose = (e) => {
      if (test && test.ws === ws) {
        if (!$("mic-final").textContent && !$("mic-error").textContent) {
          $("mic-error").textContent = `the connection closed (${e.code}${e.reason ? ": " + e.reason : ""})`;
        }
        finish();
      }
    };
  } catch (err) {
    $("mic-error").textContent = `cannot start the microphone: ${err.message || err}`;
    finish();
  }
}

function stopTest() {
  if (!test || test.ended) return;
  test.ended = true;
  if (test.open) {
    if (test.down.out.length) test.ws.send(test.down.take());
    test.ws.send(JSON.stringify({ type: "end" }));
  }
  test.stream.getTracks().forEach((t) => t.stop());
  micState("waiting for the final text…");
  $("mic-stop").disabled = true;
}

function finish() {
  if (!test) { $("mic-start").disabled = false; return; }
  const t = test; test = null;
  t.stream.getTracks().forEach((tr) => tr.stop());
  t.ctx.close().catch(() => {});
  if (t.ws.readyState <= 1) t.ws.close();
  $("mic-start").disabled = false; $("mic-stop").disabled = true;
}

$("mic-start").addEventListener("click", startTest);
$("mic-stop").addEventListener("click", stopTest);
refresh();
setInterval(refresh, POLL_MS);
