// Stands in for `@aws-sdk/credential-provider-node` in the Lambda bundle (deploy's esbuild aliases it).
// Inside Lambda the execution role's credentials are always in the environment: the runtime sets
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN
// (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
// and the SDK's default chain would take them from its first link. Its other links (SSO, INI files, a
// credential process, web identity, container and instance metadata) never apply there, yet their dynamic
// imports split the bundle into 19 files (STS, SSO and sign-in clients each share code with the S3
// client); a cold start paid for resolving and linking them.
import { fromEnv } from '@aws-sdk/credential-provider-env';

/** The SDK's `defaultProvider`, as the Lambda runtime provides credentials: from the environment only. */
export function defaultProvider(init: Parameters<typeof fromEnv>[0] = {}): ReturnType<typeof fromEnv> {
  return fromEnv(init);
}
