import { describe, expect, it } from 'vitest';
import { SseDecoder, type SseFrame } from './sse';

const encoder = new TextEncoder();

function frame(seq: number, text: string): string {
  const data = JSON.stringify({ type: 'message.delta', seq, turn_id: 't1', text });
  return `id: ${seq}\nevent: message.delta\ndata: ${data}\n\n`;
}

function decodeInPieces(wire: Uint8Array, size: number): SseFrame[] {
  const decoder = new SseDecoder();
  const frames: SseFrame[] = [];
  for (let start = 0; start < wire.length; start += size) {
    frames.push(...decoder.feed(wire.slice(start, start + size)));
  }
  return frames;
}

describe('SseDecoder', () => {
  it('decodes frames split at every byte', () => {
    const wire = encoder.encode(`${frame(1, 'Hola ')}: heartbeat\n\n${frame(2, 'mundo')}`);
    const frames = decodeInPieces(wire, 1);
    expect(frames).toHaveLength(2);
    expect(frames[0].id).toBe('1');
    expect(frames[0].event).toBe('message.delta');
    expect(JSON.parse(frames[0].data).text).toBe('Hola ');
    expect(JSON.parse(frames[1].data).text).toBe('mundo');
  });

  it('keeps multibyte characters split across chunks', () => {
    const wire = encoder.encode(frame(1, 'días de vacaciones 🌴'));
    for (const size of [1, 2, 3, 5, 7]) {
      const frames = decodeInPieces(wire, size);
      expect(frames).toHaveLength(1);
      expect(JSON.parse(frames[0].data).text).toBe('días de vacaciones 🌴');
    }
  });

  it('accepts CRLF and CR line endings', () => {
    const decoder = new SseDecoder();
    const crlf = decoder.feed('event: x\r\ndata: one\r\ndata: two\r\n\r\n');
    expect(crlf).toEqual([{ event: 'x', data: 'one\ntwo' }]);
    // The final `\r` may still become `\r\n`, so only the first CR-ended frame is complete.
    const cr = decoder.feed('data: three\r\rdata: four\r\r');
    expect(cr).toEqual([{ data: 'three' }]);
  });

  it('waits when a CR ends the chunk', () => {
    const decoder = new SseDecoder();
    expect(decoder.feed('data: a\r')).toEqual([]);
    expect(decoder.feed('\n\r\n')).toEqual([{ data: 'a' }]);
  });

  it('skips comment-only frames', () => {
    const decoder = new SseDecoder();
    expect(decoder.feed(': heartbeat\n\n: another\n\n')).toEqual([]);
  });

  it('decodes the same frames at random chunk sizes', () => {
    const texts = Array.from({ length: 60 }, (_, index) => `piece ${index} ünïcödé 🚀\n`);
    const wire = encoder.encode(texts.map((text, index) => frame(index + 1, text) + ': heartbeat\n\n').join(''));
    // A fixed seed keeps failures reproducible.
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 50; round++) {
      const decoder = new SseDecoder();
      const frames: SseFrame[] = [];
      let start = 0;
      while (start < wire.length) {
        const size = 1 + Math.floor(random() * 40);
        frames.push(...decoder.feed(wire.slice(start, start + size)));
        start += size;
      }
      expect(frames.map((decoded) => JSON.parse(decoded.data).text)).toEqual(texts);
    }
  });

  it('keeps an unfinished frame for the next chunk', () => {
    const decoder = new SseDecoder();
    expect(decoder.feed('id: 4\ndata: {"a"')).toEqual([]);
    expect(decoder.feed(':1}\n')).toEqual([]);
    expect(decoder.feed('\n')).toEqual([{ id: '4', data: '{"a":1}' }]);
  });
});
