import {
  CreateFunctionCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  type FunctionConfiguration,
  type LambdaClient,
} from '@aws-sdk/client-lambda';
import { DeployError } from '../errors.js';
import { attempt, awsErrorName, explainAwsError, must, type Sleep, type StepOptions, type StepResult } from './aws.js';
import { OWNER_TAG, type DeployPlan } from './plan.js';

/** The zip and its SHA-256 in base64, the form Lambda reports as CodeSha256. */
export interface FunctionCode {
  zip: Buffer;
  sha256: string;
}

export interface FunctionOutcome {
  result: StepResult;
  /** Whether the function exists now (false only in a dry run of a first deploy). */
  exists: boolean;
  /** The environment of the function as found, before this deploy (destroy reads the topic from it). */
  previous?: FunctionConfiguration | undefined;
}

const POLL_MS = 1000;
const POLL_LIMIT = 300;
/** IAM is eventually consistent: a new role can take ~10 s before Lambda may assume it. */
const ROLE_RETRY_MS = 3000;
const ROLE_RETRIES = 10;

function runtimeIsCurrent(existing: string | undefined, wanted: string): boolean {
  const version = (runtime: string | undefined) => Number(/^nodejs(\d+)\.x$/.exec(runtime ?? '')?.[1] ?? 0);
  return version(existing) >= version(wanted);
}

function sameEnvironment(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const left = a ?? {};
  const keys = new Set([...Object.keys(left), ...Object.keys(b)]);
  return [...keys].every((k) => left[k] === b[k]);
}

/** The settings that differ between the live function and the plan, by name. */
export function configurationChanges(current: FunctionConfiguration, plan: DeployPlan): string[] {
  const changes: string[] = [];
  if (!runtimeIsCurrent(current.Runtime, plan.fn.runtime)) changes.push('runtime');
  if (current.Role !== plan.role.arn) changes.push('role');
  if (current.Handler !== plan.fn.handler) changes.push('handler');
  if (current.MemorySize !== plan.fn.memory) changes.push('memory');
  if (current.Timeout !== plan.fn.timeout) changes.push('timeout');
  if (current.Description !== plan.fn.description) changes.push('description');
  if (!sameEnvironment(current.Environment?.Variables, plan.fn.environment)) changes.push('environment');
  return changes;
}

/** Polls until the function is Active and no update is in progress; a failed state is an error. */
export async function waitUntilReady(lambda: LambdaClient, name: string, sleep: Sleep): Promise<FunctionConfiguration> {
  for (let round = 0; round < POLL_LIMIT; round += 1) {
    const config = await must('lambda:GetFunctionConfiguration', name, () => lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name })));
    if (config.State === 'Failed' || config.LastUpdateStatus === 'Failed') {
      throw new DeployError('FUNCTION_FAILED', `the function ${name} failed to become ready: ${config.StateReason ?? config.LastUpdateStatusReason ?? 'no reason given'}`);
    }
    if (config.State === 'Active' && config.LastUpdateStatus !== 'InProgress') return config;
    await sleep(POLL_MS);
  }
  throw new DeployError('FUNCTION_TIMEOUT', `the function ${name} did not become Active within ${(POLL_LIMIT * POLL_MS) / 1000} s`);
}

async function createFunction(lambda: LambdaClient, plan: DeployPlan, code: FunctionCode, sleep: Sleep): Promise<void> {
  const { fn } = plan;
  const command = new CreateFunctionCommand({
    FunctionName: fn.name,
    Runtime: fn.runtime as never,
    Role: plan.role.arn,
    Handler: fn.handler,
    Code: { ZipFile: code.zip },
    Architectures: [fn.architecture],
    MemorySize: fn.memory,
    Timeout: fn.timeout,
    Description: fn.description,
    Environment: { Variables: fn.environment },
    PackageType: 'Zip',
    Tags: plan.tags,
  });
  for (let round = 1; ; round += 1) {
    try {
      await lambda.send(command);
      return;
    } catch (error) {
      const roleNotReady = awsErrorName(error) === 'InvalidParameterValueException' && /role|assume/i.test((error as Error).message);
      if (!roleNotReady || round >= ROLE_RETRIES) throw explainAwsError(error, 'lambda:CreateFunction', fn.name);
      await sleep(ROLE_RETRY_MS);
    }
  }
}

/**
 * Step: the function. Created if missing; otherwise its code is uploaded only when CodeSha256 differs
 * (or the architecture changed) and its configuration updated only when a setting differs.
 * `code` is undefined in a dry run without a package; the code is then not compared.
 */
export async function ensureFunction(lambda: LambdaClient, plan: DeployPlan, code: FunctionCode | undefined, options: StepOptions): Promise<FunctionOutcome> {
  const { fn } = plan;
  const result = (status: StepResult['status'], detail?: string): StepResult => ({ resource: 'Lambda function', name: fn.name, status, ...(detail ? { detail } : {}) });
  const found = await attempt('lambda:GetFunction', fn.name, () => lambda.send(new GetFunctionCommand({ FunctionName: fn.name })), ['ResourceNotFoundException']);
  const settings = `${fn.runtime}, ${fn.architecture}, ${fn.memory} MB, ${fn.timeout} s`;
  if (!found?.Configuration) {
    if (options.dryRun) return { result: result('would create', settings), exists: false };
    if (!code) throw new DeployError('NO_PACKAGE', 'internal: creating a function needs its package');
    await createFunction(lambda, plan, code, options.sleep);
    await waitUntilReady(lambda, fn.name, options.sleep);
    return { result: result('created', settings), exists: true };
  }
  if (!found.Tags?.[OWNER_TAG]) {
    throw new DeployError('NOT_OURS', `the Lambda function ${fn.name} exists but was not created by img-pipeline deploy (no ${OWNER_TAG} tag); choose another --function-name`);
  }
  let current = found.Configuration;
  const previous = current;
  const codeChanged = code !== undefined && current.CodeSha256 !== code.sha256;
  const archChanged = current.Architectures?.[0] !== fn.architecture;
  const changes = [...(codeChanged ? ['code'] : []), ...(archChanged ? ['architecture'] : []), ...configurationChanges(current, plan)];
  if (changes.length === 0) return { result: result('unchanged', code ? undefined : 'code not compared (no package in this dry run)'), exists: true, previous };
  if (options.dryRun) return { result: result('would update', changes.join(', ')), exists: true, previous };

  if (current.State !== 'Active' || current.LastUpdateStatus === 'InProgress') current = await waitUntilReady(lambda, fn.name, options.sleep);
  if (codeChanged || archChanged) {
    if (!code) throw new DeployError('NO_PACKAGE', 'internal: changing the architecture needs the package');
    // The architecture is a property of the code, so it changes with UpdateFunctionCode.
    await must('lambda:UpdateFunctionCode', fn.name, () =>
      lambda.send(new UpdateFunctionCodeCommand({ FunctionName: fn.name, ZipFile: code.zip, Architectures: [fn.architecture] })));
    current = await waitUntilReady(lambda, fn.name, options.sleep);
  }
  if (configurationChanges(current, plan).length > 0) {
    await must('lambda:UpdateFunctionConfiguration', fn.name, () =>
      lambda.send(new UpdateFunctionConfigurationCommand({
        FunctionName: fn.name,
        ...(runtimeIsCurrent(current.Runtime, fn.runtime) ? {} : { Runtime: fn.runtime as never }),
        Role: plan.role.arn,
        Handler: fn.handler,
        MemorySize: fn.memory,
        Timeout: fn.timeout,
        Description: fn.description,
        Environment: { Variables: fn.environment },
      })));
    await waitUntilReady(lambda, fn.name, options.sleep);
  }
  return { result: result('updated', changes.join(', ')), exists: true, previous };
}
