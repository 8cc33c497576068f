import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { delegatedIpam, loadConfParsers } from '../../cli/conf-parsers.ts';
import { readConfFile } from '../../cli/conflist.ts';
import { ROOT } from '../support/paths.ts';

const CONF_DIR = join(ROOT, 'conf');

/** The examples in conf/ must stay true: every plugin (and its IPAM) accepts its config as written. */
describe('conf/ examples', () => {
  for (const file of readdirSync(CONF_DIR)) {
    it(`${file} parses with every plugin's own schema`, async () => {
      const list = readConfFile(join(CONF_DIR, file));
      expect(list.plugins.length).toBeGreaterThan(0);
      const types = list.plugins.flatMap((p) => [String(p.type), delegatedIpam(p) ?? []].flat());
      const parsers = await loadConfParsers(types);
      for (const plugin of list.plugins) {
        const conf = { ...plugin, name: list.name, cniVersion: list.cniVersion };
        const parse = parsers.get(String(plugin.type));
        expect(parse, `${plugin.type} is one of ours`).toBeDefined();
        parse!(conf);
        const ipam = delegatedIpam(plugin);
        if (ipam) parsers.get(ipam)!(conf);
      }
    });
  }
});
