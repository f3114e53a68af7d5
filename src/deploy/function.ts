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
import { attempt, awsErrorName, explainAwsError, MISSING, must, retryWhile, stepResult, type Sleep, type StepOptions, type StepResult, type StepTarget } from './aws.js';
import { isOwnedBy, OWNER_TAG, type DeployPlan } from './plan.js';

/** The zip and its SHA-256 in base64, the form Lambda reports as CodeSha256. */
export interface FunctionCode {
  zip: Buffer;
  sha256: string;
}

export interface FunctionOutcome {
  result: StepResult;
  /** Whether the function exists now (false only in a dry run of a first deploy). */
  exists: boolean;
}

const POLL_MS = 1000;
const POLL_LIMIT = 300;
/** IAM is eventually consistent: a new role can take ~10 s before Lambda may assume it. */
const ROLE_RETRY = { attempts: 10, delayMs: 3000 };

function runtimeIsCurrent(existing: string | undefined, wanted: string): boolean {
  const version = (runtime: string | undefined) => Number(/^nodejs(\d+)\.x$/.exec(runtime ?? '')?.[1] ?? 0);
  return version(existing) >= version(wanted);
}

function sameEnvironment(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const left = a ?? {};
  const keys = new Set([...Object.keys(left), ...Object.keys(b)]);
  return [...keys].every((k) => left[k] === b[k]);
}

/** The function step, as a plan shows it and as it reports. */
export function describeFunction(plan: DeployPlan): StepTarget {
  const { fn } = plan;
  return { resource: 'Lambda function', name: fn.name, detail: `${fn.runtime}, ${fn.architecture}, ${fn.memory} MB, ${fn.timeout} s` };
}

/** The settings that differ between the live function and the plan, by name. */
function configurationChanges(current: FunctionConfiguration, plan: DeployPlan): string[] {
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

/**
 * Busy: still being created, or an update is running; Lambda refuses another update until it is done.
 * An Inactive function (idle for weeks) is not busy: it never turns Active by itself, and an update is
 * what reactivates it.
 */
function isBusy(config: FunctionConfiguration): boolean {
  return config.State === 'Pending' || config.LastUpdateStatus === 'InProgress';
}

/** Polls until the function is no longer busy; a failed creation or update is an error carrying Lambda's reason. */
async function waitUntilReady(lambda: LambdaClient, name: string, sleep: Sleep): Promise<FunctionConfiguration> {
  for (let round = 0; round < POLL_LIMIT; round += 1) {
    const config = await must('lambda:GetFunctionConfiguration', name, () => lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name })));
    if (config.State === 'Failed' || config.LastUpdateStatus === 'Failed') {
      throw new DeployError('FUNCTION_FAILED', `the function ${name} failed to become ready: ${config.StateReason ?? config.LastUpdateStatusReason ?? 'no reason given'}`);
    }
    if (!isBusy(config)) return config;
    await sleep(POLL_MS);
  }
  throw new DeployError('FUNCTION_TIMEOUT', `the function ${name} was still being created or updated after ${(POLL_LIMIT * POLL_MS) / 1000} s`);
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
  const roleNotReady = (error: unknown) => awsErrorName(error) === 'InvalidParameterValueException' && /role|assume/i.test((error as Error).message);
  try {
    await retryWhile(roleNotReady, { ...ROLE_RETRY, sleep }, () => lambda.send(command));
  } catch (error) {
    throw explainAwsError(error, 'lambda:CreateFunction', fn.name);
  }
}

/**
 * Step: the function. Created if missing; otherwise its code is uploaded only when CodeSha256 differs
 * (or the architecture changed) and its configuration updated only when a setting differs.
 */
export async function ensureFunction(lambda: LambdaClient, plan: DeployPlan, code: FunctionCode, options: StepOptions): Promise<FunctionOutcome> {
  const { fn } = plan;
  const target = describeFunction(plan);
  const found = await attempt('lambda:GetFunction', fn.name, () => lambda.send(new GetFunctionCommand({ FunctionName: fn.name })), MISSING.lambda);
  if (!found?.Configuration) {
    if (options.dryRun) return { result: stepResult(target, 'would create'), exists: false };
    await createFunction(lambda, plan, code, options.sleep);
    await waitUntilReady(lambda, fn.name, options.sleep);
    return { result: stepResult(target, 'created'), exists: true };
  }
  // GetFunction leaves Tags out, and says why in TagsError, when the caller may not lambda:ListTags.
  if (found.TagsError) throw tagsUnreadable(fn.name, found.TagsError);
  if (!isOwnedBy(found.Tags, fn.name)) {
    throw new DeployError('NOT_OURS', `the Lambda function ${fn.name} exists but was not created by img-pipeline deploy (no ${OWNER_TAG}=${fn.name} tag); choose another --function-name`);
  }
  let current = found.Configuration;
  const codeChanged = current.CodeSha256 !== code.sha256;
  const archChanged = current.Architectures?.[0] !== fn.architecture;
  const changes = [...(codeChanged ? ['code'] : []), ...(archChanged ? ['architecture'] : []), ...configurationChanges(current, plan)];
  if (changes.length === 0) return { result: stepResult(target, 'unchanged', ''), exists: true };
  if (options.dryRun) return { result: stepResult(target, 'would update', changes.join(', ')), exists: true };

  if (isBusy(current)) current = await waitUntilReady(lambda, fn.name, options.sleep);
  if (codeChanged || archChanged) {
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
  return { result: stepResult(target, 'updated', changes.join(', ')), exists: true };
}

/** The function's tags could not be read, so whether deploy created it is unknown: stop, naming the permission. */
export function tagsUnreadable(functionName: string, error: { ErrorCode?: string | undefined; Message?: string | undefined }): DeployError {
  return new DeployError('ACCESS_DENIED', `access denied: lambda:ListTags on ${functionName} (GetFunction returned ${error.ErrorCode ?? 'TagsError'}${error.Message ? `: ${error.Message}` : ''}); without its tags, img-pipeline cannot tell whether deploy created the function. The deploying identity needs this permission (see "Permissions for the deploying user" in docs/lambda.md)`);
}
