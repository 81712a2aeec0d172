// Ready-made attribute validators: `attr.string().validate(lengthBetween(1, 63), matches(/^[a-z-]+$/))`.
import type { Validator } from './schema.ts';

/** A string of `min` to `max` characters. */
export function lengthBetween(min: number, max: number): Validator<string> {
  return (v) =>
    v.length < min || v.length > max
      ? `must be ${min} to ${max} characters long, got ${v.length}`
      : undefined;
}

/** A string matching `pattern`; `message` says what is expected in words. */
export function matches(pattern: RegExp, message?: string): Validator<string> {
  return (v) => (pattern.test(v) ? undefined : (message ?? `must match ${pattern}`));
}

/** One of `values`. */
export function oneOf<T extends string | number>(
  ...values: T[]
): Validator<T extends string ? string : number> {
  return (v: string | number) =>
    (values as (string | number)[]).includes(v)
      ? undefined
      : `must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}, got ${JSON.stringify(v)}`;
}

/** A number from `min` to `max`, inclusive. */
export function between(min: number, max: number): Validator<number> {
  return (v) => (v < min || v > max ? `must be between ${min} and ${max}, got ${v}` : undefined);
}

/** A list, set or map of `min` to `max` elements. */
export function sizeBetween(
  min: number,
  max: number,
): Validator<readonly unknown[] | Record<string, unknown>> {
  return (v) => {
    const n = Array.isArray(v) ? v.length : Object.keys(v).length;
    return n < min || n > max ? `must have ${min} to ${max} elements, got ${n}` : undefined;
  };
}
