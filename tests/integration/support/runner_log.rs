//! A step's output read the way the runner reads it (actions/runner,
//! `ActionCommandManager.TryProcessCommand` and `ActionCommand.TryParseV2`/`TryParse`): each
//! line (ended by `\n`, `\r\n` or a lone `\r`), after leading white space, may be a
//! `::command props::data` workflow command, or else hold a legacy `##[command props]data`
//! anywhere (the first `##[` of the line), the name one the runner registers, in any case;
//! `::stop-commands::TOKEN` (or `##[stop-commands]TOKEN`) stops all processing until a command
//! named TOKEN, in either form; `::add-mask::VALUE` adds a secret that is replaced by `***` in
//! every later line, and is not shown itself.
//!
//! How it differs from the runner: it acts on the commands that matter to what a test checks
//! (masks, stop and resume) and records the others; it shows every processed
//! command but a mask as a line of the log (the runner echoes them only in debug mode), which
//! can only show more; it masks a value only as given (the runner's masker also masks some
//! encodings of it, which can only hide more); and
//! it reads stdout and then stderr, where the runner interleaves them as they come (the
//! action prints every command to stdout).

/// A command the runner processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// Its name (`add-mask`, `save-state`, …).
    pub command: String,
    /// Its properties, as written (`name=x`).
    pub properties: String,
    /// Its data, unescaped.
    pub data: String,
}

/// What the log shows, and which commands were processed.
#[derive(Debug, Default)]
pub struct RunnerLog {
    /// The log as shown, masks applied.
    pub shown: String,
    /// Every command processed, in order.
    pub processed: Vec<Processed>,
    masks: Vec<String>,
    stopped_by: Option<String>,
}

/// The commands the runner registers (actions/runner, `ActionCommandManager.Initialize` and
/// the extensions it loads): a name outside them is no command, in either form. Compared
/// without case; while commands are stopped, the stop token is registered too.
const REGISTERED: &[&str] = &[
    "stop-commands",
    "set-env",
    "set-output",
    "save-state",
    "add-path",
    "add-mask",
    "add-matcher",
    "remove-matcher",
    "warning",
    "error",
    "notice",
    "debug",
    "group",
    "endgroup",
    "echo",
];

fn registered(name: &str, token: Option<&str>) -> bool {
    REGISTERED.iter().any(|r| r.eq_ignore_ascii_case(name))
        || token.is_some_and(|t| t.eq_ignore_ascii_case(name))
}

/// `TryParseV2`'s data: `%0D`, `%0A`, `%25`; its properties also `%3A`, `%2C`.
fn unescape_data(data: &str) -> String {
    data.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

/// `TryParse`'s (legacy) data and properties: `%3B`, `%0D`, `%0A`, `%5D`, then `%25`.
fn unescape_legacy(data: &str) -> String {
    data.replace("%3B", ";")
        .replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%5D", "]")
        .replace("%25", "%")
}

/// `::command props::data` after leading white space (`TryParseV2`), else the first
/// `##[command props]data` anywhere in the line (`TryParse`), as the runner tries them; the
/// name must be registered (`token`: the stop token, while commands are stopped).
fn parse(line: &str, token: Option<&str>) -> Option<Processed> {
    parse_v2(line, token).or_else(|| parse_legacy(line, token))
}

fn parse_v2(line: &str, token: Option<&str>) -> Option<Processed> {
    let rest = line.trim_start().strip_prefix("::")?;
    let (head, data) = rest.split_once("::")?;
    let (command, properties) = head.split_once(' ').unwrap_or((head, ""));
    registered(command, token).then(|| Processed {
        command: command.to_owned(),
        properties: properties.to_owned(),
        data: unescape_data(data),
    })
}

fn parse_legacy(line: &str, token: Option<&str>) -> Option<Processed> {
    // Only the first `##[` is tried.
    let at = line.find("##[")?;
    let rest = &line[at + 3..];
    let (head, data) = rest.split_once(']')?;
    let (command, properties) = head.split_once(' ').unwrap_or((head, ""));
    registered(command, token).then(|| Processed {
        command: command.to_owned(),
        properties: properties.to_owned(),
        data: unescape_legacy(data),
    })
}

impl RunnerLog {
    /// Reads a stage's stdout, then its stderr.
    pub fn read(stdout: &str, stderr: &str) -> Self {
        let mut log = Self::default();
        // .NET's ReadLine ends a line at `\n`, `\r\n` or a lone `\r`.
        let lines = |text: &str| {
            let text = text.replace("\r\n", "\n");
            let text = text.strip_suffix(['\n', '\r']).unwrap_or(&text);
            text.split(['\n', '\r'])
                .filter(|_| !text.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let mut all = lines(stdout);
        all.extend(lines(stderr));
        for line in &all {
            log.line(line);
        }
        log
    }

    fn line(&mut self, line: &str) {
        let command = parse(line, self.stopped_by.as_deref());
        if let Some(token) = &self.stopped_by {
            if command
                .as_ref()
                .is_some_and(|c| c.command.eq_ignore_ascii_case(token))
            {
                self.stopped_by = None;
            }
            self.show(line);
            return;
        }
        let Some(command) = command else {
            self.show(line);
            return;
        };
        match command.command.as_str() {
            "add-mask" => {
                if !command.data.trim().is_empty() {
                    self.masks.push(command.data.clone());
                }
            }
            "stop-commands" => {
                self.stopped_by = Some(command.data.clone());
                self.show(line);
            }
            _ => self.show(line),
        }
        self.processed.push(command);
    }

    fn show(&mut self, line: &str) {
        let mut shown = line.to_owned();
        // Longest first, as a masker replaces the longest match.
        let mut masks = self.masks.clone();
        masks.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mask in &masks {
            shown = shown.replace(mask.as_str(), "***");
        }
        self.shown.push_str(&shown);
        self.shown.push('\n');
    }

    /// Whether command processing is stopped at the end.
    pub fn stopped(&self) -> bool {
        self.stopped_by.is_some()
    }

    /// The commands of one name that were processed.
    pub fn processed(&self, command: &str) -> Vec<&Processed> {
        self.processed
            .iter()
            .filter(|c| c.command.eq_ignore_ascii_case(command))
            .collect()
    }
}

#[test]
fn reads_like_the_runner() {
    let log = RunnerLog::read(
        "::add-mask::s3cret\nsays s3cret\n  ::stop-commands::tok\n::add-mask::other\nother \
         shown\n::TOK::\n::save-state name=x::1\nx ##[add-mask]legacy\nlegacy hidden\n",
        "",
    );
    assert_eq!(
        log.shown,
        "says ***\n  ::stop-commands::tok\n::add-mask::other\nother shown\n::TOK::\n\
         ::save-state name=x::1\n*** hidden\n"
    );
    assert_eq!(log.processed("save-state").len(), 1);
    assert_eq!(log.processed("add-mask").len(), 2);
}

#[test]
fn reads_legacy_commands_as_the_runner_does() {
    // A `::` line that is no command of the runner's is still read for `##[`; an unknown name
    // is no command; a lone `\r` ends a line; a legacy stop is resumed by a legacy token.
    let log = RunnerLog::read(
        "::nothing:: x ##[add-mask]one\nsays one ##[unknown]two\rtwo\npath=/x##[stop-commands]Zz\n\
         ::add-mask::three\nthree\nx ##[zZ]\n::add-mask::four\nfour\n",
        "",
    );
    assert_eq!(log.processed("add-mask").len(), 2, "{:?}", log.processed);
    assert_eq!(log.processed("stop-commands").len(), 1);
    assert!(
        log.shown.contains("says *** ##[unknown]two\ntwo\n"),
        "{}",
        log.shown
    );
    assert!(
        log.shown.contains("::add-mask::three\nthree\n"),
        "{}",
        log.shown
    );
    assert!(log.shown.ends_with("x ##[zZ]\n***\n"), "{}", log.shown);
    assert!(!log.stopped());
}
