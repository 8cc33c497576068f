import type { LabelSelector, Labels } from './objects.ts';

/**
 * Label selector matching, as Kubernetes defines it: every `matchLabels` pair and every
 * `matchExpressions` requirement must hold; an empty selector matches everything. (An absent
 * selector in a policy peer means "not given"; callers decide what that implies.)
 *
 * Public surface:
 *   matchesSelector(selector, labels): boolean
 */
export function matchesSelector(selector: LabelSelector, labels: Labels): boolean {
  for (const key in selector.matchLabels) {
    if (!Object.hasOwn(labels, key) || labels[key] !== selector.matchLabels[key]) return false;
  }
  for (const { key, operator, values } of selector.matchExpressions) {
    const has = Object.hasOwn(labels, key);
    switch (operator) {
      case 'In':
        if (!has || !values.includes(labels[key]!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}
