//! `codex exec --json`, read: the events Codex prints, one JSON object a line, turned back
//! into a log a person reads, and the task's commands counted, so that a task whose commands
//! could not run is not taken for a success.
//!
//! Events (codex-rs/exec, `exec_events.rs`): `thread.started`, `turn.started`,
//! `item.started` / `item.updated` / `item.completed` with an `item` whose `type` is
//! `agent_message`, `reasoning`, `command_execution` (`command`, `aggregated_output`,
//! `exit_code`, `status`), `file_change` (`changes`, `status`), `mcp_tool_call`, `web_search`,
//! `todo_list` or `error`; then `turn.completed` (`usage`) or `turn.failed` (`error`), and
//! `error`. Anything else is printed as it came.

use serde_json::Value;

/// What the task's commands did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commands {
    /// Commands Codex ran (shell commands and patches).
    pub run: u32,
    /// Of those, the ones that failed.
    pub failed: u32,
    /// Of those, the ones that failed because the sandbox could not start.
    pub sandbox_failed: u32,
    /// What bubblewrap said the first time.
    pub sandbox_error: Option<String>,
}

/// Reads Codex's `--json` output line by line.
#[derive(Debug, Default)]
pub struct Events {
    commands: Commands,
    /// Codex's sandbox is in use but cannot start: what bubblewrap said.
    sandbox_broken: Option<String>,
}

impl Events {
    /// For a task whose sandbox cannot start (what bubblewrap said), when it is in use.
    pub fn new(sandbox_broken: Option<String>) -> Self {
        Self {
            commands: Commands::default(),
            sandbox_broken,
        }
    }

    /// Whether a line can report Codex's own errors (a failed refresh among them): anything
    /// but an item other than an error item, whose text is a command's output or the model's.
    pub fn reports_errors(line: &str) -> bool {
        match serde_json::from_str::<Value>(line.trim_end()) {
            Ok(event)
                if event["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("item.")) =>
            {
                event["item"]["type"] == "error"
            }
            _ => true,
        }
    }

    /// The counts so far.
    pub fn commands(&self) -> &Commands {
        &self.commands
    }

    /// The log's text for one line of Codex's standard output (`None`: nothing to show), and
    /// the line counted.
    pub fn render(&mut self, line: &str) -> Option<String> {
        let Ok(event) = serde_json::from_str::<Value>(line.trim_end()) else {
            return Some(line.trim_end().to_owned());
        };
        match event["type"].as_str() {
            Some("thread.started" | "turn.started" | "item.updated") => None,
            Some("item.started") => {
                let item = &event["item"];
                (item["type"] == "command_execution")
                    .then(|| format!("$ {}", text(&item["command"])))
            }
            Some("item.completed") => self.completed(&event["item"]),
            Some("turn.completed") => {
                let usage = &event["usage"];
                Some(format!(
                    "Turn completed ({} input tokens, {} output tokens).",
                    usage["input_tokens"].as_u64().unwrap_or(0),
                    usage["output_tokens"].as_u64().unwrap_or(0)
                ))
            }
            Some("turn.failed") => {
                Some(format!("Turn failed: {}", text(&event["error"]["message"])))
            }
            Some("error") => Some(format!("Error: {}", text(&event["message"]))),
            _ => Some(line.trim_end().to_owned()),
        }
    }

    fn completed(&mut self, item: &Value) -> Option<String> {
        match item["type"].as_str() {
            Some("agent_message") => Some(text(&item["text"])),
            Some("reasoning") => None,
            Some("command_execution") => {
                let output = text(&item["aggregated_output"]);
                let code = item["exit_code"].as_i64();
                let failed = item["status"] == "failed" || code.is_some_and(|c| c != 0);
                self.count(failed, &output, false);
                let mut shown: String = output.lines().map(|l| format!("  {l}\n")).collect();
                shown.push_str(&match code {
                    Some(code) => format!("  (exit code {code})"),
                    None => format!("  ({})", text(&item["status"])),
                });
                Some(shown)
            }
            Some("file_change") => {
                let failed = item["status"] == "failed";
                self.count(failed, "", true);
                let changes: Vec<String> = item["changes"]
                    .as_array()
                    .map(|c| {
                        c.iter()
                            .map(|c| format!("{} {}", text(&c["kind"]), text(&c["path"])))
                            .collect()
                    })
                    .unwrap_or_default();
                Some(format!(
                    "Patch {}: {}",
                    text(&item["status"]),
                    changes.join(", ")
                ))
            }
            Some("mcp_tool_call") => Some(format!(
                "MCP {}.{}: {}",
                text(&item["server"]),
                text(&item["tool"]),
                text(&item["status"])
            )),
            Some("web_search") => Some(format!("Web search: {}", text(&item["query"]))),
            Some("todo_list") => {
                let steps: Vec<String> = item["items"]
                    .as_array()
                    .map(|i| {
                        i.iter()
                            .map(|s| {
                                let done = if s["completed"] == true { "x" } else { " " };
                                format!("  [{done}] {}", text(&s["text"]))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Some(format!("Plan:\n{}", steps.join("\n")))
            }
            Some("error") => Some(format!("Warning: {}", text(&item["message"]))),
            _ => Some(item.to_string()),
        }
    }

    /// Counts a command (`patch`: a file change, which reports no output). A failed command is
    /// the sandbox's when bubblewrap said so; a failed patch, when the sandbox in use is known
    /// not to start (a patch's failure says only that the file could not be written).
    fn count(&mut self, failed: bool, output: &str, patch: bool) {
        self.commands.run += 1;
        if !failed {
            return;
        }
        self.commands.failed += 1;
        let bwrap = output.lines().find(|l| l.starts_with("bwrap:"));
        let broken = self.sandbox_broken.as_deref().filter(|_| patch);
        if let Some(why) = bwrap.or(broken) {
            self.commands.sandbox_failed += 1;
            self.commands
                .sandbox_error
                .get_or_insert_with(|| why.trim().to_owned());
        }
    }
}

/// A string field of an event, "" when it is not one.
fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    /// Lines as Codex 0.171.0 printed them in the container tests.
    #[test]
    fn commands_are_shown_and_counted() {
        let mut events = Events::default();
        let lines = [
            r#"{"type":"thread.started","thread_id":"t"}"#,
            r#"{"type":"turn.started"}"#,
            r#"{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"/usr/bin/bash -lc 'touch x'","aggregated_output":"","exit_code":null,"status":"in_progress"}}"#,
            r#"{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"/usr/bin/bash -lc 'touch x'","aggregated_output":"bwrap: No permissions to create a new namespace, likely because the kernel does not allow non-privileged user namespaces.\n","exit_code":1,"status":"failed"}}"#,
            r#"{"type":"item.completed","item":{"id":"item_2","type":"command_execution","command":"ls","aggregated_output":"a\nb\n","exit_code":0,"status":"completed"}}"#,
            r#"{"type":"item.completed","item":{"id":"item_3","type":"agent_message","text":"Done."}}"#,
            r#"{"type":"turn.completed","usage":{"input_tokens":20,"output_tokens":2}}"#,
            "not json",
        ];
        let shown: Vec<String> = lines.iter().filter_map(|l| events.render(l)).collect();
        assert_eq!(
            shown,
            [
                "$ /usr/bin/bash -lc 'touch x'",
                "  bwrap: No permissions to create a new namespace, likely because the kernel does not allow non-privileged user namespaces.\n  (exit code 1)",
                "  a\n  b\n  (exit code 0)",
                "Done.",
                "Turn completed (20 input tokens, 2 output tokens).",
                "not json",
            ]
        );
        assert_eq!(
            events.commands(),
            &Commands {
                run: 2,
                failed: 1,
                sandbox_failed: 1,
                sandbox_error: Some("bwrap: No permissions to create a new namespace, likely because the kernel does not allow non-privileged user namespaces.".into()),
            }
        );
    }

    #[test]
    fn with_a_sandbox_that_cannot_start_failed_patches_are_the_sandboxs() {
        let mut events = Events::new(Some("bwrap: refused".into()));
        events.render(r#"{"type":"item.completed","item":{"id":"i","type":"file_change","changes":[{"path":"/w/a.txt","kind":"add"}],"status":"failed"}}"#);
        assert_eq!(events.commands().sandbox_failed, 1);
        assert_eq!(
            events.commands().sandbox_error.as_deref(),
            Some("bwrap: refused")
        );
        let mut events = Events::default();
        events.render(r#"{"type":"item.completed","item":{"id":"i","type":"file_change","changes":[],"status":"failed"}}"#);
        assert_eq!(
            (events.commands().failed, events.commands().sandbox_failed),
            (1, 0)
        );
    }

    #[test]
    fn a_failed_turn_says_why() {
        let mut events = Events::default();
        assert_eq!(
            events.render(
                r#"{"type":"turn.failed","error":{"message":"refresh token was already used"}}"#
            ),
            Some("Turn failed: refresh token was already used".to_owned())
        );
    }
}
