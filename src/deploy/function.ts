import {
  CreateFunctionCommand,
  GetFunctionCommand,
  InvokeCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  waitForFunctionActiveV2,
  waitForFunctionUpdatedV2,
  type FunctionConfiguration,
  type GetFunctionCommandOutput,
  type LambdaClient,
} from '@aws-sdk/client-lambda';
import { DeployError } from '../errors.js';
import { attempt, awsErrorName, explainAwsError, IAM_PROPAGATION, MISSING, must, retryAws, stepResult, type StepOptions, type StepResult, type StepTarget } from './aws.js';
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

/** How long the SDK's waiters may take for a creation or an update (Lambda's own are usually seconds). */
const WAIT_SECONDS = 300;

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
  return {
    resource: 'Lambda function', name: fn.name, detail: `${fn.runtime}, ${fn.architecture}, ${fn.memory} MB, ${fn.timeout} s`, arn: fn.arn,
    settings: {
      Runtime: fn.runtime, Architectures: [fn.architecture], MemorySize: fn.memory, Timeout: fn.timeout, Handler: fn.handler,
      Role: plan.role.arn, Description: fn.description, Environment: { Variables: fn.environment }, Tags: plan.tags,
    },
  };
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
 * Waits with the SDK's waiter (GetFunction until Active after a creation, until LastUpdateStatus is
 * Successful after an update); a failure carries Lambda's reason. Returns the configuration it saw last.
 */
async function waitForFunction(lambda: LambdaClient, name: string, until: 'active' | 'updated'): Promise<FunctionConfiguration> {
  const waiter = until === 'active' ? waitForFunctionActiveV2 : waitForFunctionUpdatedV2;
  const outcome = await waiter({ client: lambda, maxWaitTime: WAIT_SECONDS }, { FunctionName: name });
  const config = (outcome.reason as GetFunctionCommandOutput | undefined)?.Configuration;
  if (outcome.state === 'SUCCESS' && config) return config;
  if (outcome.state === 'FAILURE') {
    throw new DeployError('FUNCTION_FAILED', `the function ${name} failed to become ready: ${config?.StateReason ?? config?.LastUpdateStatusReason ?? 'no reason given'}`);
  }
  throw new DeployError('FUNCTION_TIMEOUT', `the function ${name} was still being ${until === 'active' ? 'created' : 'updated'} after ${WAIT_SECONDS} s`);
}

/** "The role defined for the function cannot be assumed by Lambda.": IAM has not reached Lambda yet. */
function roleNotReady(error: unknown): boolean {
  return awsErrorName(error) === 'InvalidParameterValueException' && /role defined for the function cannot be assumed/i.test((error as Error).message);
}

/** A Lambda call that names a role deploy may have just created or changed, retried while IAM propagates. */
async function sendWithRole<T>(plan: DeployPlan, action: string, options: StepOptions, call: () => Promise<T>): Promise<T> {
  try {
    return await retryAws(call, {
      isRetryable: roleNotReady,
      policy: IAM_PROPAGATION,
      onWait: (seconds) => options.log(`waiting for IAM to propagate (${seconds} s): Lambda cannot assume ${plan.role.name} yet`),
    });
  } catch (error) {
    throw explainAwsError(error, action, plan.fn.name);
  }
}

async function createFunction(lambda: LambdaClient, plan: DeployPlan, code: FunctionCode, options: StepOptions): Promise<void> {
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
  await sendWithRole(plan, 'lambda:CreateFunction', options, () => lambda.send(command));
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
    await createFunction(lambda, plan, code, options);
    await waitForFunction(lambda, fn.name, 'active');
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

  // Lambda refuses an update while the function is still being created or another update runs. An
  // Inactive function (idle for weeks) is not busy: an update is what reactivates it.
  if (current.State === 'Pending') current = await waitForFunction(lambda, fn.name, 'active');
  if (current.LastUpdateStatus === 'InProgress') current = await waitForFunction(lambda, fn.name, 'updated');
  if (codeChanged || archChanged) {
    // The architecture is a property of the code, so it changes with UpdateFunctionCode.
    await must('lambda:UpdateFunctionCode', fn.name, () =>
      lambda.send(new UpdateFunctionCodeCommand({ FunctionName: fn.name, ZipFile: code.zip, Architectures: [fn.architecture] })));
    current = await waitForFunction(lambda, fn.name, 'updated');
  }
  if (configurationChanges(current, plan).length > 0) {
    await sendWithRole(plan, 'lambda:UpdateFunctionConfiguration', options, () =>
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
    await waitForFunction(lambda, fn.name, 'updated');
  }
  return { result: stepResult(target, 'updated', changes.join(', ')), exists: true };
}

/** The function's tags could not be read, so whether deploy created it is unknown: stop, naming the permission. */
export function tagsUnreadable(functionName: string, error: { ErrorCode?: string | undefined; Message?: string | undefined }): DeployError {
  return new DeployError('ACCESS_DENIED', `access denied: lambda:ListTags on ${functionName} (GetFunction returned ${error.ErrorCode ?? 'TagsError'}${error.Message ? `: ${error.Message}` : ''}); without its tags, img-pipeline cannot tell whether deploy created the function. The deploying identity needs this permission (see "Permissions for the deploying user" in docs/lambda.md)`);
}

/** Invoke's answers for a function that is not ready yet, rather than broken. */
const NOT_READY = new Set(['ResourceConflictException', 'ResourceNotReadyException']);

/**
 * The event S3 sends when a notification is first configured
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html): the
 * handler ignores it, but only after its module loaded sharp, libvips and the font.
 */
export function s3TestEvent(bucket: string, time: Date): Record<string, string> {
  return { Service: 'Amazon S3', Event: 's3:TestEvent', Time: time.toISOString(), Bucket: bucket, RequestId: 'img-pipeline-deploy', HostId: 'img-pipeline-deploy' };
}

/**
 * After deploy, one synchronous invocation with S3's test event must answer without a function error:
 * a sharp built for the wrong architecture or a missing font fails here, not at the first upload.
 */
export async function runSmokeTest(lambda: LambdaClient, plan: DeployPlan, now: Date): Promise<StepResult> {
  const { fn } = plan;
  const target: StepTarget = { resource: 'smoke test', name: fn.name, arn: fn.arn, detail: 'invoked with S3\'s test event' };
  const invoke = () => lambda.send(new InvokeCommand({ FunctionName: fn.name, InvocationType: 'RequestResponse', Payload: Buffer.from(JSON.stringify(s3TestEvent(plan.request.bucket, now))) }));
  let response;
  try {
    response = await invoke();
  } catch (error) {
    // An idle (Inactive) function refuses its first invocation and goes Pending while Lambda recreates
    // its resources: "The function is currently in the following state: Pending"
    // (https://github.com/remotion-dev/remotion/issues/1186). Wait for Active, then try once more.
    if (!NOT_READY.has(awsErrorName(error))) throw explainAwsError(error, 'lambda:InvokeFunction', fn.name);
    await waitForFunction(lambda, fn.name, 'active');
    response = await must('lambda:InvokeFunction', fn.name, invoke);
  }
  if (response.FunctionError) {
    const text = response.Payload ? Buffer.from(response.Payload).toString('utf8') : '';
    let reason = text;
    try {
      const body = JSON.parse(text) as { errorType?: string; errorMessage?: string };
      reason = [body.errorType, body.errorMessage].filter(Boolean).join(': ') || text;
    } catch {
      // Not JSON: Lambda's own text is the best description there is.
    }
    throw new DeployError('SMOKE_TEST_FAILED', `the function ${fn.name} was deployed, but failed its test invocation (${response.FunctionError}): ${reason}. The S3 trigger was not changed; see aws logs tail ${plan.logGroup.name} --since 10m`);
  }
  return stepResult(target, 'passed');
}
