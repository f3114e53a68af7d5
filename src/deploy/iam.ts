import {
  CreateRoleCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  PutRolePolicyCommand,
  UpdateAssumeRolePolicyCommand,
  type IAMClient,
} from '@aws-sdk/client-iam';
import { DeployError } from '../errors.js';
import { attempt, must, parsePolicyDocument, samePolicy, type StepOptions, type StepResult } from './aws.js';
import { OWNER_TAG, type DeployPlan } from './plan.js';

const MISSING = ['NoSuchEntityException', 'NoSuchEntity'];

/** Step 1: the execution role with its trust policy and one inline least-privilege policy. */
export async function ensureRole(iam: IAMClient, plan: DeployPlan, options: StepOptions): Promise<StepResult> {
  const { role } = plan;
  const result = (status: StepResult['status'], detail?: string): StepResult => ({ resource: 'IAM role', name: role.name, status, ...(detail ? { detail } : {}) });
  const existing = await attempt('iam:GetRole', role.name, () => iam.send(new GetRoleCommand({ RoleName: role.name })), MISSING);
  if (!existing?.Role) {
    if (options.dryRun) return result('would create', `with inline policy ${role.policyName}`);
    await must('iam:CreateRole', role.name, () =>
      iam.send(new CreateRoleCommand({
        RoleName: role.name,
        AssumeRolePolicyDocument: JSON.stringify(role.trustPolicy),
        Description: `Execution role of the img-pipeline Lambda ${plan.fn.name}`,
        Tags: Object.entries(plan.tags).map(([Key, Value]) => ({ Key, Value })),
      })));
    await putPolicy(iam, plan);
    return result('created', `with inline policy ${role.policyName}`);
  }
  if (!existing.Role.Tags?.some((t) => t.Key === OWNER_TAG)) {
    throw new DeployError('NOT_OURS', `the IAM role ${role.name} exists but was not created by img-pipeline deploy (no ${OWNER_TAG} tag); choose another --function-name`);
  }
  const changes: string[] = [];
  if (!samePolicy(parsePolicyDocument(existing.Role.AssumeRolePolicyDocument), role.trustPolicy)) {
    changes.push('trust policy');
    if (!options.dryRun) {
      await must('iam:UpdateAssumeRolePolicy', role.name, () => iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: role.name, PolicyDocument: JSON.stringify(role.trustPolicy) })));
    }
  }
  const current = await attempt('iam:GetRolePolicy', `${role.name}/${role.policyName}`, () => iam.send(new GetRolePolicyCommand({ RoleName: role.name, PolicyName: role.policyName })), MISSING);
  if (!current || !samePolicy(parsePolicyDocument(current.PolicyDocument), role.policy)) {
    changes.push(`inline policy ${role.policyName}`);
    if (!options.dryRun) await putPolicy(iam, plan);
  }
  if (changes.length === 0) return result('unchanged');
  return result(options.dryRun ? 'would update' : 'updated', changes.join(', '));
}

async function putPolicy(iam: IAMClient, plan: DeployPlan): Promise<void> {
  const { role } = plan;
  await must('iam:PutRolePolicy', `${role.name}/${role.policyName}`, () =>
    iam.send(new PutRolePolicyCommand({ RoleName: role.name, PolicyName: role.policyName, PolicyDocument: JSON.stringify(role.policy) })));
}
