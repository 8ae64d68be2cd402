export { Policy, strictest, type Decision, type Evaluation, type MatchOptions, type NetworkProtocol, type NetworkRule, type PrefixRule, type RuleMatch } from './policy.js';
export { loadPolicyFiles, policyFromSource, PolicyLoadError } from './load-policy.js';
export { checkDocument, formatCheck } from './check-output.js';
export { ExecPolicyEnforcer, ExecPolicyRefusal, type ExecPolicyAnswer, type ExecPolicyAsk, type ExecPolicyQuestion, type Verdict } from './enforce.js';
export { ShellSplitter, isSplittableShell } from './shell-split.js';
