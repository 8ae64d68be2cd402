export { checkDocument, formatCheck } from './check-output.js';
export {
  type ExecPolicyAnswer,
  type ExecPolicyAsk,
  ExecPolicyEnforcer,
  type ExecPolicyQuestion,
  ExecPolicyRefusal,
  type Verdict,
} from './enforce.js';
export { loadPolicyFiles, PolicyLoadError, policyFromSource } from './load-policy.js';
export {
  type Decision,
  type Evaluation,
  type MatchOptions,
  type NetworkProtocol,
  type NetworkRule,
  Policy,
  type PrefixRule,
  type RuleMatch,
  strictest,
} from './policy.js';
export { isSplittableShell, ShellSplitter } from './shell-split.js';
