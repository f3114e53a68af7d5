import {
  CreateRoleCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  PutRolePolicyCommand,
  UpdateAssumeRolePolicyCommand,
  type IAMClient,
} from '@aws-sdk/client-iam';
import { DeployError } from '../errors.js';
import { attempt, MISSING, must, parsePolicyDocument, samePolicy, stepResult, tagList, tagMap, type StepOptions, type StepResult, type StepTarget } from './aws.js';
import { isOwnedBy, OWNER_TAG, REGION_TAG, type DeployPlan } from './plan.js';

/** The role step, as a plan shows it and as it reports. */
export function describeRole(plan: DeployPlan): StepTarget {
  const { role } = plan;
  return {
    resource: 'IAM role', name: role.name, detail: `with inline policy ${role.policyName}`, arn: role.arn,
    settings: { trustPolicy: role.trustPolicy, policyName: role.policyName, policy: role.policy, tags: role.tags },
  };
}

/** Step 1: the execution role with its trust policy and one inline least-privilege policy. */
export async function ensureRole(iam: IAMClient, plan: DeployPlan, options: StepOptions): Promise<StepResult> {
  const { role } = plan;
  const target = describeRole(plan);
  const existing = await attempt('iam:GetRole', role.name, () => iam.send(new GetRoleCommand({ RoleName: role.name })), MISSING.iam);
  if (!existing?.Role) {
    if (options.dryRun) return stepResult(target, 'would create');
    await must('iam:CreateRole', role.name, () =>
      iam.send(new CreateRoleCommand({
        RoleName: role.name,
        AssumeRolePolicyDocument: JSON.stringify(role.trustPolicy),
        Description: `Execution role of the img-pipeline Lambda ${plan.fn.name}`,
        Tags: tagList(role.tags),
      })));
    await putPolicy(iam, plan);
    return stepResult(target, 'created');
  }
  const tags = tagMap(existing.Role.Tags);
  if (!isOwnedBy(tags, plan.fn.name)) {
    throw new DeployError('NOT_OURS', `the IAM role ${role.name} exists but was not created by img-pipeline deploy for ${plan.fn.name} (no ${OWNER_TAG}=${plan.fn.name} tag); choose another --function-name`);
  }
  // A role is global: replacing its policy with this region's ARNs would cut off the other region's function.
  const region = plan.account.region;
  const roleRegion = tags[REGION_TAG];
  if (roleRegion !== region) {
    throw new DeployError('NOT_OURS', `the IAM role ${role.name} belongs to the ${plan.fn.name} function ${roleRegion ? `in ${roleRegion}` : 'of another region (it has no ' + REGION_TAG + ' tag)'}, not in ${region}; deploy will not change it. Choose another --function-name`);
  }
  const changes: string[] = [];
  if (!samePolicy(parsePolicyDocument(existing.Role.AssumeRolePolicyDocument), role.trustPolicy)) {
    changes.push('trust policy');
    if (!options.dryRun) {
      await must('iam:UpdateAssumeRolePolicy', role.name, () => iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: role.name, PolicyDocument: JSON.stringify(role.trustPolicy) })));
    }
  }
  const current = await attempt('iam:GetRolePolicy', `${role.name}/${role.policyName}`, () => iam.send(new GetRolePolicyCommand({ RoleName: role.name, PolicyName: role.policyName })), MISSING.iam);
  if (!current || !samePolicy(parsePolicyDocument(current.PolicyDocument), role.policy)) {
    changes.push(`inline policy ${role.policyName}`);
    if (!options.dryRun) await putPolicy(iam, plan);
  }
  if (changes.length === 0) return stepResult(target, 'unchanged', '');
  return stepResult(target, options.dryRun ? 'would update' : 'updated', changes.join(', '));
}

async function putPolicy(iam: IAMClient, plan: DeployPlan): Promise<void> {
  const { role } = plan;
  await must('iam:PutRolePolicy', `${role.name}/${role.policyName}`, () =>
    iam.send(new PutRolePolicyCommand({ RoleName: role.name, PolicyName: role.policyName, PolicyDocument: JSON.stringify(role.policy) })));
}
