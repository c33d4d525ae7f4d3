import { InvalidArgumentError } from "commander";

/** Parsers for command-line option values, shared by every command; a bad value is a usage error (exit 2). */

export function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) === 0) throw new InvalidArgumentError("must be a positive whole number");
  return Number(value);
}

export function nonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("must be a whole number");
  return Number(value);
}

function finite(value: string): number | undefined {
  const number = Number(value);
  return value.trim() === "" || !Number.isFinite(number) ? undefined : number;
}

export function positiveNumber(value: string): number {
  const number = finite(value);
  if (number === undefined || number <= 0) throw new InvalidArgumentError("must be a positive number");
  return number;
}

/** 0 to 1 inclusive (thresholds, similarities). */
export function probability(value: string): number {
  const number = finite(value);
  if (number === undefined || number < 0 || number > 1) throw new InvalidArgumentError("must be a number from 0 to 1");
  return number;
}

/** 0 to below 1 (dropout). */
export function fraction(value: string): number {
  const number = finite(value);
  if (number === undefined || number < 0 || number >= 1) throw new InvalidArgumentError("must be a number from 0 to below 1");
  return number;
}

/** For a repeatable option: collects its values in order. */
export function repeatable(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
