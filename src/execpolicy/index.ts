export { Policy, strictest, type Decision, type Evaluation, type MatchOptions, type NetworkProtocol, type NetworkRule, type PrefixRule, type RuleMatch } from './policy.js';
export { loadPolicyFiles, policyFromSource, PolicyLoadError } from './load-policy.js';
export { checkDocument, formatCheck } from './check-output.js';
