// openvasa live page: pick a portrait and a voice, stream it to the server over a WebSocket,
// show the frames that come back in time with their sound, or make an MP4 to download.
"use strict";

const $ = (id) => document.getElementById(id);
const HEADER_BYTES = 24; // b"OVF1", uint32 index, float64 time_s, uint32 JPEG bytes, uint32 samples
const CHUNK_SAMPLES = 640; // 40 ms at 16 kHz
const SEND_LEAD_S = 0.3; // how far a file's audio is sent ahead of real time
const PLAYOUT_DELAY_S = 0.12; // frames are shown this long after the first one arrives

const page = {
  portraitId: "astronaut",
  audioFile: null,
  recorded: null, // Blob of the last microphone session, for "Make MP4"
  useMic: false,
  live: null, // the running live session
};

// --- messages and controls -------------------------------------------------------------------
function say(text, isError = false) {
  const el = $("message");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function controls() {
  return {
    gaze: [Number($("gaze-yaw").value), Number($("gaze-pitch").value)],
    head_distance: Number($("head-distance").value),
    emotion: $("emotion").value,
    emotion_strength: Number($("emotion-strength").value),
  };
}

const labels = [
  ["gaze-yaw", (v) => `${v}°`],
  ["gaze-pitch", (v) => `${v}°`],
  ["head-distance", (v) => Number(v).toFixed(2)],
  ["emotion-strength", (v) => Number(v).toFixed(2)],
];
let controlTimer = null;
function controlsChanged() {
  for (const [id, format] of labels) $(`${id}-value`).textContent = format($(id).value);
  const live = page.live;
  if (!live || !live.ready || controlTimer) return;
  // At most ten control messages a second while a slider moves.
  controlTimer = setTimeout(() => {
    controlTimer = null;
    if (page.live && page.live.ready) send(page.live, { type: "controls", ...controls() });
  }, 100);
}
for (const id of ["gaze-yaw", "gaze-pitch", "head-distance", "emotion", "emotion-strength"]) {
  $(id).addEventListener("input", controlsChanged);
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

// --- portrait ----------------------------------------------------------------------------------
function selectPortrait(id) {
  page.portraitId = id;
  $("sample-astronaut").classList.toggle("selected", id === "astronaut");
  $("portrait-upload").classList.toggle("selected", id !== "astronaut");
}
$("sample-astronaut").addEventListener("click", () => selectPortrait("astronaut"));

$("portrait-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  $("portrait-label").textContent = "Analysing…";
  const form = new FormData();
  form.append("file", file);
  const response = await fetch("/api/portraits", { method: "POST", body: form });
  if (!response.ok) {
    $("portrait-label").textContent = "Upload a portrait…";
    say(await errorText(response), true);
    return;
  }
  const body = await response.json();
  const preview = $("portrait-preview");
  preview.src = body.preview;
  preview.hidden = false;
  $("portrait-label").textContent = file.name;
  selectPortrait(body.id);
  say(body.warnings.length ? body.warnings.join(" ") : "Portrait ready.");
});

// --- voice -------------------------------------------------------------------------------------
$("audio-file").addEventListener("change", (event) => {
  page.audioFile = event.target.files[0] || null;
  page.useMic = false;
  page.recorded = null;
  $("record").classList.remove("on");
  $("audio-label").textContent = page.audioFile ? page.audioFile.name : "Choose an audio file…";
  $("play-sound").checked = true;
});

$("record").addEventListener("click", () => {
  page.useMic = !page.useMic;
  $("record").classList.toggle("on", page.useMic);
  // Hearing one's own voice back, late, is confusing: the sound is off with the microphone.
  $("play-sound").checked = !page.useMic;
  say(page.useMic ? "The microphone will be used when you start." : "");
});

async function decodeFile(file) {
  // Decoding in a 16 kHz context resamples to the rate the server works at.
  const context = new OfflineAudioContext(1, 1, 16000);
  const buffer = await context.decodeAudioData(await file.arrayBuffer());
  const mono = new Float32Array(buffer.length);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const channel = buffer.getChannelData(c);
    for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / buffer.numberOfChannels;
  }
  return mono;
}

function toPcm16(samples) {
  const pcm = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    pcm[i] = s < 0 ? s * 32768 : s * 32767;
  }
  return pcm.buffer;
}

// --- live session -----------------------------------------------------------------------------
function send(live, message) {
  if (live.socket.readyState === WebSocket.OPEN) live.socket.send(JSON.stringify(message));
}

function setState(text) {
  $("state").textContent = text;
}

async function startLive() {
  if (page.live) return;
  if (!page.audioFile && !page.useMic) {
    say("Choose an audio file or the microphone first.", true);
    return;
  }
  say("");
  const audio = new AudioContext();
  const live = {
    audio,
    socket: null,
    ready: false,
    frames: [],
    shown: 0,
    received: 0,
    base: null,
    firstSentAt: null,
    arrivals: [],
    stopped: false,
    mic: null,
    recorder: null,
    pump: null,
  };
  page.live = live;
  $("start").disabled = true;
  $("stop").disabled = false;
  setState("starting");

  let samples = null;
  let sampleRate = 16000;
  try {
    if (page.useMic) {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
      });
      await audio.audioWorklet.addModule("/static/capture-worklet.js");
      const source = audio.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(audio, "capture");
      source.connect(node);
      live.mic = { stream, source, node, pending: [] };
      sampleRate = audio.sampleRate;
      if (window.MediaRecorder) {
        const chunks = [];
        live.recorder = new MediaRecorder(stream);
        live.recorder.ondataavailable = (e) => chunks.push(e.data);
        live.recorder.onstop = () => {
          page.recorded = new Blob(chunks, { type: live.recorder.mimeType || "audio/webm" });
        };
        live.recorder.start();
      }
    } else {
      samples = await decodeFile(page.audioFile);
    }
  } catch (error) {
    stopLive(`Cannot use that audio: ${error.message || error}`);
    return;
  }

  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/stream`);
  socket.binaryType = "arraybuffer";
  live.socket = socket;
  socket.onopen = () => {
    send(live, {
      type: "start",
      portrait: page.portraitId,
      seed: Number($("seed").value) || 0,
      sample_rate: sampleRate,
      ...controls(),
    });
  };
  socket.onmessage = (event) => {
    if (typeof event.data !== "string") {
      onFrame(live, event.data);
      return;
    }
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      live.ready = true;
      setState("live");
      if (message.warnings && message.warnings.length) say(message.warnings.join(" "));
      if (samples) pumpFile(live, samples);
      else pumpMic(live);
    } else if (message.type === "end") {
      setState(`ended · ${message.frames} frames`);
      finish(live);
    } else if (message.type === "error") {
      say(message.message, true);
      if (message.fatal !== false) finish(live);
    }
  };
  socket.onclose = () => finish(live);
  socket.onerror = () => say("The connection to the server failed.", true);
  requestAnimationFrame(() => draw(live));
}

function pumpFile(live, samples) {
  // Send at the pace of real time, a little ahead, as a live source would.
  const start = performance.now();
  let sent = 0;
  live.pump = setInterval(() => {
    if (live.stopped) return;
    const due = (performance.now() - start) / 1000 + SEND_LEAD_S;
    while (sent < samples.length && sent / 16000 < due) {
      const chunk = samples.subarray(sent, sent + CHUNK_SAMPLES);
      if (live.firstSentAt === null) live.firstSentAt = performance.now();
      live.socket.send(toPcm16(chunk));
      sent += chunk.length;
    }
    if (sent >= samples.length) {
      clearInterval(live.pump);
      live.pump = null;
      send(live, { type: "end" });
    }
  }, 20);
}

function pumpMic(live) {
  const block = Math.round(live.audio.sampleRate * 0.04);
  let pending = new Float32Array(0);
  live.mic.node.port.onmessage = (event) => {
    if (live.stopped) return;
    const joined = new Float32Array(pending.length + event.data.length);
    joined.set(pending);
    joined.set(event.data, pending.length);
    let offset = 0;
    while (joined.length - offset >= block) {
      if (live.firstSentAt === null) live.firstSentAt = performance.now();
      live.socket.send(toPcm16(joined.subarray(offset, offset + block)));
      offset += block;
    }
    pending = joined.slice(offset);
  };
}

async function onFrame(live, buffer) {
  const view = new DataView(buffer);
  const magic = String.fromCharCode(...new Uint8Array(buffer, 0, 4));
  if (magic !== "OVF1") return;
  const index = view.getUint32(4, true);
  const time = view.getFloat64(8, true);
  const jpegBytes = view.getUint32(16, true);
  const nSamples = view.getUint32(20, true);
  const arrived = performance.now();
  live.received += 1;
  live.arrivals.push(arrived);
  $("frames").textContent = String(live.received);
  if (live.received === 1 && live.firstSentAt !== null) {
    $("latency").textContent = `${Math.round(arrived - live.firstSentAt)} ms`;
  }
  const now = clock(live);
  if (live.base === null || time + live.base < now - 0.3) {
    // First frame, or the stream fell behind: show frames from now on, a little later.
    live.base = now + PLAYOUT_DELAY_S - time;
  }
  if ($("play-sound").checked && nSamples > 0) {
    const pcm = new Int16Array(buffer.slice(HEADER_BYTES + jpegBytes));
    const clip = live.audio.createBuffer(1, nSamples, 16000);
    const channel = clip.getChannelData(0);
    for (let i = 0; i < nSamples; i++) channel[i] = pcm[i] / 32768;
    const source = live.audio.createBufferSource();
    source.buffer = clip;
    source.connect(live.audio.destination);
    const at = live.base + time;
    if (live.audioClock && at > live.audio.currentTime) source.start(at);
  }
  const jpeg = new Blob([new Uint8Array(buffer, HEADER_BYTES, jpegBytes)], { type: "image/jpeg" });
  const bitmap = await createImageBitmap(jpeg);
  live.frames.push({ index, time, bitmap });
}

function clock(live) {
  // The sound card's clock when it runs (sound and picture then share it), else the page's.
  if (live.audioClock === undefined) {
    live.audioClock = live.audio.state === "running" && live.audio.currentTime > 0;
  }
  return live.audioClock ? live.audio.currentTime : performance.now() / 1000;
}

function draw(live) {
  if (page.live !== live && live.stopped) return;
  const canvas = $("view");
  const context = canvas.getContext("2d");
  if (live.base !== null) {
    const now = clock(live) - live.base;
    let latest = null;
    while (live.frames.length && live.frames[0].time <= now) {
      if (latest) latest.bitmap.close();
      latest = live.frames.shift();
    }
    if (latest) {
      context.drawImage(latest.bitmap, 0, 0, canvas.width, canvas.height);
      latest.bitmap.close();
      live.shown += 1;
    }
  }
  const cutoff = performance.now() - 1000;
  while (live.arrivals.length && live.arrivals[0] < cutoff) live.arrivals.shift();
  $("rate").textContent = live.received ? `${live.arrivals.length} fps` : "–";
  if (!live.stopped || live.frames.length) requestAnimationFrame(() => draw(live));
}

function finish(live) {
  if (live.stopped) return;
  live.stopped = true;
  if (live.pump) clearInterval(live.pump);
  if (live.mic) {
    live.mic.node.port.onmessage = null;
    live.mic.stream.getTracks().forEach((track) => track.stop());
  }
  if (live.recorder && live.recorder.state !== "inactive") live.recorder.stop();
  if (live.socket && live.socket.readyState === WebSocket.OPEN) live.socket.close();
  if ($("state").textContent === "live" || $("state").textContent === "starting") {
    setState("stopped");
  }
  if (page.live === live) page.live = null;
  $("start").disabled = false;
  $("stop").disabled = true;
}

function stopLive(reason) {
  const live = page.live;
  if (!live) return;
  if (reason) say(reason, true);
  if (live.ready && !live.stopped) {
    // Ask for the remaining frames; the server ends the stream after them.
    live.stopped = true;
    if (live.pump) clearInterval(live.pump);
    if (live.mic) live.mic.node.port.onmessage = null;
    live.stopped = false;
    send(live, { type: "end" });
    setState("finishing");
    $("stop").disabled = true;
  } else {
    finish(live);
  }
}

$("start").addEventListener("click", startLive);
$("stop").addEventListener("click", () => stopLive());

// --- MP4 job ----------------------------------------------------------------------------------
$("make-video").addEventListener("click", async () => {
  const audio = page.useMic ? page.recorded : page.audioFile;
  if (!audio) {
    say(
      page.useMic ? "Record with the microphone first (Start, then Stop)." : "Choose an audio file first.",
      true,
    );
    return;
  }
  const c = controls();
  const form = new FormData();
  form.append("audio", audio, audio.name || "recording.webm");
  form.append("portrait_id", page.portraitId);
  form.append("gaze_yaw", c.gaze[0]);
  form.append("gaze_pitch", c.gaze[1]);
  form.append("head_distance", c.head_distance);
  form.append("emotion", c.emotion);
  form.append("emotion_strength", c.emotion_strength);
  form.append("seed", Number($("seed").value) || 0);
  $("job").hidden = false;
  $("download").hidden = true;
  $("job-progress").value = 0;
  $("job-status").textContent = "uploading…";
  const response = await fetch("/api/jobs", { method: "POST", body: form });
  if (!response.ok) {
    $("job-status").textContent = "";
    say(await errorText(response), true);
    return;
  }
  const job = await response.json();
  const poll = async () => {
    const reply = await fetch(`/api/jobs/${job.id}`);
    if (!reply.ok) {
      say(await errorText(reply), true);
      return;
    }
    const status = await reply.json();
    $("job-progress").value = status.progress;
    $("job-status").textContent = `${status.status} · ${Math.round(100 * status.progress)}%`;
    if (status.status === "done") {
      const link = $("download");
      link.href = status.video;
      link.hidden = false;
    } else if (status.status === "failed") {
      say(status.error, true);
    } else {
      setTimeout(poll, 500);
    }
  };
  poll();
});
