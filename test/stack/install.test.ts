import assert from 'node:assert/strict';
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, it } from 'node:test';
import { commandPath } from '../../stack/install.ts';

const savedPath = process.env.PATH;
afterEach(() => {
  process.env.PATH = savedPath;
});

it('finds a command on PATH, by its absolute path', async () => {
  const sh = await commandPath('sh');
  assert.ok(sh && path.isAbsolute(sh) && sh.endsWith('/sh'), String(sh));
  assert.equal(await commandPath('encore-no-such-command'), undefined);
});

it("finds a server in /usr/sbin when PATH lacks it (Debian's non-root users)", async () => {
  const server = readdirSync('/usr/sbin').find((name) => {
    const file = path.join('/usr/sbin', name);
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile() && /^[a-z][a-z0-9-]*$/.test(name);
    } catch {
      return false;
    }
  });
  assert.ok(server, 'an executable in /usr/sbin to look for');
  process.env.PATH = '/nonexistent';
  assert.equal(await commandPath(server), path.join('/usr/sbin', server));
});
