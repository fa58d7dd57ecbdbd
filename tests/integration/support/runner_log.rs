//! A step's output read the way the runner reads it (actions/runner,
//! `ActionCommandManager.TryProcessCommand` and `ActionCommand.TryParseV2`/`TryParse`): each
//! line, after leading white space, may be a `::command props::data` workflow command, or hold
//! a legacy `##[command props]data` anywhere; `::stop-commands::TOKEN` stops all processing
//! until a command named TOKEN (compared without case); `::add-mask::VALUE` adds a secret that
//! is replaced by `***` in every later line, and is not shown itself.
//!
//! How it differs from the runner: it knows only the commands that matter to what a test
//! checks (masks, stop and resume, state, outputs, annotations); it shows every processed
//! command but a mask as a line of the log (the runner echoes them only in debug mode), which
//! can only show more; it masks a value only as given (the runner's masker also masks some encodings of it, which can only hide more); and
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

fn unescape_data(data: &str) -> String {
    data.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

/// `::command props::data` (after leading white space), or `##[command props]data` anywhere.
fn parse(line: &str) -> Option<Processed> {
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix("::") {
        let (head, data) = rest.split_once("::")?;
        let (command, properties) = head.split_once(' ').unwrap_or((head, ""));
        if command.is_empty() {
            return None;
        }
        return Some(Processed {
            command: command.to_owned(),
            properties: properties.to_owned(),
            data: unescape_data(data),
        });
    }
    let at = line.find("##[")?;
    let rest = &line[at + 3..];
    let (head, data) = rest.split_once(']')?;
    let (command, properties) = head.split_once(' ').unwrap_or((head, ""));
    Some(Processed {
        command: command.to_owned(),
        properties: properties.to_owned(),
        data: unescape_data(data),
    })
}

impl RunnerLog {
    /// Reads a stage's stdout, then its stderr.
    pub fn read(stdout: &str, stderr: &str) -> Self {
        let mut log = Self::default();
        for line in stdout.lines().chain(stderr.lines()) {
            log.line(line);
        }
        log
    }

    fn line(&mut self, line: &str) {
        let command = parse(line);
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
