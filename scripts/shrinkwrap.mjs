// Publishing: the tarball carries npm-shrinkwrap.json, a copy of package-lock.json, so `npx img-pipeline`
// installs exactly the tested tree. Without it, a fresh install takes the newest AWS SDK 3.x, whose
// releases after early January 2027 require Node 22, and breaks on Node 20. `postpack` removes the copy.
import { copyFileSync, rmSync } from 'node:fs';

if (process.argv[2] === 'remove') rmSync('npm-shrinkwrap.json', { force: true });
else copyFileSync('package-lock.json', 'npm-shrinkwrap.json');
