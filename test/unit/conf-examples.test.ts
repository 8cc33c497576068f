import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readConfFile } from '../../cli/conflist.ts';
import { delegatedIpam, loadUsedPlugins } from '../../cli/doctor.ts';
import { ROOT } from '../support/paths.ts';

const CONF_DIR = join(ROOT, 'conf');

/** The examples in conf/ must stay true: every plugin (and its IPAM) accepts its config as written. */
describe('conf/ examples', () => {
  for (const file of readdirSync(CONF_DIR)) {
    it(`${file} passes every plugin's own validate`, async () => {
      const list = readConfFile(join(CONF_DIR, file));
      expect(list.plugins.length).toBeGreaterThan(0);
      const plugins = await loadUsedPlugins([list]);
      for (const plugin of list.plugins) {
        const conf = { ...plugin, name: list.name, cniVersion: list.cniVersion };
        const impl = plugins.get(String(plugin.type));
        expect(impl, `${plugin.type} is one of ours`).toBeDefined();
        impl!.validate(conf);
        const ipam = delegatedIpam(plugin, impl);
        if (ipam) plugins.get(ipam)!.validate(conf);
      }
    });
  }
});
