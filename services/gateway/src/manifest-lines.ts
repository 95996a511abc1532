/** A manifest line longer than any user id could be: reading on would buffer an unbounded line. */
export class LineTooLongError extends Error {
  constructor(
    readonly line: number,
    readonly maxLineBytes: number,
  ) {
    super(`line ${line} is longer than ${maxLineBytes} bytes`);
    this.name = "LineTooLongError";
  }
}

/**
 * Splits a byte stream into its trimmed, non-empty lines, yielding the lines each chunk
 * completes. It holds at most one chunk plus one partial line (at most `maxLineBytes`), so a
 * manifest of any size streams through in bounded memory. LF and CRLF both end a line; a final
 * line without a newline counts; a UTF-8 character split across chunks is decoded whole.
 */
export async function* splitLines(chunks: AsyncIterable<Uint8Array>, maxLineBytes: number): AsyncGenerator<string[]> {
  // fatal: false turns bad UTF-8 into U+FFFD, which the id check then rejects with its position.
  const decoder = new TextDecoder("utf-8");
  let partial = "";
  let lineNo = 0;
  const complete = (text: string, flush: boolean): string[] => {
    const parts = (partial + text).split("\n");
    partial = flush ? "" : parts.pop()!;
    const lines: string[] = [];
    for (const part of parts) {
      lineNo++;
      if (Buffer.byteLength(part) > maxLineBytes) throw new LineTooLongError(lineNo, maxLineBytes);
      // trim() also takes the CR of a CRLF ending.
      const line = part.trim();
      if (line) lines.push(line);
    }
    // Checked on the carried-over text too: a line with no newline in sight must not grow forever.
    if (Buffer.byteLength(partial) > maxLineBytes) throw new LineTooLongError(lineNo + 1, maxLineBytes);
    return lines;
  };
  for await (const chunk of chunks) {
    const lines = complete(decoder.decode(chunk, { stream: true }), false);
    if (lines.length > 0) yield lines;
  }
  const rest = complete(decoder.decode(), true);
  if (rest.length > 0) yield rest;
}

export interface IdChunk {
  offset: number;
  userIds: string[];
  last: boolean;
}

/**
 * Regroups lines into intake chunks of `size` ids, the last marked `last`. It keeps one chunk
 * back until the next line arrives, since only the end of the stream says which chunk is last;
 * an empty manifest still yields one empty last chunk (intake seals an empty batch on it).
 */
export async function* idChunks(lines: AsyncIterable<string[]>, size: number): AsyncGenerator<IdChunk> {
  let offset = 0;
  let current: string[] = [];
  for await (const group of lines) {
    for (const line of group) {
      if (current.length === size) {
        yield { offset, userIds: current, last: false };
        offset += current.length;
        current = [];
      }
      current.push(line);
    }
  }
  yield { offset, userIds: current, last: true };
}
