// `img-pipeline backfill` against mocked control planes (STS, Lambda, IAM, S3 Control) and the real loopback
// s3rver for the data (listings, state file, manifest, outputs, report). Mocked answers follow AWS's docs:
// CreateJob https://docs.aws.amazon.com/AmazonS3/latest/API/API_control_CreateJob.html (the same
// ClientRequestToken returns the same job), DescribeJob
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_control_DescribeJob.html, UpdateJobStatus
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_control_UpdateJobStatus.html, a bad job id
// (NoSuchJobException, "The specified job does not exist":
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/troubleshooting-batch-operations.html), PublishVersion
// https://docs.aws.amazon.com/lambda/latest/api/API_PublishVersion.html, and the completion report
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-examples-reports.html.
import { readFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { CreateRoleCommand, GetRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { GetAccountSettingsCommand, GetFunctionCommand, GetFunctionConcurrencyCommand, GetPolicyCommand, InvokeCommand, LambdaClient, PublishVersionCommand } from '@aws-sdk/client-lambda';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateJobCommand, DescribeJobCommand, ListJobsCommand, S3ControlClient, UpdateJobStatusCommand, type CreateJobCommandInput } from '@aws-sdk/client-s3-control';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseManifestLine } from '../../../src/backfill/manifest.js';
import { backfillCommand, type BackfillCommandOptions, type BackfillDeps } from '../../../src/cli/commands/backfill.js';
import { createAwsClients } from '../../../src/cli/commands/deploy.js';
import { reportFatal } from '../../../src/cli/main.js';
import { validateConfig } from '../../../src/config/load.js';
import { packageFingerprint } from '../../../src/deploy/package.js';
import { OWNER_TAG, REGION_TAG } from '../../../src/deploy/plan.js';
import { ImgPipelineError } from '../../../src/errors.js';
import { STATE_KEY } from '../../../src/pipeline/layout.js';
import { rejection } from '../../helpers/errors.js';
import { createBucket, getObject, listKeys, putObject, startS3Server, testClient, type S3Server } from '../../helpers/s3-server.js';
import { captureIo } from '../../helpers/io.js';
import { makeTempDir, removeTempDirs } from '../../helpers/temp.js';

const ACCOUNT = '123456789012';
const FUNCTION_ARN = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:ImageProcessor`;
const mocks = { sts: mockClient(STSClient), lambda: mockClient(LambdaClient), iam: mockClient(IAMClient), s3control: mockClient(S3ControlClient) };

let server: S3Server;
let s3: S3Client;
let fingerprint: string;

function awsError(name: string, message: string, status = 400): Error {
  return Object.assign(new Error(message), { name, $fault: 'client', $metadata: { httpStatusCode: status } });
}

/** Every control-plane call, in order, as "service:Command". */
function callNames(): string[] {
  const all = Object.entries(mocks).flatMap(([service, mock]) => mock.calls().map((call) => {
    const command = call.args[0] as unknown as { constructor: { name: string } };
    return { id: (call as unknown as { callId: number }).callId, name: `${service}:${command.constructor.name.replace(/Command$/, '')}` };
  }));
  return all.sort((a, b) => a.id - b.id).map((c) => c.name);
}

function deps(overrides: Partial<BackfillDeps> = {}): BackfillDeps {
  return {
    createClients: (region, profile) => ({ ...createAwsClients(region, profile), s3control: new S3ControlClient({ region: 'us-east-1' }) }),
    createS3: async () => testClient(server.endpoint),
    sleep: async () => undefined,
    interactive: () => false,
    ask: async () => 'n',
    ...overrides,
  };
}

const base: BackfillCommandOptions = { functionName: 'ImageProcessor', report: 'failed', priority: '10', region: 'us-east-1', yes: true };

/** The function as deploy left it: tagged, its environment, its S3 trigger permission on my-uploads. */
function deployedFunction(env: Record<string, string> = {}) {
  mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
  mocks.lambda.on(GetFunctionCommand).resolves({
    Configuration: {
      FunctionName: 'ImageProcessor', FunctionArn: FUNCTION_ARN, MemorySize: 1024, Timeout: 30, Architectures: ['arm64'], CodeSha256: 'c2hh',
      Environment: { Variables: { PROCESSED_BUCKET: 'my-processed', SOURCE_PREFIX: 'uploads/', CONFIG_FINGERPRINT: fingerprint, ...env } },
    },
    Tags: { [OWNER_TAG]: 'ImageProcessor' },
  });
  mocks.lambda.on(GetPolicyCommand).resolves({ Policy: JSON.stringify({ Statement: [{ Sid: 'img-pipeline-s3-invoke', Principal: { Service: 's3.amazonaws.com' }, Condition: { ArnLike: { 'AWS:SourceArn': 'arn:aws:s3:::my-uploads' } } }] }) });
  mocks.lambda.on(GetFunctionConcurrencyCommand).resolves({});
  mocks.lambda.on(GetAccountSettingsCommand).resolves({ AccountLimit: { ConcurrentExecutions: 1000, UnreservedConcurrentExecutions: 900 } });
  mocks.lambda.on(PublishVersionCommand).resolves({ FunctionName: 'ImageProcessor', FunctionArn: `${FUNCTION_ARN}:3`, Version: '3' });
  mocks.iam.on(GetRoleCommand).rejects(awsError('NoSuchEntityException', 'The role with name ImageProcessor-us-east-1-role-batch cannot be found.', 404));
  mocks.iam.on(CreateRoleCommand).resolves({});
  mocks.iam.on(PutRolePolicyCommand).resolves({});
  mocks.s3control.on(ListJobsCommand).resolves({ Jobs: [] });
}

/** The canary as the deployed handler answers it: writes the first key's outputs, says Succeeded, logs a REPORT line. */
function canarySucceeds() {
  mocks.lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
    const event = JSON.parse(Buffer.from(input.Payload).toString()) as { invocationId: string; tasks: { taskId: string; s3Key: string }[] };
    const key = decodeURIComponent(event.tasks[0]!.s3Key).replace(/^uploads\//, '').replace(/\.[^.]+$/, '.jpg');
    for (const variant of ['thumb', 'medium']) await putObject(s3, 'my-processed', `${variant}/${key}`, 'jpeg bytes');
    const response = { invocationSchemaVersion: '2.0', treatMissingKeysAs: 'PermanentFailure', invocationId: event.invocationId, results: [{ taskId: event.tasks[0]!.taskId, resultCode: 'Succeeded', resultString: 'processed' }] };
    return { StatusCode: 200, Payload: Buffer.from(JSON.stringify(response)), LogResult: Buffer.from('END RequestId: 1\nREPORT RequestId: 1\tDuration: 230.51 ms\tBilled Duration: 231 ms\tMemory Size: 1024 MB\n').toString('base64') };
  });
}

/** CreateJob as S3 Control answers it: a new id per new token, the same id for a token seen before. */
function jobsByToken(): Map<string, string> {
  const jobs = new Map<string, string>();
  mocks.s3control.on(CreateJobCommand).callsFake(async (input: CreateJobCommandInput) => {
    const token = input.ClientRequestToken!;
    if (!jobs.has(token)) jobs.set(token, `0000000${jobs.size + 1}-aaaa-bbbb-cccc-dddddddddddd`);
    return { JobId: jobs.get(token) };
  });
  return jobs;
}

const KEYS = ['uploads/a.png', 'uploads/with space+plus%25,comma.png', 'uploads/é/ü.png', 'uploads/notes.txt'];

beforeAll(async () => {
  server = await startS3Server();
  s3 = testClient(server.endpoint);
  fingerprint = await packageFingerprint(validateConfig({}, 'test'));
}, 30_000);

afterAll(async () => {
  s3.destroy();
  await server.stop();
  await removeTempDirs();
});

beforeEach(() => {
  for (const mock of Object.values(mocks)) mock.reset();
});

/** S3 times are whole seconds: an output counts as fresh only from the second after its source's. */
const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1100));

/** Empty buckets with the KEYS uploaded, and the destination's state file first when `state` is given. */
async function freshBuckets(state?: string): Promise<void> {
  await Promise.all(['my-uploads', 'my-processed'].map(async (b) => createBucket(s3, b).catch(() => undefined)));
  for (const bucket of ['my-uploads', 'my-processed']) {
    for (const { key } of await listKeys(s3, bucket)) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }
  if (state) await putObject(s3, 'my-processed', STATE_KEY, JSON.stringify({ tool: 'img-pipeline', fingerprint: state }));
  const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#369' } }).png().toBuffer();
  for (const key of KEYS) await putObject(s3, 'my-uploads', key, png);
}

function createJobInput(n = 0): CreateJobCommandInput {
  return mocks.s3control.commandCalls(CreateJobCommand)[n]!.args[0].input;
}

describe('backfill: the first run', () => {
  it('role, version, manifest upload, canary, CreateJob: exactly these calls, and a manifest Batch can read', async () => {
    await freshBuckets();
    deployedFunction();
    canarySucceeds();
    jobsByToken();
    const out = captureIo();
    expect(await backfillCommand('s3://my-uploads/uploads/', base, out, deps())).toBe(0);
    expect(callNames()).toEqual([
      'sts:GetCallerIdentity',
      'lambda:GetFunction', 'lambda:GetPolicy', 'lambda:GetFunctionConcurrency', 'lambda:GetAccountSettings',
      's3control:ListJobs',
      'iam:GetRole', 'iam:CreateRole', 'iam:PutRolePolicy',
      'lambda:PublishVersion',
      'lambda:Invoke',
      's3control:CreateJob',
    ]);
    const role = mocks.iam.commandCalls(CreateRoleCommand)[0]!.args[0].input;
    expect(role.RoleName).toBe('ImageProcessor-us-east-1-role-batch');
    expect(JSON.parse(role.AssumeRolePolicyDocument!)).toEqual({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'batchoperations.s3.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
    expect(role.Tags).toEqual([{ Key: OWNER_TAG, Value: 'ImageProcessor' }, { Key: REGION_TAG, Value: 'us-east-1' }]);
    const policy = JSON.parse(mocks.iam.commandCalls(PutRolePolicyCommand)[0]!.args[0].input.PolicyDocument!) as { Statement: { Action: unknown; Resource: unknown }[] };
    expect(policy.Statement.map((s) => [s.Action, s.Resource])).toEqual([
      ['lambda:InvokeFunction', [FUNCTION_ARN, `${FUNCTION_ARN}:*`]],
      // Least privilege: read the manifests only, write under the report prefix only (the Lambda invoke
      // example policy at https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-iam-role-policies.html).
      [['s3:GetObject', 's3:GetObjectVersion'], 'arn:aws:s3:::my-processed/.img-pipeline/backfill/*/manifest.csv'],
      ['s3:PutObject', 'arn:aws:s3:::my-processed/.img-pipeline/backfill/*/report/*'],
    ]);
    expect(mocks.lambda.commandCalls(PublishVersionCommand)[0]!.args[0].input).toEqual({ FunctionName: 'ImageProcessor', CodeSha256: 'c2hh', Description: 'img-pipeline backfill' });

    // The canary: a real schema 2.0 Batch event for the first manifest key, on the published version.
    const invoke = mocks.lambda.commandCalls(InvokeCommand)[0]!.args[0].input;
    expect(invoke).toMatchObject({ FunctionName: `${FUNCTION_ARN}:3`, InvocationType: 'RequestResponse', LogType: 'Tail' });
    expect(JSON.parse(Buffer.from(invoke.Payload as Uint8Array).toString())).toEqual({
      invocationSchemaVersion: '2.0', invocationId: 'img-pipeline-canary',
      job: { id: 'img-pipeline-canary', userArguments: { notify: 'false' } },
      tasks: [{ taskId: 'canary', s3Bucket: 'my-uploads', s3Key: 'uploads/a.png', s3VersionId: null }],
    });

    const input = createJobInput();
    const folder = /^\.img-pipeline\/backfill\/[0-9a-f]{16}\/$/;
    const manifestKey = /arn:aws:s3:::my-processed\/(.*)manifest\.csv$/.exec(input.Manifest!.Location!.ObjectArn!)![1]!;
    expect(manifestKey).toMatch(folder);
    const manifest = (await getObject(s3, 'my-processed', `${manifestKey}manifest.csv`)).toString();
    const head = (await listKeys(s3, 'my-processed', manifestKey)).map((k) => k.key);
    expect(input).toEqual({
      AccountId: ACCOUNT,
      ConfirmationRequired: false,
      Operation: { LambdaInvoke: { FunctionArn: `${FUNCTION_ARN}:3`, InvocationSchemaVersion: '2.0', UserArguments: { notify: 'false' } } },
      Manifest: { Spec: { Format: 'S3BatchOperations_CSV_20180820', Fields: ['Bucket', 'Key'] }, Location: { ObjectArn: `arn:aws:s3:::my-processed/${manifestKey}manifest.csv`, ETag: expect.stringMatching(/^"[0-9a-f]{32}"$/) } },
      Report: { Bucket: 'arn:aws:s3:::my-processed', Format: 'Report_CSV_20180820', Enabled: true, Prefix: `${manifestKey}report`, ReportScope: 'FailedTasksOnly' },
      Priority: 10,
      RoleArn: `arn:aws:iam::${ACCOUNT}:role/ImageProcessor-us-east-1-role-batch`,
      Description: `img-pipeline backfill of s3://my-uploads/uploads/ by ${FUNCTION_ARN}:3`,
      ClientRequestToken: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    // Keys URL-encoded, one comma per line, and they round-trip; the .txt is not an image.
    expect(manifest).toBe('my-uploads,uploads/a.png\nmy-uploads,uploads/with%20space%2Bplus%2525%2Ccomma.png\nmy-uploads,uploads/%C3%A9/%C3%BC.png\n');
    expect(manifest.trimEnd().split('\n').map(parseManifestLine).map((l) => l.key)).toEqual(KEYS.slice(0, 3));
    expect(head).toEqual([`${manifestKey}job-00000001-aaaa-bbbb-cccc-dddddddddddd.json`, `${manifestKey}manifest.csv`]);
    expect(out.err()).toMatch(/Estimate\s+3 objects/);
    expect(out.err()).toMatch(/231 ms per task: billed duration of the canary/);
    expect(out.err()).toMatch(/Watch it with: img-pipeline backfill --status 00000001-aaaa-bbbb-cccc-dddddddddddd --wait/);
  });

  it('a rerun with the same manifest asks with the same token and gets the same job: no second job', async () => {
    await freshBuckets();
    deployedFunction();
    canarySucceeds();
    const jobs = jobsByToken();
    // --force: every object is in both manifests, though the first canary wrote outputs.
    const first = captureIo();
    expect(await backfillCommand('s3://my-uploads/uploads/', { ...base, force: true, json: true }, first, deps())).toBe(0);
    expect(await backfillCommand('s3://my-uploads/uploads/', { ...base, force: true, json: true }, captureIo(), deps())).toBe(0);
    expect(createJobInput(1).ClientRequestToken).toBe(createJobInput(0).ClientRequestToken);
    expect(createJobInput(1).Manifest!.Location!.ETag).toBe(createJobInput(0).Manifest!.Location!.ETag);
    expect(jobs.size).toBe(1);
    expect(JSON.parse(first.out())).toMatchObject({ command: 'backfill', job: { id: '00000001-aaaa-bbbb-cccc-dddddddddddd' }, manifest: { count: 3 } });
  });

  it('a rerun while the job is still going finds it (ListJobs) and creates nothing', async () => {
    await freshBuckets();
    deployedFunction();
    mocks.s3control.on(ListJobsCommand).resolves({ Jobs: [{ JobId: 'running-job-1', Status: 'Active', Description: `img-pipeline backfill of s3://my-uploads/uploads/ by ${FUNCTION_ARN}:3` }] });
    const out = captureIo();
    expect(await backfillCommand('s3://my-uploads/uploads/', base, out, deps())).toBe(0);
    expect(callNames()).not.toContain('s3control:CreateJob');
    expect(callNames()).not.toContain('lambda:Invoke');
    expect(out.err()).toMatch(/already under way: job running-job-1 \(Active\)/);
  });

  it('nothing to do: no job, exit 0', async () => {
    await freshBuckets(fingerprint);
    await nextSecond();
    for (const key of ['a', 'with space+plus%25,comma', 'é/ü']) for (const v of ['thumb', 'medium']) await putObject(s3, 'my-processed', `${v}/${key}.jpg`, 'x');
    deployedFunction();
    const out = captureIo();
    expect(await backfillCommand('s3://my-uploads/uploads/', base, out, deps())).toBe(0);
    expect(callNames()).not.toContain('iam:CreateRole');
    expect(out.err()).toMatch(/Nothing to do/);
  });

  it('--dry-run reads, counts and estimates; writes nothing, creates nothing', async () => {
    await freshBuckets();
    deployedFunction();
    const out = captureIo();
    expect(await backfillCommand('s3://my-uploads/uploads/', { ...base, yes: false, dryRun: true }, out, deps())).toBe(0);
    expect(callNames()).toEqual(['sts:GetCallerIdentity', 'lambda:GetFunction', 'lambda:GetPolicy', 'lambda:GetFunctionConcurrency', 'lambda:GetAccountSettings', 's3control:ListJobs']);
    expect(await listKeys(s3, 'my-processed')).toEqual([]);
    expect(out.err()).toMatch(/at concurrency 900/);
    expect(out.err()).toMatch(/Plan \(dry run: nothing was written\)/);
  });

  it('a first key with control characters is never printed raw (the canary step, the dry-run plan)', async () => {
    await freshBuckets();
    // Sorts before uploads/a.png, so it is the canary's key.
    await putObject(s3, 'my-uploads', 'uploads/\u001b[2Jx.png', await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).png().toBuffer());
    deployedFunction();
    const dry = captureIo();
    expect(await backfillCommand('s3://my-uploads/uploads/', { ...base, yes: false, dryRun: true }, dry, deps())).toBe(0);
    canarySucceeds();
    jobsByToken();
    const real = captureIo();
    expect(await backfillCommand('s3://my-uploads/uploads/', base, real, deps())).toBe(0);
    for (const out of [dry, real]) {
      expect(out.err()).not.toContain('\u001b');
      expect(out.err()).toContain('uploads/\\x1b[2Jx.png');
    }
  });

  it('Ctrl-C while listing: a manifest cut short never becomes a job; exit 130', async () => {
    await freshBuckets();
    deployedFunction();
    const controller = new AbortController();
    controller.abort();
    const out = { ...captureIo(), signal: controller.signal };
    expect(await backfillCommand('s3://my-uploads/uploads/', base, out, deps())).toBe(130);
    expect(callNames().filter((n) => /Create|Put|Publish|Invoke/.test(n))).toEqual([]);
    expect(await listKeys(s3, 'my-processed')).toEqual([]);
    expect(out.err()).toMatch(/Interrupted while listing: nothing was created/);
  });

  it('the canary failing stops the backfill with the function\'s own error; no job', async () => {
    await freshBuckets();
    deployedFunction();
    mocks.lambda.on(InvokeCommand).resolves({ StatusCode: 200, FunctionError: 'Unhandled', Payload: Buffer.from(JSON.stringify({ errorType: 'Runtime.ImportModuleError', errorMessage: "Cannot find module 'sharp'" })) as never });
    const error = await rejection(backfillCommand('s3://my-uploads/uploads/', base, captureIo(), deps()), ImgPipelineError);
    expect(error).toMatchObject({ code: 'CANARY_FAILED', message: expect.stringMatching(/Runtime\.ImportModuleError: Cannot find module 'sharp'\. No job was created/) });
    expect(callNames()).not.toContain('s3control:CreateJob');
  });
});

describe('backfill: refusals (exit 2, nothing created)', () => {
  it('a source outside what the function was deployed for', async () => {
    deployedFunction();
    for (const source of ['s3://other-bucket/uploads/', 's3://my-uploads/elsewhere/']) {
      const error = await rejection(backfillCommand(source, base, captureIo(), deps()), ImgPipelineError);
      expect(error).toMatchObject({ code: 'BACKFILL_REFUSED', message: expect.stringMatching(/ImageProcessor was deployed for s3:\/\/my-uploads\/uploads\/, and its role may read nothing else/) });
      expect(reportFatal(error, new PassThrough(), false)).toBe(2);
    }
    expect(callNames().filter((n) => !/:(Get|ListJobs)/.test(n))).toEqual([]);
  });

  it('a destination whose state file records another fingerprint, unless --force', async () => {
    await freshBuckets();
    await putObject(s3, 'my-processed', STATE_KEY, JSON.stringify({ tool: 'img-pipeline', fingerprint: '0123456789abcdef' }));
    deployedFunction();
    const error = await rejection(backfillCommand('s3://my-uploads/uploads/', base, captureIo(), deps()), ImgPipelineError);
    expect(error).toMatchObject({ code: 'BACKFILL_REFUSED', message: expect.stringMatching(/records outputs made with another config \(fingerprint 0123456789abcdef/) });
    expect(reportFatal(error, new PassThrough(), false)).toBe(2);
    canarySucceeds();
    jobsByToken();
    expect(await backfillCommand('s3://my-uploads/uploads/', { ...base, force: true }, captureIo(), deps())).toBe(0);
    // The state now records the function's config, so later runs count the job's outputs as fresh.
    expect(JSON.parse((await getObject(s3, 'my-processed', STATE_KEY)).toString())).toMatchObject({ fingerprint });
  });

  it('a config other than the deployed one, and no TTY without --yes', async () => {
    deployedFunction({ CONFIG_FINGERPRINT: 'ffffffffffffffff' });
    const mismatch = await rejection(backfillCommand('s3://my-uploads/uploads/', base, captureIo(), deps()), ImgPipelineError);
    expect(mismatch).toMatchObject({ code: 'CONFIG_MISMATCH', kind: 'config' });
    const noTty = await rejection(backfillCommand('s3://my-uploads/uploads/', { ...base, yes: false }, captureIo(), deps()), ImgPipelineError);
    expect(noTty).toMatchObject({ code: 'CONFIRMATION_NEEDED', kind: 'config' });
    expect(reportFatal(noTty, new PassThrough(), false)).toBe(2);
  });

  it('bad arguments are refused before any AWS call: a source with --status, a bad job id, no source, a bad function name, no TTY', async () => {
    // No mock answers at all: a call made before the check would fail as a credentials error instead.
    const refusals = [
      [() => backfillCommand('s3://my-uploads/uploads/', { ...base, status: 'job-12345' }, captureIo(), deps()), /--status: takes a job id, not a source/],
      [() => backfillCommand('s3://my-uploads/uploads/', { ...base, cancel: 'job-12345' }, captureIo(), deps()), /--cancel: takes a job id, not a source/],
      [() => backfillCommand(undefined, { ...base, status: 'bad id!' }, captureIo(), deps()), /--status: expected a Batch Operations job id/],
      [() => backfillCommand(undefined, base, captureIo(), deps()), /the source: expected s3:\/\/bucket\/prefix\/, received nothing/],
      [() => backfillCommand('s3://my-uploads/uploads/', { ...base, functionName: 'bad name!' }, captureIo(), deps()), /bad name!/],
      [() => backfillCommand('s3://my-uploads/uploads/', { ...base, yes: false }, captureIo(), deps()), /pass --yes/],
    ] as const;
    // Thunks, each started when awaited: a rejection never waits unhandled while an earlier one is checked.
    for (const [start, message] of refusals) {
      const error = await rejection(start(), ImgPipelineError);
      expect(error.message).toMatch(message);
      expect(reportFatal(error, new PassThrough(), false)).toBe(2);
    }
    expect(callNames()).toEqual([]);
  });
});

describe('backfill --status, --wait, --cancel', () => {
  const job = (fields: Record<string, unknown>) => ({ Job: { JobId: 'job-1', Report: { Bucket: 'arn:aws:s3:::my-processed', Prefix: '.img-pipeline/backfill/0123456789abcdef/report', Enabled: true, ReportScope: 'FailedTasksOnly' as const }, ...fields } });

  it('status of a running job: one DescribeJob, progress, exit 0', async () => {
    mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
    mocks.s3control.on(DescribeJobCommand).resolves(job({ Status: 'Active', ProgressSummary: { TotalNumberOfTasks: 1000, NumberOfTasksSucceeded: 400, NumberOfTasksFailed: 2 } }));
    const out = captureIo();
    expect(await backfillCommand(undefined, { ...base, status: 'job-1' }, out, deps())).toBe(0);
    expect(mocks.s3control.commandCalls(DescribeJobCommand)[0]!.args[0].input).toEqual({ AccountId: ACCOUNT, JobId: 'job-1' });
    expect(out.err()).toBe('Job job-1: Active, 400 succeeded, 2 failed of 1000\n');
  });

  it('--wait polls until the end, reads the completion report, prints the failed keys; exit 1 when some failed', async () => {
    await freshBuckets();
    const folder = '.img-pipeline/backfill/0123456789abcdef/report/job-job-1/';
    await putObject(s3, 'my-processed', `${folder}manifest.json`, JSON.stringify({ Format: 'Report_CSV_20180820', ReportCreationDate: '2026-12-01T19:00:00.000Z', Results: [{ TaskExecutionStatus: 'failed', Bucket: 'my-processed', MD5Checksum: 'x', Key: `${folder}results/abc.csv` }], ReportSchema: 'Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage' }));
    await putObject(s3, 'my-processed', `${folder}results/abc.csv`, 'my-uploads,uploads/bad%20one.jpg,,failed,200,PermanentFailure,"INPUT_CORRUPT: not a JPEG, ""truncated"""\n');
    mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
    mocks.s3control.on(DescribeJobCommand)
      .resolvesOnce(job({ Status: 'Preparing' }))
      .resolvesOnce(job({ Status: 'Active', ProgressSummary: { TotalNumberOfTasks: 3, NumberOfTasksSucceeded: 1, NumberOfTasksFailed: 0 } }))
      .resolves(job({ Status: 'Complete', ProgressSummary: { TotalNumberOfTasks: 3, NumberOfTasksSucceeded: 2, NumberOfTasksFailed: 1 } }));
    const out = captureIo();
    expect(await backfillCommand(undefined, { ...base, status: 'job-1', wait: true, json: true }, out, deps())).toBe(1);
    expect(mocks.s3control.commandCalls(DescribeJobCommand)).toHaveLength(3);
    const document = JSON.parse(out.out()) as Record<string, unknown>;
    expect(document).toMatchObject({
      command: 'backfill',
      job: { id: 'job-1', status: 'Complete', succeeded: 2, failed: 1, total: 3 },
      report: { location: `s3://my-processed/${folder}manifest.json`, failedCount: 1, failed: [{ bucket: 'my-uploads', key: 'uploads/bad one.jpg', status: 'failed', errorCode: 'PermanentFailure', httpStatus: '200', message: 'INPUT_CORRUPT: not a JPEG, "truncated"' }] },
    });
  });

  it('a job that ends Failed prints its FailureReasons; exit 2', async () => {
    mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
    mocks.s3control.on(DescribeJobCommand).resolves(job({
      Status: 'Failed', StatusUpdateReason: 'Job failed', ProgressSummary: { TotalNumberOfTasks: 2000, NumberOfTasksSucceeded: 100, NumberOfTasksFailed: 1100 },
      FailureReasons: [{ FailureCode: 'Job Task failure threshold', FailureReason: 'Task failure rate exceeded 50% after 1000 tasks' }],
    }));
    const out = captureIo();
    expect(await backfillCommand(undefined, { ...base, status: 'job-1' }, out, deps())).toBe(2);
    expect(out.err()).toMatch(/Job job-1: Failed, 100 succeeded, 1100 failed of 2000\n {2}reason: Job failed\n {2}Job Task failure threshold: Task failure rate exceeded 50% after 1000 tasks/);
  });

  it('a job id S3 Control does not know: NO_SUCH_JOB, exit 2', async () => {
    mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
    mocks.s3control.on(DescribeJobCommand).rejects(awsError('NoSuchJobException', 'The specified job does not exist', 404));
    const error = await rejection(backfillCommand(undefined, { ...base, status: 'nope-1' }, captureIo(), deps()), ImgPipelineError);
    expect(error).toMatchObject({ code: 'NO_SUCH_JOB' });
    expect(reportFatal(error, new PassThrough(), false)).toBe(2);
  });

  it('cancel: UpdateJobStatus Cancelled; Ctrl-C during --wait stops watching, not the job', async () => {
    mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/dev` });
    mocks.s3control.on(UpdateJobStatusCommand).resolves({ JobId: 'job-1', Status: 'Cancelling' });
    const out = captureIo();
    expect(await backfillCommand(undefined, { ...base, cancel: 'job-1' }, out, deps())).toBe(0);
    expect(mocks.s3control.commandCalls(UpdateJobStatusCommand)[0]!.args[0].input).toEqual({ AccountId: ACCOUNT, JobId: 'job-1', RequestedJobStatus: 'Cancelled', StatusUpdateReason: 'cancelled with img-pipeline backfill --cancel' });
    expect(out.err()).toMatch(/Job job-1: Cancelling/);

    const controller = new AbortController();
    mocks.s3control.on(DescribeJobCommand).resolves(job({ Status: 'Active', ProgressSummary: { TotalNumberOfTasks: 10, NumberOfTasksSucceeded: 1, NumberOfTasksFailed: 0 } }));
    const watching = { ...captureIo(), signal: controller.signal };
    const code = await backfillCommand(undefined, { ...base, status: 'job-1', wait: true }, watching, deps({ sleep: async () => controller.abort() }));
    expect(code).toBe(130);
    expect(mocks.s3control.commandCalls(UpdateJobStatusCommand)).toHaveLength(1);
    expect(watching.err()).toMatch(/Stopped watching; the job goes on \(Active\)\. Watch it again with: img-pipeline backfill --status job-1 --wait/);
  });
});

describe('backfill --manifest-only', () => {
  it('writes the manifest of what run would process into --out, with no control-plane call', async () => {
    await freshBuckets(fingerprint);
    await nextSecond();
    for (const v of ['thumb', 'medium']) await putObject(s3, 'my-processed', `${v}/a.jpg`, 'x');
    const dir = await makeTempDir();
    const out = { ...captureIo(), cwd: dir };
    expect(await backfillCommand('s3://my-uploads/uploads/', { ...base, out: 's3://my-processed/', manifestOnly: 'manifest.csv' }, out, deps())).toBe(0);
    expect(callNames()).toEqual([]);
    expect(await readFile(`${dir}/manifest.csv`, 'utf8')).toBe('my-uploads,uploads/with%20space%2Bplus%2525%2Ccomma.png\nmy-uploads,uploads/%C3%A9/%C3%BC.png\n');
    expect(out.err()).toMatch(/Manifest\s+2 objects .* written to .*manifest\.csv; 1 already up to date/);
  });
});
