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
import { isOwnedBy, OWNER_TAG, REGION_TAG, type DeployPlan, type PolicyDocument } from './plan.js';

/** The role step, as a plan shows it and as it reports. */
export function describeRole(plan: DeployPlan): StepTarget {
  const { role } = plan;
  return {
    resource: 'IAM role', name: role.name, detail: `with inline policy ${role.policyName}`, arn: role.arn,
    settings: { trustPolicy: role.trustPolicy, policyName: role.policyName, policy: role.policy, tags: role.tags },
  };
}

/** A role deploy or backfill keeps: its trust, one inline policy, and the tags that say whose it is. */
export interface RoleSpec {
  name: string;
  policyName: string;
  description: string;
  trustPolicy: PolicyDocument;
  policy: PolicyDocument;
  /** OWNER_TAG and REGION_TAG at least. */
  tags: Record<string, string>;
  /** The function name OWNER_TAG must carry for the role to be ours. */
  owner: string;
  /** The region REGION_TAG must carry: a role is global, and its policy names one region's ARNs. */
  region: string;
  /** The command that creates it, for messages. */
  madeBy: 'deploy' | 'backfill';
}

/** Step 1: the execution role with its trust policy and one inline least-privilege policy. */
export async function ensureRole(iam: IAMClient, plan: DeployPlan, options: StepOptions): Promise<StepResult> {
  const spec: RoleSpec = { ...plan.role, description: `Execution role of the img-pipeline Lambda ${plan.fn.name}`, owner: plan.fn.name, region: plan.account.region, madeBy: 'deploy' };
  return ensureRoleSpec(iam, spec, describeRole(plan), options);
}

/** Creates the role, or puts back its trust and inline policy where they differ; refuses a role that is not ours. */
export async function ensureRoleSpec(iam: IAMClient, role: RoleSpec, target: StepTarget, options: StepOptions): Promise<StepResult> {
  const existing = await attempt('iam:GetRole', role.name, () => iam.send(new GetRoleCommand({ RoleName: role.name })), MISSING.iam);
  if (!existing?.Role) {
    if (options.dryRun) return stepResult(target, 'would create');
    await must('iam:CreateRole', role.name, () =>
      iam.send(new CreateRoleCommand({
        RoleName: role.name,
        AssumeRolePolicyDocument: JSON.stringify(role.trustPolicy),
        Description: role.description,
        Tags: tagList(role.tags),
      })));
    await putPolicy(iam, role);
    return stepResult(target, 'created');
  }
  const tags = tagMap(existing.Role.Tags);
  if (!isOwnedBy(tags, role.owner)) {
    throw new DeployError('NOT_OURS', `the IAM role ${role.name} exists but was not created by img-pipeline ${role.madeBy} for ${role.owner} (no ${OWNER_TAG}=${role.owner} tag); choose another --function-name`);
  }
  // A role is global: replacing its policy with this region's ARNs would cut off the other region's function.
  const roleRegion = tags[REGION_TAG];
  if (roleRegion !== role.region) {
    throw new DeployError('NOT_OURS', `the IAM role ${role.name} belongs to the ${role.owner} function ${roleRegion ? `in ${roleRegion}` : 'of another region (it has no ' + REGION_TAG + ' tag)'}, not in ${role.region}; ${role.madeBy} will not change it. Choose another --function-name`);
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
    if (!options.dryRun) await putPolicy(iam, role);
  }
  if (changes.length === 0) return stepResult(target, 'unchanged', '');
  return stepResult(target, options.dryRun ? 'would update' : 'updated', changes.join(', '));
}

async function putPolicy(iam: IAMClient, role: RoleSpec): Promise<void> {
  await must('iam:PutRolePolicy', `${role.name}/${role.policyName}`, () =>
    iam.send(new PutRolePolicyCommand({ RoleName: role.name, PolicyName: role.policyName, PolicyDocument: JSON.stringify(role.policy) })));
}
