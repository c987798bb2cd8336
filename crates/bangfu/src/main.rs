//! The `bangfu` binary: `up` runs the whole suite in one process for trying it, `serve` runs
//! one service as a container does, and the rest are an administrator's client commands.

/// Prints a line to standard output. A closed pipe (`bangfu whoami | head -1`) ends the command
/// quietly instead of panicking, as command-line tools are expected to.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::print_line(&format!($($arg)*))
    };
}

/// mimalloc in place of glibc's malloc: a BatchGetPersons of 1,000 allocates and frees a few
/// hundred thousand small strings (rows, facts, wire messages), and under load glibc's arenas
/// spent over a third of the server's CPU on it (malloc, free and chunk consolidation).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod backup;
mod bench;
mod bench_claims;
mod bench_data;
mod bench_exchange;
mod bench_jobs;
mod bench_posts;
mod bench_relief;
mod bench_reports;
mod bench_suite;
mod client;
mod deploy;
mod exchange_cli;
mod format;
mod help_text;
mod identity_cli;
mod identity_import;
mod jobs_cli;
mod parameters_cli;
mod permissions;
mod posts_cli;
mod print;
mod relief_cli;
mod reports_cli;
mod subsidy_cli;
mod suite;
mod table_file;
mod terms;
mod token;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bangfu",
    version,
    about = "帮扶 — employment assistance for people lifted out of poverty"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service in one process on one port, on SQLite files in the data folder.
    Up(up::UpArgs),
    /// Run one service, configured from the environment (as containers do).
    Serve(suite::ServeArgs),
    /// Apply a service's database migrations (DATABASE_URL, as the database's owner) and exit:
    /// the step before `serve` starts a new release.
    Migrate(suite::MigrateArgs),
    /// Copy every SQLite database (consistently, while running) and the keys, with a manifest
    /// of checksums; `backup verify DIR` checks a copy.
    Backup(backup::BackupArgs),
    /// Verify a backup and copy its databases and keys into a data folder for `bangfu up`.
    Restore(backup::RestoreArgs),
    /// A deployment's keys: `keys init` makes each service's and the operator's.
    Keys {
        #[command(subcommand)]
        command: deploy::KeysCommand,
    },
    /// A deployment's databases: `db init` makes one database and login role per service.
    Db {
        #[command(subcommand)]
        command: deploy::DbCommand,
    },
    /// Issue tokens.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Show who the server takes you for: subject, department, roles, scope, permissions.
    Whoami(client::ClientArgs),
    /// Show the server's version, services and limits.
    ServerInfo(client::ClientArgs),
    /// Call every peer the server's services call (as each service, for you) and show what
    /// each answered; exits non-zero when one does not answer.
    CheckPeers(client::ClientArgs),
    /// Check a server's gRPC health; exits non-zero unless SERVING.
    Health(client::HealthArgs),
    /// The person registry: register, read, import, certify, monitor, watch.
    Identity {
        #[command(subcommand)]
        command: identity_cli::IdentityCommand,
    },
    /// Subsidy payment: policies, funds, claims, reviews, accounts, payment batches, notices,
    /// objections, approval, the disbursement file, the bank's results, statements, recoveries.
    Subsidy {
        #[command(subcommand)]
        command: subsidy_cli::SubsidyCommand,
    },
    /// Rural public-welfare posts: posts, announcements, applications, eligibility, hire
    /// notices, objections, contracts, monthly evaluations, closing months, exits, signals.
    Posts {
        #[command(subcommand)]
        command: posts_cli::PostsCommand,
    },
    /// Work relief (以工代赈): projects, funds and the labor share, the roster, muster rolls,
    /// payrolls with their notice, objections and approval, receipts, arrears, closing, stats.
    Relief {
        #[command(subcommand)]
        command: relief_cli::ReliefCommand,
    },
    /// Job matching (就业帮扶): carriers and their certification, postings (also imported from an
    /// employer's workbook), seekers, recommendations with their reasons, applications,
    /// placements and follow-ups, export batches, training, recruitment events, stats (附件1).
    Jobs {
        #[command(subcommand)]
        command: jobs_cli::JobsCommand,
    },
    /// The labor-cooperation desk (鲁渝劳务协作): partners, verifying a partner's person, the
    /// partners' postings, the signed message log, confirmations received, the year's counts.
    Exchange {
        #[command(subcommand)]
        command: exchange_cli::ExchangeCommand,
    },
    /// The quarterly progress form (附件1) and project list (附件2): generate from the services,
    /// export as xlsx or CSV, submit, approve or return, and the year's deadlines.
    Reports {
        #[command(subcommand)]
        command: reports_cli::ReportsCommand,
    },
    /// Load a server and print throughput and latency percentiles.
    Bench(bench::BenchArgs),
    /// Print who may call what: every method, its permission, and the roles and services
    /// holding it (Markdown; the same as PERMISSIONS.md).
    Permissions,
    /// Print the shell completion script: `bangfu completion bash > /etc/bash_completion.d/bangfu`,
    /// or in PowerShell `bangfu completion powershell | Out-String | Invoke-Expression`.
    Completion {
        /// bash, zsh, fish, powershell or elvish.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output, or with --out write one page for each
    /// command into a folder (`man -l bangfu.1`).
    Man {
        /// The folder to write bangfu.1, bangfu-identity.1, … into.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// See [`say!`].
pub fn print_line(text: &str) {
    print_bytes(format!("{text}\n").as_bytes());
}

/// Writes to standard output; a closed pipe ends the command quietly, as [`say!`] does.
pub fn print_bytes(bytes: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_all(bytes).and_then(|()| out.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {error}");
        std::process::exit(1);
    }
}

/// Where `bangfu up` keeps its files unless told otherwise.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = help_text::localized(Cli::command()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Serve(args) => suite::serve(args).await,
            Command::Migrate(args) => suite::migrate(args).await,
            Command::Backup(args) => backup::run(args).await,
            Command::Restore(args) => backup::restore(args).await,
            Command::Token { command } => token::run(command),
            Command::Keys { command } => deploy::keys(command),
            Command::Db { command } => deploy::db(command).await,
            Command::Whoami(args) => client::whoami(args).await,
            Command::ServerInfo(args) => client::server_info(args).await,
            Command::CheckPeers(args) => client::check_peers(args).await,
            Command::Health(args) => client::health(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Permissions => {
                print_line(permissions::render().trim_end());
                Ok(())
            }
            Command::Completion { shell } => {
                let mut command = <Cli as clap::CommandFactory>::command();
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut command, "bangfu", &mut script);
                print_bytes(&script);
                Ok(())
            }
            Command::Man { out } => manual(out),
            Command::Identity { command } => identity_cli::run(command).await,
            Command::Subsidy { command } => subsidy_cli::run(command).await,
            Command::Posts { command } => posts_cli::run(command).await,
            Command::Relief { command } => relief_cli::run(command).await,
            Command::Jobs { command } => jobs_cli::run(command).await,
            Command::Exchange { command } => exchange_cli::run(command).await,
            Command::Reports { command } => reports_cli::run(command).await,
        }
    });
    // Dropping the runtime would wait for every blocking task without limit (a telemetry
    // exporter's shutdown, a file read): a stopping server does not wait on them for ever.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if json_requested() {
                eprintln!("{}", failure.json());
            } else {
                eprintln!("error: {}", failure.message);
            }
            ExitCode::from(failure.exit_code)
        }
    }
}

/// `bangfu man`: the manual from the same definitions as `--help`.
fn manual(out: Option<PathBuf>) -> Result<(), Failure> {
    let command = <Cli as clap::CommandFactory>::command();
    match out {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(command, &dir))
                .map_err(|e| Failure::failed(format!("cannot write the manual into {}: {e}", dir.display())))?;
            eprintln!("manual pages written to {}", dir.display());
            Ok(())
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(|e| Failure::failed(format!("cannot write the manual: {e}")))?;
            print_bytes(&page);
            Ok(())
        }
    }
}

/// Whether the command line asked for JSON, so that a failure is reported as JSON too. Read
/// from the arguments because a failure can come before (or without) the command's own
/// flags being parsed into its arguments.
fn json_requested() -> bool {
    std::env::args().skip(1).any(|arg| arg == "--json" || arg == "--jsonl")
}

/// Exit codes (README, "Exit codes"): distinct for what a script handles differently.
pub mod exit {
    /// The work failed for another reason (the server's internal error, a file not written).
    pub const FAILED: u8 = 1;
    /// Invalid input: a flag, a file's contents, or what the server refused as invalid.
    pub const INVALID: u8 = 2;
    /// A server could not start: its database or schema (`serve`, `up`, `migrate`).
    pub const CANNOT_START: u8 = 3;
    /// What was asked for does not exist (or lies outside the caller's scope).
    pub const NOT_FOUND: u8 = 4;
    /// Not signed in, or the token lacks the permission or scope.
    pub const PERMISSION: u8 = 5;
    /// The server cannot be reached, is unavailable, or did not answer in time.
    pub const UNAVAILABLE: u8 = 6;
    /// A conflict: someone changed the record meanwhile, it already exists, or its state does
    /// not allow the change.
    pub const CONFLICT: u8 = 7;
}

/// The exit code of a call the server refused.
pub fn exit_code_of(code: tonic::Code) -> u8 {
    use tonic::Code;
    match code {
        Code::InvalidArgument | Code::OutOfRange => exit::INVALID,
        Code::NotFound => exit::NOT_FOUND,
        Code::PermissionDenied | Code::Unauthenticated => exit::PERMISSION,
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => exit::UNAVAILABLE,
        Code::Aborted | Code::AlreadyExists | Code::FailedPrecondition => exit::CONFLICT,
        _ => exit::FAILED,
    }
}

/// A command's failure: what to tell the user, the exit code, and the server's refusal when
/// a call was refused.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub exit_code: u8,
    pub refusal: Option<Box<Refusal>>,
}

/// What the server said when it refused a call: the gRPC code, the reason code, the field and
/// the clerk's message, and the trace id an operator finds the call's log lines under.
#[derive(Debug, Default)]
pub struct Refusal {
    pub code: String,
    pub reason: String,
    pub field: String,
    pub message: String,
    pub trace_id: String,
}

impl Failure {
    fn with_code(message: impl Into<String>, exit_code: u8) -> Self {
        Self {
            message: message.into(),
            exit_code,
            refusal: None,
        }
    }

    /// Bad usage or input: exit code 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::with_code(message, exit::INVALID)
    }

    /// The work itself failed: exit code 1.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::with_code(message, exit::FAILED)
    }

    /// A server could not start.
    pub fn cannot_start(message: impl Into<String>) -> Self {
        Self::with_code(message, exit::CANNOT_START)
    }

    /// What was asked for is not there.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::with_code(message, exit::NOT_FOUND)
    }

    /// The server could not be reached.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::with_code(message, exit::UNAVAILABLE)
    }

    /// The failure as the JSON object `--json` prints on stderr.
    pub fn json(&self) -> serde_json::Value {
        let refusal = self.refusal.as_deref();
        let pick = |field: fn(&Refusal) -> &String| refusal.map(field).cloned().unwrap_or_default();
        serde_json::json!({
            "code": refusal.map_or_else(|| if self.exit_code == exit::INVALID { "InvalidArgument" } else { "Unknown" }.to_string(), |r| r.code.clone()),
            "reason": pick(|r| &r.reason),
            "field": pick(|r| &r.field),
            "message": refusal.map_or_else(|| self.message.clone(), |r| r.message.clone()),
            "detail": self.message,
            "traceId": pick(|r| &r.trace_id),
            "exitCode": self.exit_code,
        })
    }
}
