// The package entry (`import { runPipeline } from 'img-pipeline'`): the library the CLI and the Lambda use.
// It loads no AWS SDK code until an S3 source or sink makes a request; build the S3Client yourself
// (`new S3Client(...)` from @aws-sdk/client-s3) and pass it in.

export {
  configSchema,
  CROP_POSITIONS,
  DEFAULT_SIZES,
  FITS,
  FORMATS,
  GRAVITIES,
  METADATA_MODES,
  type Config,
  type ConfigInput,
  type Gravity,
  type Limits,
  type OutputFormat,
  type SizeSpec,
  type WatermarkSpec,
} from './config/schema.js';
export { DEFAULT_CONFIG_FILE, loadConfig, mergeConfig, validateConfig, type LoadedConfig, type SizeOverrides } from './config/load.js';

export { configureSharp, preparePipeline, processImage, processSource, type Pipeline, type ProcessedImage, type ProcessedOutput } from './pipeline/process.js';
export { computePlaceholder, type Placeholder } from './pipeline/placeholder.js';
export { buildSidecar, buildSrcset, type Sidecar, type SidecarOutput } from './report/sidecar.js';
export { inspectInput, type InputInfo } from './pipeline/decode.js';
export {
  createPlanner,
  destinationKeys,
  pipelineFingerprint,
  plannedOutputs,
  planJobs,
  type DestinationIndex,
  type Job,
  type PlannedOutput,
  type PlanOptions,
} from './pipeline/plan.js';
export {
  CONTENT_TYPES,
  destinationFolders,
  extensionOf,
  FORMAT_EXTENSIONS,
  IMAGE_EXTENSIONS,
  isImageKey,
  joinKey,
  OUTPUT_MARKER,
  outputKey,
  outputMetadata,
  outputStem,
  relativeTo,
  SIDECAR_FOLDER,
  sidecarKey,
  STATE_KEY,
  unsafeKeyReason,
} from './pipeline/layout.js';

export {
  runPipeline,
  type FileReport,
  type FileStatus,
  type OutputReport,
  type RunError,
  type RunEvent,
  type RunOptions,
  type RunReport,
} from './runner/run-pipeline.js';
export { runJobs, type RunJobsOptions } from './runner/run-jobs.js';

export type { IfMatch, Sink, SinkEntry, SinkListOptions, Source, SourceEntry, Stored, TextEntry, WriteOptions } from './storage/types.js';
export { LocalSink, LocalSource } from './storage/local.js';
export { isS3Uri, parseS3Uri, S3Sink, S3Source, type S3Location, type S3SinkOptions, type S3SourceOptions } from './storage/s3.js';
export { openSink, openSources, type OpenOptions, type S3Access } from './storage/resolve.js';

export { ConfigError, DeployError, describeError, ImgPipelineError, InputError, PipelineError, StorageError, type ErrorKind } from './errors.js';
