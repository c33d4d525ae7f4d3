/** Stop strings over a growing answer: where the answer ends, and how much of it is safe to show already. */

/** Where the first stop string begins in `text`, or undefined. */
export function firstStop(text: string, stops: readonly string[]): number | undefined {
  let first: number | undefined;
  for (const stop of stops) {
    const at = text.indexOf(stop);
    if (at !== -1 && (first === undefined || at < first)) first = at;
  }
  return first;
}

/**
 * How much of `text` can be streamed without being taken back: not a trailing U+FFFD (a character whose UTF-8
 * bytes are still arriving over several tokens) and not a tail that could be the start of a stop string.
 */
export function streamableLength(text: string, stops: readonly string[]): number {
  let end = text.length;
  while (end > 0 && text[end - 1] === "\uFFFD") end -= 1;
  let held = 0;
  for (const stop of stops) {
    for (let length = Math.min(stop.length - 1, end); length > held; length -= 1) {
      if (text.startsWith(stop.slice(0, length), end - length)) {
        held = length;
        break;
      }
    }
  }
  return end - held;
}
