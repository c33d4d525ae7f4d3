/** A piece of a document, sized in the embedder's tokens, that keeps where it came from. */
export interface Chunk {
  text: string;
  /** Character offsets into the document's text: text === document.slice(start, end). */
  start: number;
  end: number;
  /** The nearest Markdown heading above the chunk ("" when none). */
  heading: string;
  tokens: number;
}

export interface ChunkOptions {
  /** Maximum tokens per chunk. */
  size: number;
  /** Tokens the end of one chunk shares with the start of the next. */
  overlap: number;
  countTokens: (text: string) => number;
}

interface Span {
  start: number;
  end: number;
}

// From coarse to fine: paragraphs, lines, sentences, words. Headings split sections before any of these.
const SEPARATORS = [/\n\s*\n/g, /\n/g, /(?<=[.!?;:])\s+/g, /\s+/g];
const HEADING = /^(#{1,6})\s+(.+?)\s*#*\s*$/gm;

/**
 * Splits a document into chunks of at most `size` tokens, preferring to cut at headings, then paragraphs,
 * lines, sentences and words; consecutive chunks of a section share about `overlap` tokens. Every chunk is an
 * exact slice of the text, with its character offsets and nearest heading.
 */
export function chunkText(text: string, options: ChunkOptions): Chunk[] {
  if (options.overlap >= options.size) throw new Error(`chunk overlap (${options.overlap}) must be below the chunk size (${options.size})`);
  const chunks: Chunk[] = [];
  for (const section of sections(text)) {
    const pieces = split(text, section, 0, options);
    chunks.push(...pack(text, pieces, section.heading, options));
  }
  return chunks;
}

function sections(text: string): Array<Span & { heading: string }> {
  const starts: Array<{ start: number; heading: string }> = [{ start: 0, heading: "" }];
  for (const match of text.matchAll(HEADING)) {
    if (match.index === 0) starts[0] = { start: 0, heading: match[2]! };
    else starts.push({ start: match.index, heading: match[2]! });
  }
  return starts
    .map((section, index) => ({ ...section, end: starts[index + 1]?.start ?? text.length }))
    .filter((section) => text.slice(section.start, section.end).trim() !== "");
}

/** Pieces of at most `size` tokens, cut at the coarsest separator that gets them there. */
function split(text: string, span: Span, level: number, options: ChunkOptions): Span[] {
  const trimmed = trim(text, span);
  if (trimmed.end <= trimmed.start) return [];
  if (options.countTokens(text.slice(trimmed.start, trimmed.end)) <= options.size) return [trimmed];
  if (level >= SEPARATORS.length) return hardSplit(text, trimmed, options);
  const separator = new RegExp(SEPARATORS[level]!.source, "g");
  separator.lastIndex = trimmed.start;
  const parts: Span[] = [];
  let cursor = trimmed.start;
  const body = text.slice(0, trimmed.end);
  for (let match = separator.exec(body); match !== null; match = separator.exec(body)) {
    if (match[0].length === 0) {
      separator.lastIndex += 1;
      continue;
    }
    parts.push({ start: cursor, end: match.index });
    cursor = match.index + match[0].length;
  }
  parts.push({ start: cursor, end: trimmed.end });
  if (parts.length === 1) return split(text, trimmed, level + 1, options);
  return parts.flatMap((part) => split(text, part, level + 1, options));
}

/** A single word longer than a chunk: cut by characters, halving until it fits. */
function hardSplit(text: string, span: Span, options: ChunkOptions): Span[] {
  const middle = span.start + Math.floor((span.end - span.start) / 2);
  if (middle === span.start) return [span];
  const halves = [
    { start: span.start, end: middle },
    { start: middle, end: span.end },
  ];
  return halves.flatMap((half) => (options.countTokens(text.slice(half.start, half.end)) <= options.size ? [half] : hardSplit(text, half, options)));
}

/** Greedily joins pieces into chunks of at most `size` tokens; each next chunk starts `overlap` tokens back. */
function pack(text: string, pieces: Span[], heading: string, options: ChunkOptions): Chunk[] {
  const chunks: Chunk[] = [];
  let first = 0;
  while (first < pieces.length) {
    let last = first;
    let tokens = options.countTokens(text.slice(pieces[first]!.start, pieces[first]!.end));
    while (last + 1 < pieces.length) {
      const candidate = options.countTokens(text.slice(pieces[first]!.start, pieces[last + 1]!.end));
      if (candidate > options.size) break;
      last += 1;
      tokens = candidate;
    }
    const start = pieces[first]!.start;
    const end = pieces[last]!.end;
    chunks.push({ text: text.slice(start, end), start, end, heading, tokens });
    if (last + 1 >= pieces.length) break;
    // Step back over whole pieces worth at most `overlap` tokens, but always move forward.
    let next = last + 1;
    while (next - 1 > first && options.countTokens(text.slice(pieces[next - 1]!.start, end)) <= options.overlap) next -= 1;
    first = next;
  }
  return chunks;
}

function trim(text: string, span: Span): Span {
  let { start, end } = span;
  while (start < end && /\s/.test(text[start]!)) start += 1;
  while (end > start && /\s/.test(text[end - 1]!)) end -= 1;
  return { start, end };
}
