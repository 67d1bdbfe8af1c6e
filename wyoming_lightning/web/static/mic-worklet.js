// Runs in the audio thread: hands each block of microphone samples (mono, the context's own
// rate) to the page, which downsamples and sends them.
class Capture extends AudioWorkletProcessor {
  process(inputs) {
    const input = inputs[0];
    if (input && input[0]) this.port.postMessage(input[0].slice(0));
    return true;
  }
}
registerProcessor("capture", Capture);
