export { checkDocument, formatCheck } from './check-output.js';
export { type DangerousCommandMatch, dangerousCommandMatch } from './dangerous-command.js';
export {
  type EnforceContext,
  type EnforceOutcome,
  type EnforcerOptions,
  type ExecPolicyAnswer,
  type ExecPolicyAsk,
  ExecPolicyEnforcer,
  type ExecPolicyQuestion,
  ExecPolicyRefusal,
  type Verdict,
} from './enforce.js';
export { loadPolicyFiles, loadRulesDirectory, PolicyLoadError, policyFromSource, type RulesDirectory } from './load-policy.js';
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
export {
  type ApprovalPolicy,
  BANNED_AMENDMENT_PREFIXES,
  type ExecRequirement,
  execRequirement,
  type GranularApproval,
  isBannedAmendment,
  parseApprovalPolicy,
  type RequirementInput,
  type RequirementMatch,
  type RequirementResult,
} from './requirement.js';
export { loadRequirementsFile, RequirementsLoadError, requirementsPolicyFromToml } from './requirements-toml.js';
export { isSplittableShell, ShellSplitter } from './shell-split.js';
