import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';

/** The shared config and credentials files the SDK reads, from the same variables and defaults it uses. */
export function sharedFilePaths(env: Readonly<Record<string, string | undefined>>, home = homedir()): { config: string; credentials: string } {
  const expand = (path: string) => (path.startsWith('~/') ? join(home, path.slice(2)) : path);
  return {
    config: expand(env['AWS_CONFIG_FILE'] || join(home, '.aws', 'config')),
    credentials: expand(env['AWS_SHARED_CREDENTIALS_FILE'] || join(home, '.aws', 'credentials')),
  };
}

/**
 * The profile names an INI file declares: `[name]` in the credentials file, `[profile name]` (and
 * `[default]`) in the config file, as the SDK reads them. A missing file declares none.
 */
async function declaredProfiles(path: string, kind: 'config' | 'credentials'): Promise<Set<string>> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const names = new Set<string>();
  for (const [, header = ''] of text.matchAll(/^\s*\[([^\]]*)\]/gm)) {
    const section = header.trim();
    if (kind === 'credentials') names.add(section);
    else if (section === 'default') names.add(section);
    else {
      const profile = /^profile\s+(.+)$/.exec(section)?.[1];
      if (profile) names.add(profile.trim());
    }
  }
  return names;
}

/**
 * Fails with a ConfigError naming the profile and both files looked in when neither declares it. Checked
 * before any client exists: the SDK would otherwise warn over several lines, then report "no credentials".
 * The SDK's own INI loader is marked internal, so the section headers are read here.
 */
export async function assertProfileExists(profile: string, env: Readonly<Record<string, string | undefined>>, home?: string): Promise<void> {
  const paths = sharedFilePaths(env, home);
  const [config, credentials] = await Promise.all([declaredProfiles(paths.config, 'config'), declaredProfiles(paths.credentials, 'credentials')]);
  if (config.has(profile) || credentials.has(profile)) return;
  throw new ConfigError('PROFILE_NOT_FOUND', `the AWS profile "${profile}" does not exist: it is in neither ${paths.config} nor ${paths.credentials} (see "aws configure list-profiles")`);
}
