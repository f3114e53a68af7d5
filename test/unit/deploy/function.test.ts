import { GetFunctionCommand, InvokeCommand, ResourceConflictException } from '@aws-sdk/client-lambda';
import { beforeEach, describe, expect, it } from 'vitest';
import { deployCommand } from '../../../src/cli/commands/deploy.js';
import { OWNER_TAG } from '../../../src/deploy/plan.js';
import { callNames, calls, mocks, onFakeClock, resetMocks, writeNames } from './aws-mocks.js';
import { deps, existingDeployment, fakePackage, io, liveFunction, options, plan, READS_OF_A_REDEPLOY } from './deployment.js';

const OWNED = { [OWNER_TAG]: 'ImageProcessor' };
const OLD_CODE = 'c2hhLW9mLXRoZS1vbGQtemlw';

/** The function step's calls: Lambda's, from GetFunction to the log group step's first read. */
function functionCalls(): string[] {
  const names = callNames();
  return names.slice(names.indexOf('lambda:GetFunction'), names.indexOf('logs:DescribeLogGroups'));
}

function inputOf(name: string): Record<string, unknown> {
  return calls().find((c) => c.name === name)!.input;
}

beforeEach(() => resetMocks());

describe('deploy: updating an existing function', () => {
  it('a memory change: exactly one UpdateFunctionConfiguration with every setting, then waits for it', async () => {
    existingDeployment();
    const d = deps();
    const out = io();
    expect(await deployCommand({ ...options, memory: '2048' }, out, d)).toBe(0);
    expect(writeNames()).toEqual(['lambda:UpdateFunctionConfiguration']);
    expect(functionCalls()).toEqual(['lambda:GetFunction', 'lambda:UpdateFunctionConfiguration', 'lambda:GetFunction']);
    expect(inputOf('lambda:UpdateFunctionConfiguration')).toEqual({
      FunctionName: 'ImageProcessor', Role: plan.role.arn, Handler: 'index.handler', MemorySize: 2048, Timeout: 30,
      Description: plan.fn.description, Environment: { Variables: plan.fn.environment },
    });
    expect(out.out()).toMatch(/updated\s+Lambda function\s+ImageProcessor\s+\(memory\)/);
  });

  it('an environment changed in the console (WATERMARK_TEXT added) is put back: one UpdateFunctionConfiguration', async () => {
    existingDeployment();
    mocks.lambda.on(GetFunctionCommand).resolves({
      Configuration: { ...liveFunction(), Environment: { Variables: { ...plan.fn.environment, WATERMARK_TEXT: '© Console' } } },
      Tags: OWNED,
    });
    const out = io();
    expect(await deployCommand(options, out, deps())).toBe(0);
    expect(writeNames()).toEqual(['lambda:UpdateFunctionConfiguration']);
    expect(functionCalls()).toEqual(['lambda:GetFunction', 'lambda:UpdateFunctionConfiguration', 'lambda:GetFunction']);
    expect(inputOf('lambda:UpdateFunctionConfiguration')['Environment']).toEqual({ Variables: { PROCESSED_BUCKET: 'my-processed', SOURCE_PREFIX: 'uploads/', SNS_TOPIC_ARN: plan.fn.environment['SNS_TOPIC_ARN'], CONFIG_FINGERPRINT: plan.fn.environment['CONFIG_FINGERPRINT'] } });
    expect(out.out()).toMatch(/updated\s+Lambda function\s+ImageProcessor\s+\(environment\)/);
  });

  it('an --arch change goes through UpdateFunctionCode with Architectures (same code), then waits', async () => {
    existingDeployment();
    const pkg = fakePackage();
    expect(await deployCommand({ ...options, arch: 'x86_64' }, io(), deps(pkg))).toBe(0);
    expect(writeNames()).toEqual(['lambda:UpdateFunctionCode']);
    expect(functionCalls()).toEqual(['lambda:GetFunction', 'lambda:UpdateFunctionCode', 'lambda:GetFunction']);
    expect(inputOf('lambda:UpdateFunctionCode')).toEqual({ FunctionName: 'ImageProcessor', ZipFile: pkg.zip, Architectures: ['x86_64'] });
  });

  it('an update already in progress (LastUpdateStatus InProgress) is waited out with the SDK waiter before its own update', async () => {
    existingDeployment(OLD_CODE);
    const busy = { Configuration: { ...liveFunction(OLD_CODE), LastUpdateStatus: 'InProgress' as const }, Tags: OWNED };
    mocks.lambda.on(GetFunctionCommand)
      .resolvesOnce(busy)
      .resolvesOnce(busy)
      .resolvesOnce({ Configuration: liveFunction(OLD_CODE), Tags: OWNED })
      .resolves({ Configuration: liveFunction(), Tags: OWNED });
    expect((await onFakeClock(() => deployCommand(options, io(), deps()))).value).toBe(0);
    expect(functionCalls()).toEqual([
      'lambda:GetFunction',
      'lambda:GetFunction', 'lambda:GetFunction',
      'lambda:UpdateFunctionCode',
      'lambda:GetFunction',
    ]);
  });

  it('an update that fails (LastUpdateStatus Failed) stops the deploy with FUNCTION_FAILED and Lambda\'s reason', async () => {
    existingDeployment(OLD_CODE);
    mocks.lambda.on(GetFunctionCommand)
      .resolvesOnce({ Configuration: liveFunction(OLD_CODE), Tags: OWNED })
      .resolves({ Configuration: { ...liveFunction(), LastUpdateStatus: 'Failed', LastUpdateStatusReason: 'Lambda was unable to decrypt the environment variables' }, Tags: OWNED });
    const error = await deployCommand(options, io(), deps()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'FUNCTION_FAILED', message: 'the function ImageProcessor failed to become ready: Lambda was unable to decrypt the environment variables' });
    // Nothing after the function: no permission, no trigger.
    expect(writeNames()).toEqual(['lambda:UpdateFunctionCode']);
  });

  it('an Inactive function (idle for weeks) is updated at once, not waited for: only the update reactivates it', async () => {
    existingDeployment(OLD_CODE);
    mocks.lambda.on(GetFunctionCommand)
      .resolvesOnce({ Configuration: { ...liveFunction(OLD_CODE), State: 'Inactive', StateReasonCode: 'Idle' }, Tags: OWNED })
      .resolvesOnce({ Configuration: { ...liveFunction(), State: 'Pending', LastUpdateStatus: 'InProgress' }, Tags: OWNED })
      .resolves({ Configuration: { ...liveFunction(), State: 'Active', LastUpdateStatus: 'Successful' }, Tags: OWNED });
    expect((await onFakeClock(() => deployCommand(options, io(), deps()))).value).toBe(0);
    expect(functionCalls()).toEqual(['lambda:GetFunction', 'lambda:UpdateFunctionCode', 'lambda:GetFunction', 'lambda:GetFunction']);
  });

  it('an Inactive function whose update succeeded is done, even before Lambda reports it Active', async () => {
    existingDeployment(OLD_CODE);
    mocks.lambda.on(GetFunctionCommand)
      .resolvesOnce({ Configuration: { ...liveFunction(OLD_CODE), State: 'Inactive' }, Tags: OWNED })
      .resolves({ Configuration: { ...liveFunction(), State: 'Inactive', LastUpdateStatus: 'Successful' }, Tags: OWNED });
    expect(await deployCommand({ ...options, smokeTest: false }, io(), deps())).toBe(0);
    expect(functionCalls()).toEqual(['lambda:GetFunction', 'lambda:UpdateFunctionCode', 'lambda:GetFunction']);
  });
});

describe('deploy: a function it may not adopt', () => {
  it('refuses a function of the same name without its tag (NOT_OURS), changing nothing', async () => {
    existingDeployment();
    mocks.lambda.on(GetFunctionCommand).resolves({ Configuration: liveFunction(), Tags: { team: 'media' } });
    await expect(deployCommand(options, io(), deps())).rejects.toMatchObject({ code: 'NOT_OURS', message: expect.stringMatching(/^the Lambda function ImageProcessor exists but was not created by img-pipeline deploy/) });
    expect(writeNames()).toEqual([]);
  });

  it('refuses a function tagged for another function name', async () => {
    existingDeployment();
    mocks.lambda.on(GetFunctionCommand).resolves({ Configuration: liveFunction(), Tags: { [OWNER_TAG]: 'OtherProcessor' } });
    await expect(deployCommand(options, io(), deps())).rejects.toMatchObject({ code: 'NOT_OURS' });
  });

  it('a second deploy without lambda:ListTags (GetFunction answers with TagsError) says which permission is missing', async () => {
    existingDeployment();
    mocks.lambda.on(GetFunctionCommand).resolves({
      Configuration: liveFunction(),
      TagsError: { ErrorCode: 'AccessDeniedException', Message: 'not authorized to perform: lambda:ListTags' },
    });
    const error = await deployCommand(options, io(), deps()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ACCESS_DENIED', message: expect.stringMatching(/^access denied: lambda:ListTags on ImageProcessor \(GetFunction returned AccessDeniedException/) });
    expect(writeNames()).toEqual([]);
    expect(callNames()).toEqual(READS_OF_A_REDEPLOY.slice(0, READS_OF_A_REDEPLOY.indexOf('lambda:GetFunction') + 1));
  });
});

describe('deploy: the smoke test of an idle function', () => {
  it('an Inactive function refuses the first invocation while it goes Pending: deploy waits for Active and invokes again', async () => {
    existingDeployment();
    // https://github.com/remotion-dev/remotion/issues/1186
    mocks.lambda.on(InvokeCommand)
      .rejectsOnce(new ResourceConflictException({ message: 'The operation cannot be performed at this time. The function is currently in the following state: Pending', $metadata: {} }))
      .resolves({ StatusCode: 200, Payload: Buffer.from('{}') as never });
    mocks.lambda.on(GetFunctionCommand)
      .resolvesOnce({ Configuration: { ...liveFunction(), State: 'Inactive' }, Tags: OWNED })
      .resolvesOnce({ Configuration: { ...liveFunction(), State: 'Pending' }, Tags: OWNED })
      .resolves({ Configuration: liveFunction(), Tags: OWNED });
    const out = io();
    expect((await onFakeClock(() => deployCommand(options, out, deps()))).value).toBe(0);
    const names = callNames();
    expect(names.slice(names.indexOf('lambda:Invoke'), names.lastIndexOf('lambda:Invoke') + 1)).toEqual(['lambda:Invoke', 'lambda:GetFunction', 'lambda:GetFunction', 'lambda:Invoke']);
    expect(out.out()).toMatch(/passed\s+smoke test/);
  });
});
