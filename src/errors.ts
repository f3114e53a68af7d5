/** The stage an error comes from; each maps to one exit code at the CLI edge. */
export type ErrorKind = 'config' | 'input' | 'pipeline' | 'storage' | 'deploy';

/** Base class of every error the tool raises on purpose: a stable code and a message a person can act on. */
export class ImgPipelineError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  /** The message's first line; `message` adds the details below it, one indented line each. */
  readonly headline: string;
  /**
   * Lines under the headline (one per invalid field), kept apart so the CLI can escape a line break inside
   * one (a quoted name, a config key) and still print one line each.
   */
  readonly details: readonly string[];

  constructor(kind: ErrorKind, code: string, message: string, options?: { cause?: unknown; details?: readonly string[] }) {
    const details = options?.details ?? [];
    super(details.length > 0 ? `${message}:\n  ${details.join('\n  ')}` : message, options);
    this.name = new.target.name;
    this.kind = kind;
    this.code = code;
    this.headline = message;
    this.details = details;
  }
}

/** Invalid flags or config file: nothing has been written when this is thrown. */
export class ConfigError extends ImgPipelineError {
  constructor(code: string, message: string, options?: { cause?: unknown; details?: readonly string[] }) {
    super('config', code, message, options);
  }
}

/** One input cannot be processed (empty, corrupt, refused, over a limit). */
export class InputError extends ImgPipelineError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super('input', code, message, options);
  }
}

/** Decoding or encoding failed inside sharp for a reason that is not the input's fault. */
export class PipelineError extends ImgPipelineError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super('pipeline', code, message, options);
  }
}

/** Reading or writing a source or destination failed (filesystem or S3). */
export class StorageError extends ImgPipelineError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super('storage', code, message, options);
  }
}

/** A deploy or destroy step failed or was refused. */
export class DeployError extends ImgPipelineError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super('deploy', code, message, options);
  }
}

/**
 * A run that could not start at all: no source could be listed, the destination cannot be used, the
 * credentials were refused. Nothing was written; the CLI exits 2, not 1 ("some files failed").
 * Keeps the underlying error's kind, code and message.
 */
export class SetupError extends ImgPipelineError {
  constructor(cause: unknown) {
    const inner = cause instanceof ImgPipelineError ? cause : undefined;
    super(inner?.kind ?? 'storage', inner?.code ?? 'UNEXPECTED', describeError(cause), { cause });
  }
}

/** One line for a person: our own message, or the underlying error's message with its name. */
export function describeError(error: unknown): string {
  if (error instanceof ImgPipelineError) return error.message;
  if (error instanceof Error) return `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}`;
  return String(error);
}
