/**
 * The server-to-client `execPolicy/request` (docs/exec-policy.md, docs/protocol.md §9.3): a
 * command rule, or the server's approval policy, wants the client to approve a process start.
 * Declared once here; the server asks with it and the client library answers it.
 */

/** The params of `execPolicy/request`. */
export interface ExecPolicyRequestParams {
  /** The process the start would create, when the server knows it. */
  processId?: string;
  argv: string[];
  /** The commands judged (a split shell script gives several). */
  commands: string[][];
  /** The rule matches, in `codex execpolicy check`'s shape. */
  evaluation: unknown;
  /** Why approval is needed, e.g. `` `git push` requires approval: ask a human ``. */
  reason: string;
  /**
   * A prefix (`prefix_rule(pattern=…, decision="allow")`) the server would add for the rest of
   * the session if the client accepts it: later starts it covers run without a prompt.
   */
  proposedAmendment?: string[];
}

/** The result of `execPolicy/request`. Anything but `{decision: {type: "allow"}}` refuses. */
export interface ExecPolicyRequestResult {
  decision: { type: 'allow'; acceptAmendment?: true } | { type: 'deny'; reason?: string };
}
