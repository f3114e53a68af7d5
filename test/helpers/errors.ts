import { expect } from 'vitest';

/** Awaits a promise that must reject with an instance of `type`, and returns the error for further checks. */
export async function rejection<T extends Error>(promise: Promise<unknown>, type: abstract new (...args: never[]) => T): Promise<T> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(type);
  return error as T;
}
