// quickturn's browser page: a Realtime API client (GA events) in plain JavaScript.
// Microphone -> worklet.js (24 kHz PCM16) -> input_audio_buffer.append; response.output_audio.delta ->
// Web Audio playback; the transcript and each turn's voice-to-voice latency are shown as they come.
"use strict";

const RATE = 24000; // the API's audio/pcm rate, both ways
const $ = (id) => document.getElementById(id);

let config = { realtime_path: "/v1/realtime", api_key_required: false };
let ws = null;
let ctx = null; // AudioContext (capture and playback)
let stream = null; // the microphone
let capture = null; // AudioWorkletNode
let running = false;
let serverMode = "vad"; // what the server's session is set to: "vad" (server VAD) or "ptt" (manual)
let held = false; // push-to-talk button down
let releasing = false; // released: waiting for the worklet's last partial chunk
let sentThisPress = 0; // bytes appended during this press
let releasedAt = null; // push to talk: when the last press was committed (performance.now())
let responseId = null; // the server's response in progress
let createAfterDone = false; // released while an interrupted reply was still finishing
let pendingTruncate = null; // {itemId, ms}: sent once the interrupted response is done
const turns = new Map(); // user item id -> its element in the log
const responseTurn = new Map(); // response id -> the turn element it answers
let lastTurn = null; // the turn the next response answers
// Reply playback: the item playing, its scheduled buffers, and how much audio arrived for it.
const play = { itemId: null, stopped: null, next: 0, parts: [], receivedMs: 0, waitMs: null };

// -- page ------------------------------------------------------------------------------------------------
function wantedMode() {
  return document.querySelector("input[name=mode]:checked").value;
}

function showMode() {
  const ptt = wantedMode() === "ptt";
  $("talk").hidden = !ptt;
  $("talk").disabled = !running || serverMode !== "ptt";
  $("hint").textContent = ptt
    ? "Push to talk: hold the button (or the space bar) while you speak, release to get the reply."
    : "Open mic: just speak; talk over the agent to interrupt it.";
}

function setStatus(text) {
  $("status").textContent = text;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function turnFor(itemId) {
  let el = turns.get(itemId);
  if (!el) {
    el = document.createElement("div");
    el.className = "turn";
    el.innerHTML =
      '<div class="user"><span class="who">you</span><span class="text"></span><span class="tentative"></span></div>' +
      '<div class="agent" hidden><span class="who">agent</span><span class="text"></span></div>' +
      '<div class="latency" hidden></div>';
    turns.set(itemId, el);
    $("log").append(el);
    el.scrollIntoView({ block: "end" });
  }
  return el;
}

function setUserText(el, final, tentative) {
  el.querySelector(".user .text").textContent = final;
  el.querySelector(".user .tentative").textContent = tentative ? " " + tentative : "";
}

// -- connection ------------------------------------------------------------------------------------------
function send(event) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(event));
}

function connect() {
  return new Promise((resolve, reject) => {
    const key = $("key").value.trim();
    if (config.api_key_required && !key) {
      reject(new Error("This server needs its API key: enter it above."));
      return;
    }
    // Browsers cannot set an Authorization header: the key rides as a second subprotocol.
    const protocols = key ? ["realtime", "openai-insecure-api-key." + key] : ["realtime"];
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + config.realtime_path;
    let ready = false;
    try {
      ws = new WebSocket(url, protocols);
    } catch (err) {
      reject(new Error("The API key has characters a browser cannot send (" + err.message + ")."));
      return;
    }
    ws.onmessage = (e) => {
      const ev = JSON.parse(e.data);
      onEvent(ev);
      if (ev.type === "session.created" && !ready) {
        ready = true;
        resolve();
      }
    };
    ws.onclose = (e) => {
      if (!ready) {
        const why = config.api_key_required ? " Is the API key right?" : "";
        reject(new Error("Could not connect to " + url + "." + why));
      } else if (running) {
        stop();
        showError("The connection closed (" + e.code + (e.reason ? ": " + e.reason : "") + ").");
      }
    };
  });
}

function applyMode() {
  const mode = wantedMode();
  showMode();
  if (!running || mode === serverMode) return;
  const td = mode === "vad" ? { type: "server_vad" } : null;
  send({ type: "session.update", session: { type: "realtime", audio: { input: { turn_detection: td } } } });
}

// -- server events ---------------------------------------------------------------------------------------
function onEvent(ev) {
  switch (ev.type) {
    case "session.created":
    case "session.updated":
      serverMode = ev.session.audio.input.turn_detection ? "vad" : "ptt";
      if (running) setStatus(serverMode === "vad" ? "open mic: listening" : "push to talk");
      showMode();
      break;
    case "input_audio_buffer.speech_started":
      stopPlayback(); // barge-in: the user talks over the reply
      lastTurn = turnFor(ev.item_id);
      setStatus("hearing you…");
      break;
    case "quickturn.transcript.partial":
      setUserText(turnFor(ev.item_id), ev.committed, ev.tentative);
      break;
    case "conversation.item.input_audio_transcription.completed":
      setUserText(turnFor(ev.item_id), ev.transcript || "(nothing recognised)", "");
      break;
    case "conversation.item.added":
      if (ev.item.role === "user") lastTurn = turnFor(ev.item.id);
      break;
    case "conversation.item.deleted": {
      // The user went on speaking after the turn was committed: it continues as a new item.
      const el = turns.get(ev.item_id);
      if (el) {
        el.remove();
        turns.delete(ev.item_id);
      }
      break;
    }
    case "response.created":
      responseId = ev.response.id;
      if (lastTurn) responseTurn.set(responseId, lastTurn);
      play.waitMs = releasedAt; // push to talk: measure release -> first reply audio
      releasedAt = null;
      setStatus("replying…");
      break;
    case "response.output_audio.delta": {
      const startsInMs = playDelta(ev);
      const el = responseTurn.get(ev.response_id);
      if (el && play.waitMs !== null && startsInMs !== null) {
        el.dataset.releaseMs = String(performance.now() + startsInMs - play.waitMs);
        play.waitMs = null;
      }
      break;
    }
    case "response.output_audio_transcript.delta": {
      const el = responseTurn.get(ev.response_id);
      if (el) {
        el.querySelector(".agent").hidden = false;
        el.querySelector(".agent .text").textContent += ev.delta;
      }
      break;
    }
    case "response.done":
      onResponseDone(ev.response);
      break;
    case "quickturn.latency": {
      // Server VAD: the server's voice-to-voice time (end of speech -> first reply sample). Push to
      // talk has no detected end of speech: the page's own release -> reply audio time instead.
      const el = turns.get(ev.item_id) || responseTurn.get(ev.response_id);
      if (!el) break;
      const lat = el.querySelector(".latency");
      let ms = null;
      if (typeof ev.v2v_ms === "number") {
        ms = ev.v2v_ms;
        lat.textContent = "voice-to-voice " + Math.round(ms) + " ms";
      } else if (el.dataset.releaseMs) {
        ms = Number(el.dataset.releaseMs);
        lat.textContent = "release to reply " + Math.round(ms) + " ms (measured here)";
      }
      if (ms !== null) {
        lat.dataset.ms = String(ms);
        lat.hidden = false;
      }
      break;
    }
    case "error":
      // A reply merged into the user's continued turn is deleted before our truncate of it arrives.
      if (ev.error.code === "item_truncate_invalid_item_id") break;
      showError(ev.error.message);
      document.querySelector("input[name=mode][value=" + serverMode + "]").checked = true;
      showMode();
      break;
  }
}

function onResponseDone(response) {
  const el = responseTurn.get(response.id);
  if (el && response.status !== "completed") el.querySelector(".agent .text").classList.add("interrupted");
  responseTurn.delete(response.id);
  responseId = null;
  sendTruncate();
  if (createAfterDone) {
    createAfterDone = false;
    send({ type: "response.create" });
  }
  if (running) setStatus(serverMode === "vad" ? "open mic: listening" : "push to talk");
}

function sendTruncate() {
  // Tell the server how much of the interrupted reply was heard, so its history holds only that.
  if (!pendingTruncate) return;
  const { itemId, ms } = pendingTruncate;
  pendingTruncate = null;
  send({ type: "conversation.item.truncate", item_id: itemId, content_index: 0, audio_end_ms: ms });
}

// -- playback --------------------------------------------------------------------------------------------
function fromBase64(s) {
  const bin = atob(s);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Int16Array(bytes.buffer, 0, bytes.length >> 1); // little-endian, as every browser's CPU
}

function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

function playDelta(ev) {
  // Schedules one delta after the ones before it; returns in how many ms it starts playing (or null).
  if (!ctx || ev.item_id === play.stopped) return null; // a late delta of a reply the user interrupted
  if (ev.item_id !== play.itemId) Object.assign(play, { itemId: ev.item_id, next: 0, parts: [], receivedMs: 0 });
  const pcm = fromBase64(ev.delta);
  const buf = ctx.createBuffer(1, pcm.length, RATE); // the context resamples it to its own rate
  const ch = buf.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
  const src = ctx.createBufferSource();
  src.buffer = buf;
  src.connect(ctx.destination);
  const start = Math.max(play.next, ctx.currentTime + 0.05); // a little lead against jitter
  src.start(start);
  play.next = start + buf.duration;
  play.parts.push({ src, start, dur: buf.duration });
  play.receivedMs += (pcm.length * 1000) / RATE;
  return (start - ctx.currentTime) * 1000;
}

function stopPlayback() {
  if (!play.itemId || !ctx) return;
  const now = ctx.currentTime;
  let heard = 0;
  let unplayed = false;
  for (const p of play.parts) {
    heard += Math.max(0, Math.min(p.dur, now - p.start));
    if (p.start + p.dur > now) {
      unplayed = true;
      p.src.stop();
    }
  }
  const itemId = play.itemId;
  Object.assign(play, { itemId: null, stopped: itemId, next: 0, parts: [] });
  if (!unplayed && !responseId) return; // it had finished playing: nothing to take back
  pendingTruncate = { itemId, ms: Math.min(Math.floor(heard * 1000), Math.floor(play.receivedMs)) };
  if (!responseId) sendTruncate(); // else once the server's response.done confirms the cut
}

// -- capture ---------------------------------------------------------------------------------------------
function onCapture(data) {
  // 100 ms chunks of 24 kHz PCM16 as an ArrayBuffer, or {flush, pcm} after a push-to-talk release.
  const pcm = data instanceof ArrayBuffer ? data : data.pcm;
  const pressing = held || releasing;
  if (pcm.byteLength && (serverMode === "vad" || pressing)) {
    send({ type: "input_audio_buffer.append", audio: toBase64(pcm) });
    if (pressing) sentThisPress += pcm.byteLength;
    if (held) {
      const ms = (sentThisPress * 1000) / (2 * RATE);
      $("talk").dataset.sentMs = String(ms);
      $("talk").textContent = "Release to send (" + (ms / 1000).toFixed(1) + " s)";
    }
  }
  if (!(data instanceof ArrayBuffer) && releasing) {
    releasing = false;
    if (!sentThisPress) return;
    send({ type: "input_audio_buffer.commit" });
    releasedAt = performance.now();
    if (responseId) createAfterDone = true; // the interrupted reply is still finishing
    else send({ type: "response.create" });
  }
}

function press() {
  if (!running || serverMode !== "ptt" || held || releasing) return;
  held = true;
  sentThisPress = 0;
  $("talk").dataset.sentMs = "0";
  $("talk").classList.add("held");
  showError("");
  stopPlayback();
  if (responseId) send({ type: "response.cancel" });
  setStatus("recording…");
}

function release() {
  if (!held) return;
  held = false;
  releasing = true;
  $("talk").classList.remove("held");
  $("talk").textContent = "Hold to talk";
  capture.port.postMessage("flush"); // the rest of the audio, then commit + response.create
}

// -- start / stop ----------------------------------------------------------------------------------------
async function start() {
  showError("");
  $("start").disabled = true;
  setStatus("connecting…");
  try {
    if (!window.isSecureContext) {
      throw new Error("Browsers give the microphone only to secure pages: open this one as " +
                      "http://localhost:" + location.port + " or serve it over HTTPS.");
    }
    ctx = new AudioContext();
    await ctx.audioWorklet.addModule("/worklet.js");
    await connect();
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    capture = new AudioWorkletNode(ctx, "capture", { numberOfInputs: 1, numberOfOutputs: 0 });
    capture.port.onmessage = (e) => onCapture(e.data);
    ctx.createMediaStreamSource(stream).connect(capture);
    await ctx.resume();
    running = true;
    $("start").textContent = "Stop";
    applyMode();
    setStatus(serverMode === "vad" ? "open mic: listening" : "push to talk");
  } catch (err) {
    stop();
    showError(err.message || String(err));
  } finally {
    $("start").disabled = false;
  }
}

function stop() {
  running = held = releasing = createAfterDone = false;
  pendingTruncate = responseId = null;
  if (ws) {
    ws.onclose = null;
    ws.close();
    ws = null;
  }
  if (stream) stream.getTracks().forEach((t) => t.stop());
  if (ctx) ctx.close();
  ctx = stream = capture = null;
  Object.assign(play, { itemId: null, stopped: null, next: 0, parts: [], receivedMs: 0 });
  $("start").textContent = "Start";
  $("talk").classList.remove("held");
  $("talk").textContent = "Hold to talk";
  setStatus("not connected");
  showMode();
}

async function init() {
  try {
    const r = await fetch("/config.json");
    if (r.ok) config = await r.json();
  } catch {
    // served some other way: keep the defaults
  }
  $("key-row").hidden = !config.api_key_required;
  $("start").onclick = () => (running ? stop() : start());
  for (const r of document.querySelectorAll("input[name=mode]")) r.onchange = applyMode;
  const talk = $("talk");
  talk.onpointerdown = (e) => {
    talk.setPointerCapture(e.pointerId);
    press();
  };
  talk.onpointerup = talk.onpointercancel = release;
  const typing = () => document.activeElement && document.activeElement.tagName === "INPUT" && document.activeElement.type !== "radio";
  document.addEventListener("keydown", (e) => {
    if (e.code === "Space" && !e.repeat && wantedMode() === "ptt" && !typing()) {
      e.preventDefault();
      press();
    }
  });
  document.addEventListener("keyup", (e) => {
    if (e.code === "Space" && wantedMode() === "ptt" && !typing()) {
      e.preventDefault(); // not also a click on the focused button
      release();
    }
  });
  showMode();
}

init();
