import { CniError, ErrorCode } from './errors.ts';

/** Why `path` cannot be a path key of a config (absolute, no ".." segment, no NUL), or undefined. */
export function configPathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must be an absolute path';
  if (path.split('/').includes('..')) return 'must not contain a ".." segment';
  if (path.includes('\0')) return 'must not contain a NUL';
  return undefined;
}

/** `path` when it is a usable config path, else code 7 naming `key`. Every config path key of every plugin goes through here before any file is touched. */
export function configPath(key: string, path: string): string {
  const problem = configPathProblem(path);
  if (problem) throw new CniError(ErrorCode.invalidConfig, `invalid network config at ${key}: ${problem}`, `${key}: ${JSON.stringify(path.slice(0, 256))} ${problem}`);
  return path;
}
