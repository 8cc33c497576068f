/*
 * The commands `tscni doctor` and `tscni ipam leaks` print for a human to paste. Every value in them
 * comes from the node (file names, interface names, container IDs, rule text), and Linux allows an
 * interface named `$(reboot)`: each word is quoted so that pasting runs exactly that argv.
 */

const PLAIN = /^[A-Za-z0-9_./:@%+,=-]+$/;

/** `word` as one shell word: unchanged when it has only safe characters, else in single quotes. */
export function shellQuote(word: string): string {
  if (PLAIN.test(word) && !word.startsWith('=')) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** argv as a shell command line. */
export const shellCommand = (argv: readonly string[]): string => argv.map(shellQuote).join(' ');

/** `NAME=value` for a command's environment, the value quoted. */
export const shellAssign = (name: string, value: string): string => `${name}=${shellQuote(value)}`;
