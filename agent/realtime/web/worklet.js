// Microphone capture, on the audio thread: first channel -> 24 kHz PCM16 mono, posted in 100 ms chunks.
// The context runs at the device's rate (often 48 kHz); `sampleRate` is that rate in this scope.
const OUT_RATE = 24000;
const CHUNK = OUT_RATE / 10;

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE; // input samples per output sample
    // A moving average over about one output period: a cheap low-pass against aliasing.
    this.width = Math.max(1, Math.floor(this.step));
    this.ring = new Float32Array(this.width);
    this.ringAt = 0;
    this.sum = 0;
    this.prev = 0; // the previous (filtered) input sample
    this.pos = 0; // where the next output sample lies after `prev`, in input samples
    this.out = new Int16Array(CHUNK);
    this.n = 0;
    // "flush" (push-to-talk release): post what is held now, marked, so the page can commit after it.
    this.port.onmessage = () => {
      this.port.postMessage({ flush: true, pcm: this.out.slice(0, this.n).buffer });
      this.n = 0;
    };
  }

  process(inputs) {
    const x = inputs[0] && inputs[0][0];
    if (!x) return true; // no input connected yet
    for (let i = 0; i < x.length; i++) {
      this.sum += x[i] - this.ring[this.ringAt];
      this.ring[this.ringAt] = x[i];
      this.ringAt = (this.ringAt + 1) % this.width;
      if (this.ringAt === 0) this.sum = this.ring.reduce((a, b) => a + b, 0); // no rounding drift
      const cur = this.sum / this.width;
      while (this.pos < 1) {
        // linear interpolation between prev (0) and cur (1)
        this.emit(this.prev + (cur - this.prev) * this.pos);
        this.pos += this.step;
      }
      this.pos -= 1;
      this.prev = cur;
    }
    return true;
  }

  emit(v) {
    const s = Math.max(-1, Math.min(1, v));
    this.out[this.n++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    if (this.n === CHUNK) {
      this.port.postMessage(this.out.buffer, [this.out.buffer]);
      this.out = new Int16Array(CHUNK);
      this.n = 0;
    }
  }
}

registerProcessor("capture", Capture);
