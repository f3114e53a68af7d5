import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertProfileExists, sharedFilePaths } from '../../../src/storage/aws-profile.js';
import { makeTempDir, removeTempDirs } from '../../helpers/temp.js';

afterAll(removeTempDirs);

describe('assertProfileExists', () => {
  it('accepts a profile from either file, the config file\'s as [profile name] or [default]', async () => {
    const dir = await makeTempDir();
    const env = { AWS_CONFIG_FILE: join(dir, 'config'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials') };
    await writeFile(env.AWS_CONFIG_FILE, '[default]\nregion = eu-west-1\n[profile work ]\nregion = eu-west-1\n[sso-session corp]\nsso_region = eu-west-1\n');
    await writeFile(env.AWS_SHARED_CREDENTIALS_FILE, '[backfill]\naws_access_key_id = A\n');
    for (const profile of ['default', 'work', 'backfill']) await expect(assertProfileExists(profile, env)).resolves.toBeUndefined();
    // A bare [name] in the config file is not a profile to the SDK, nor is an sso-session.
    await writeFile(env.AWS_CONFIG_FILE, '[work]\nregion = eu-west-1\n');
    await expect(assertProfileExists('work', env)).rejects.toMatchObject({ code: 'PROFILE_NOT_FOUND' });
    await expect(assertProfileExists('corp', env)).rejects.toMatchObject({ code: 'PROFILE_NOT_FOUND' });
  });

  it('names the profile and both files when neither exists', async () => {
    const home = await makeTempDir();
    await expect(assertProfileExists('nope', {}, home)).rejects.toMatchObject({
      kind: 'config',
      message: `the AWS profile "nope" does not exist: it is in neither ${join(home, '.aws', 'config')} nor ${join(home, '.aws', 'credentials')} (see "aws configure list-profiles")`,
    });
  });

  it('reads the files the SDK reads: the variables, with ~ expanded', () => {
    expect(sharedFilePaths({ AWS_CONFIG_FILE: '~/c', AWS_SHARED_CREDENTIALS_FILE: '/x/k' }, '/home/u')).toEqual({ config: '/home/u/c', credentials: '/x/k' });
  });
});
