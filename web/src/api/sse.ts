// Incremental parser for server-sent events (the WHATWG event stream format).
//
// `fetch` gives the body as arbitrary byte chunks, so a frame, a line or even a UTF-8 character
// may be split across chunks. The decoder keeps the unfinished tail until the next chunk.

/** One complete SSE frame. Comment-only frames (heartbeats) are not produced. */
export interface SseFrame {
  id?: string;
  event?: string;
  data: string;
}

/** Incremental SSE decoder: feed it chunks, get back every frame they completed. */
export class SseDecoder {
  private readonly textDecoder = new TextDecoder('utf-8');
  private buffer = '';
  private current: SseFrame = { data: '' };
  private hasData = false;

  /** Feeds one chunk of the body and returns the frames it completed. */
  feed(chunk: Uint8Array | string): SseFrame[] {
    this.buffer +=
      typeof chunk === 'string' ? chunk : this.textDecoder.decode(chunk, { stream: true });
    const frames: SseFrame[] = [];
    for (;;) {
      const line = this.takeLine();
      if (line === undefined) {
        return frames;
      }
      const frame = this.applyLine(line);
      if (frame) {
        frames.push(frame);
      }
    }
  }

  /** Removes and returns the next complete line, accepting `\n`, `\r\n` and `\r` endings. */
  private takeLine(): string | undefined {
    const match = /\r\n|\r|\n/.exec(this.buffer);
    if (!match) {
      return undefined;
    }
    // A `\r` at the very end may be the first half of a `\r\n` split across chunks.
    if (match[0] === '\r' && match.index === this.buffer.length - 1) {
      return undefined;
    }
    const line = this.buffer.slice(0, match.index);
    this.buffer = this.buffer.slice(match.index + match[0].length);
    return line;
  }

  private applyLine(line: string): SseFrame | undefined {
    if (line === '') {
      const frame = this.hasData ? this.current : undefined;
      this.current = { data: '' };
      this.hasData = false;
      return frame;
    }
    if (line.startsWith(':')) {
      return undefined;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    if (field === 'id') {
      this.current.id = value;
    } else if (field === 'event') {
      this.current.event = value;
    } else if (field === 'data') {
      this.current.data = this.hasData ? `${this.current.data}\n${value}` : value;
      this.hasData = true;
    }
    return undefined;
  }
}
