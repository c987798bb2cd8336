//! `bangfu bench`: a load generator over the real gRPC surface. Closed loop (N concurrent
//! callers for T seconds) or open loop (a fixed rate, latency measured from each call's
//! scheduled start, so a stalled server is not hidden by callers that stop sending), printing
//! throughput and p50/p90/p99/p99.9 from an HDR histogram.
//!
//! `bangfu bench platform` measures what the platform's layers cost: one process serves the
//! same cheap call twice — once behind every layer (token check, telemetry, limits), once with
//! none — and the two are loaded alternately in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bangfu_platform::auth::keys::{self, DEVELOPMENT_DEPARTMENT_KID, DevelopmentKeys, KeyRing};
use bangfu_platform::auth::token::{TokenSigner, UserIdentity, new_token_id, unix_now};
use bangfu_platform::auth::verify::{Revocations, Verifier};
use bangfu_platform::auth::{Department, RegionScope, Role};
use bangfu_platform::config::Config;
use bangfu_platform::diagnostics::Diagnostics;
use bangfu_platform::server::ServerHost;
use bangfu_proto::common::v1 as common;
use bangfu_proto::diagnostics::v1::GetServerInfoRequest;
use bangfu_proto::diagnostics::v1::diagnostics_service_client::DiagnosticsServiceClient;
use bangfu_proto::identity::v1 as pb;
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::Failure;
use crate::token::parse_duration;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub target: BenchTarget,
}

#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// Load a running server with GetServerInfo (an authenticated call that does no work).
    Call {
        #[command(flatten)]
        load: LoadArgs,
        /// Server address.
        #[arg(long, env = "BANGFU_ADDR", default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// The bearer token (needs the call's permission).
        #[arg(long, env = "BANGFU_TOKEN_FILE", default_value = "data/admin.jwt")]
        token_file: std::path::PathBuf,
        /// What to call: server-info, health (no token needed), get-person, lookup-person,
        /// batch-get-persons (1,000 names), list-persons, or check-eligibility (a
        /// poverty-alleviated person of --region-prefix against a post, every rule and subsidy
        /// payment's dry run for the first month).
        #[arg(long, default_value = "server-info")]
        call: String,
        #[command(flatten)]
        identity: IdentityCallArgs,
    },
    /// Write a synthetic export of the national monitoring system (valid citizen IDs, villages of
    /// Zaozhuang, households of four) for `bangfu identity import`.
    PersonsCsv {
        /// Rows to write.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// The file to write.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// SubmitClaim under load (each call a new claim), beside GetServerInfo on the same server.
    Claims {
        #[command(flatten)]
        load: LoadArgs,
        /// Server address (a suite hosting identity and subsidy).
        #[arg(long, env = "BANGFU_ADDR", default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// The administrator's bearer token.
        #[arg(long, env = "BANGFU_TOKEN_FILE", default_value = "data/admin.jwt")]
        token_file: std::path::PathBuf,
        /// Persons to register for the run (each takes up to 52 monthly claims).
        #[arg(long, default_value_t = 500)]
        persons: usize,
        /// Then stream this many more claims through SubmitClaims (messages of 1,000).
        #[arg(long, default_value_t = 0)]
        stream_claims: usize,
        /// Over this many SubmitClaims streams at once (a province's counties sending theirs).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        streams: u16,
    },
    /// CloseMonth end to end for as many holders as asked (posts, signings and evaluations are
    /// seeded into the posts database; the persons come from identity).
    CloseMonth {
        /// Server address (a suite hosting identity, subsidy and welfare_post).
        #[arg(long, env = "BANGFU_ADDR", default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// The administrator's bearer token.
        #[arg(long, env = "BANGFU_TOKEN_FILE", default_value = "data/admin.jwt")]
        token_file: std::path::PathBuf,
        /// The posts service's database (SQLite file URL or PostgreSQL URL), to seed.
        #[arg(long)]
        posts_database: String,
        /// Holders: poverty-alleviated persons under --region-prefix in identity.
        #[arg(long, default_value_t = 20_000)]
        holders: usize,
        /// The county or city closed.
        #[arg(long, default_value = "3704")]
        region_prefix: String,
        /// The month closed (YYYY-MM), one the shipped Zaozhuang policy covers.
        #[arg(long, default_value = "2025-03")]
        month: String,
        /// The server's process id, for its peak memory.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// The exchange's VerifyPerson as a partner calls it (mutual TLS, signed, logged) against
    /// the same verification relayed without signing or logging, in one run; and a batch of
    /// IDs verified 1,000 a message (bench/exchange.sh sets up the receiver).
    Exchange(crate::bench_exchange::ExchangeBenchArgs),
    /// Ranked matching over a province: RecommendSeekers and RecommendPostings against one
    /// hand-written SQL statement computing the same top 20, in the same run (carriers,
    /// postings and seekers are seeded into the job-matching database; default weights).
    Recommend {
        /// Server address (a suite hosting identity and jobs).
        #[arg(long, env = "BANGFU_ADDR", default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// The bearer token (an administrator, or HR with scope 37).
        #[arg(long, env = "BANGFU_TOKEN_FILE", default_value = "data/admin.jwt")]
        token_file: std::path::PathBuf,
        /// The job-matching service's database (PostgreSQL URL, or SQLite file URL), to seed.
        #[arg(long)]
        jobs_database: String,
        /// Identity's database: the seekers are the persons it holds (read from it).
        #[arg(long)]
        identity_database: Option<String>,
        /// Seekers in Shandong's villages.
        #[arg(long, default_value_t = 1_000_000)]
        seekers: usize,
        /// Open postings in Shandong's counties and townships.
        #[arg(long, default_value_t = 10_000)]
        postings: usize,
        /// Calls of each method (and hand-written statements) timed.
        #[arg(long, default_value_t = 50)]
        samples: usize,
        /// The server's process id, for its peak memory.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// A county's work-relief month end to end: muster rolls, payrolls prepared, noticed and
    /// approved, every line a claim in subsidy payment (projects and rosters are seeded into
    /// the work-relief database; the workers come from identity).
    ReliefMonth {
        /// Server address (a suite hosting identity, subsidy and work_relief).
        #[arg(long, env = "BANGFU_ADDR", default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// The preparer's bearer token (an administrator).
        #[arg(long, env = "BANGFU_TOKEN_FILE", default_value = "data/admin.jwt")]
        token_file: std::path::PathBuf,
        /// The approver's bearer token: another subject, as the maker–checker rule asks.
        #[arg(long)]
        approver_token_file: std::path::PathBuf,
        /// The work-relief service's database (SQLite file URL or PostgreSQL URL), to seed.
        #[arg(long)]
        relief_database: String,
        /// Projects.
        #[arg(long, default_value_t = 500)]
        projects: usize,
        /// Workers, spread over the projects: poverty-alleviated persons under --region-prefix.
        #[arg(long, default_value_t = 30_000)]
        workers: usize,
        /// The region the workers are read from.
        #[arg(long, default_value = "3704")]
        region_prefix: String,
        /// The month paid (YYYY-MM), one the shipped Shandong remuneration policy covers.
        #[arg(long, default_value = "2025-11")]
        month: String,
        /// Projects worked on at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// The server's process id, for its peak memory.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// GenerateReport timed end to end for a region and period (the progress form, then the
    /// project list), on the data the suite holds (bench/reports.sh seeds it).
    Reports {
        /// Server address (a suite hosting reports and the services it reads).
        #[arg(long, env = "BANGFU_ADDR", default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// The bearer token (an administrator, or HR with the region in scope).
        #[arg(long, env = "BANGFU_TOKEN_FILE", default_value = "data/admin.jwt")]
        token_file: std::path::PathBuf,
        /// The region: a province (2 digits), city (4) or county (6).
        #[arg(long, default_value = "37")]
        region: String,
        /// The quarter, e.g. 2025Q4 (the project list is generated for its year).
        #[arg(long, default_value = "2025Q4")]
        period: String,
        /// Generations of each form.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// The server's process id, for its peak memory.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// The floor of a call: the SQL statements it runs, straight through sqlx (prepared and
    /// cached per connection, as the services run them), in a closed loop on one connection
    /// per caller. A line of --sql-file ending in `;` ends a statement.
    Statements {
        /// The database (SQLite file URL or PostgreSQL URL).
        #[arg(long)]
        database: String,
        /// The statements, run in order once per call.
        #[arg(long)]
        sql_file: std::path::PathBuf,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// The platform's cost: the same call with every layer on and with none, in one run.
    Platform {
        #[command(flatten)]
        load: LoadArgs,
        /// Rounds; each loads the layered and the bare server once, alternately.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Send the bare server the same token (it reads none), so that both runs carry it and
        /// the ratio shows the layers' own work without the cost of carrying a credential.
        #[arg(long)]
        token_to_bare: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Concurrent callers (closed loop).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// HTTP/2 connections the callers share.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// How long to load, e.g. 10s.
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Warm-up before measuring, e.g. 2s.
    #[arg(long, default_value = "2s")]
    pub warmup: String,
    /// Calls per second in total (open loop); 0 for as fast as the callers go. Tokio's timers
    /// tick in milliseconds, so at a fixed rate each latency includes up to 1 ms of scheduling
    /// lateness (the same for every server loaded).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
}

/// What one load run measured.
#[derive(Debug)]
pub struct Report {
    pub calls: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
}

/// What one closed-loop caller measured: its latencies, calls and errors.
pub(crate) type CallerTally = Result<(Histogram<u64>, u64, u64), String>;

impl Report {
    /// The callers' tallies added up, over a load of `duration`.
    pub(crate) async fn of_callers(
        tasks: Vec<tokio::task::JoinHandle<CallerTally>>,
        duration: Duration,
    ) -> Result<Self, Failure> {
        let mut latency_us =
            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| Failure::failed(e.to_string()))?;
        let (mut calls, mut errors) = (0, 0);
        for task in tasks {
            let (histogram, c, e) = task
                .await
                .map_err(|e| Failure::failed(e.to_string()))?
                .map_err(Failure::failed)?;
            latency_us.add(&histogram).map_err(|e| Failure::failed(e.to_string()))?;
            calls += c;
            errors += e;
        }
        Ok(Report {
            calls,
            errors,
            elapsed: duration,
            latency_us,
        })
    }

    pub fn throughput(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn line(&self, label: &str) -> String {
        format!(
            "{label:<10} {:>9.0} calls/s  p50 {:>7.3} ms  p90 {:>7.3} ms  p99 {:>7.3} ms  p99.9 {:>7.3} ms  max {:>8.3} ms  ({} calls, {} errors)",
            self.throughput(),
            self.quantile_ms(0.50),
            self.quantile_ms(0.90),
            self.quantile_ms(0.99),
            self.quantile_ms(0.999),
            self.latency_us.max() as f64 / 1000.0,
            self.calls,
            self.errors
        )
    }
}

pub async fn run(args: BenchArgs) -> Result<(), Failure> {
    match args.target {
        BenchTarget::Call {
            load,
            addr,
            token_file,
            call,
            identity,
        } => {
            let token = std::fs::read_to_string(&token_file)
                .map_err(|e| Failure::usage(format!("--token-file {}: {e}", token_file.display())))?;
            let channels = connect(&addr, load.connections).await?;
            let call = identity.prepare(&call, &channels[0], token.trim()).await?;
            let report = load_call(&load, &channels, Some(token.trim()), &call).await?;
            say!("{}", report.line(call.label()));
            Ok(())
        }
        BenchTarget::Claims {
            load,
            addr,
            token_file,
            persons,
            stream_claims,
            streams,
        } => {
            let token = std::fs::read_to_string(&token_file)
                .map_err(|e| Failure::usage(format!("--token-file {}: {e}", token_file.display())))?;
            let channels = connect(&addr, load.connections).await?;
            crate::bench_claims::run(
                &load,
                &channels,
                token.trim(),
                persons,
                stream_claims,
                usize::from(streams),
            )
            .await
        }
        BenchTarget::CloseMonth {
            addr,
            token_file,
            posts_database,
            holders,
            region_prefix,
            month,
            server_pid,
        } => {
            let token = std::fs::read_to_string(&token_file)
                .map_err(|e| Failure::usage(format!("--token-file {}: {e}", token_file.display())))?;
            let month = crate::format::parse_month("--month", &month)?;
            let channels = connect(&addr, 1).await?;
            crate::bench_posts::run(
                &channels[0],
                token.trim(),
                crate::bench_posts::CloseMonthBench {
                    region_prefix,
                    holders,
                    year: month.year,
                    month: u8::try_from(month.month).unwrap_or(1),
                    posts_database,
                    server_pid,
                },
            )
            .await
        }
        BenchTarget::ReliefMonth {
            addr,
            token_file,
            approver_token_file,
            relief_database,
            projects,
            workers,
            region_prefix,
            month,
            concurrency,
            server_pid,
        } => {
            let read = |path: &std::path::Path| {
                std::fs::read_to_string(path)
                    .map(|t| t.trim().to_string())
                    .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
            };
            let (preparer, approver) = (read(&token_file)?, read(&approver_token_file)?);
            let month = crate::format::parse_month("--month", &month)?;
            let channels = connect(&addr, 1).await?;
            crate::bench_relief::run(
                &channels[0],
                &preparer,
                &approver,
                crate::bench_relief::ReliefMonthBench {
                    region_prefix,
                    projects,
                    workers,
                    year: month.year,
                    month: u8::try_from(month.month).unwrap_or(1),
                    relief_database,
                    concurrency,
                    server_pid,
                },
            )
            .await
        }
        BenchTarget::Exchange(args) => crate::bench_exchange::run(args).await,
        BenchTarget::Statements {
            database,
            sql_file,
            load,
        } => {
            let text = std::fs::read_to_string(&sql_file)
                .map_err(|e| Failure::usage(format!("--sql-file {}: {e}", sql_file.display())))?;
            let statements = split_statements(&text);
            if statements.is_empty() {
                return Err(Failure::usage("--sql-file holds no statement"));
            }
            let report = load_statements(&load, &database, statements).await?;
            say!("{}", report.line("statements"));
            Ok(())
        }
        BenchTarget::Reports {
            addr,
            token_file,
            region,
            period,
            runs,
            server_pid,
        } => {
            let token = std::fs::read_to_string(&token_file)
                .map(|t| t.trim().to_string())
                .map_err(|e| Failure::usage(format!("{}: {e}", token_file.display())))?;
            let period = bangfu_reports::domain::Period::parse_label(period.trim())
                .filter(|p| p.quarter > 0)
                .ok_or_else(|| Failure::usage(format!("--period {period:?}: a quarter as 2025Q4")))?;
            let channels = connect(&addr, 1).await?;
            crate::bench_reports::run(
                &channels[0],
                &token,
                crate::bench_reports::ReportsBench {
                    region,
                    period: bangfu_proto::reports::v1::ReportingPeriod {
                        year: period.year,
                        quarter: i32::from(period.quarter),
                    },
                    runs: runs.max(1),
                    server_pid,
                },
            )
            .await
        }
        BenchTarget::Recommend {
            addr,
            token_file,
            jobs_database,
            identity_database,
            seekers,
            postings,
            samples,
            server_pid,
        } => {
            let token = std::fs::read_to_string(&token_file)
                .map_err(|e| Failure::usage(format!("{}: {e}", token_file.display())))?;
            let channels = connect(&addr, 1).await?;
            crate::bench_jobs::run(
                &channels[0],
                token.trim(),
                crate::bench_jobs::RecommendBench {
                    jobs_database,
                    identity_database,
                    seekers,
                    postings,
                    samples,
                    server_pid,
                },
            )
            .await
        }
        BenchTarget::Platform {
            load,
            rounds,
            token_to_bare,
        } => platform(&load, rounds, token_to_bare).await,
        BenchTarget::PersonsCsv { rows, out } => crate::bench_data::write_persons_csv(rows, &out),
    }
}

async fn connect(addr: &str, connections: usize) -> Result<Vec<Channel>, Failure> {
    let mut channels = Vec::with_capacity(connections.max(1));
    for _ in 0..connections.max(1) {
        let channel = Channel::from_shared(addr.to_string())
            .map_err(|e| Failure::usage(format!("{addr}: {e}")))?
            .connect()
            .await
            .map_err(|e| Failure::failed(format!("cannot connect to {addr}: {e}")))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Loads `channels` with GetServerInfo as `load` says and measures it.
pub async fn load_run(load: &LoadArgs, channels: &[Channel], token: Option<&str>) -> Result<Report, Failure> {
    load_call(load, channels, token, &Call::ServerInfo).await
}

/// Loads `channels` with `call` as `load` says and measures it.
pub async fn load_call(
    load: &LoadArgs,
    channels: &[Channel],
    token: Option<&str>,
    call: &Call,
) -> Result<Report, Failure> {
    let duration = parse_duration(&load.duration).ok_or_else(|| Failure::usage("--duration like 10s"))?;
    let warmup = parse_duration(&load.warmup).unwrap_or(Duration::ZERO);
    let authorization: Option<MetadataValue<_>> = match token {
        Some(token) => Some(
            format!("Bearer {token}")
                .parse()
                .map_err(|_| Failure::usage("the token cannot be sent as a header"))?,
        ),
        None => None,
    };
    let concurrency = load.concurrency.max(1);
    // Open loop: each caller takes every `concurrency`-th slot of the schedule.
    let interval = (load.rate > 0).then(|| Duration::from_secs_f64(concurrency as f64 / load.rate as f64));
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for caller in 0..concurrency {
        let mut caller_call = Caller::new(call.clone(), channels[caller % channels.len()].clone());
        let authorization = authorization.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
            let (mut calls, mut errors) = (0u64, 0u64);
            let mut next = interval.map(|i| Instant::now() + i.mul_f64(caller as f64 / concurrency as f64));
            loop {
                let scheduled = match (next, interval) {
                    (Some(at), Some(step)) => {
                        tokio::time::sleep_until(at.into()).await;
                        next = Some(at + step);
                        at
                    }
                    _ => Instant::now(),
                };
                if scheduled >= end {
                    break;
                }
                let outcome = caller_call.once(authorization.as_ref()).await;
                let done = Instant::now();
                if scheduled >= start {
                    calls += 1;
                    if outcome.is_err() {
                        errors += 1;
                    }
                    let micros = done.duration_since(scheduled).as_micros().max(1) as u64;
                    histogram.saturating_record(micros);
                }
            }
            Ok::<_, String>((histogram, calls, errors))
        }));
    }
    Report::of_callers(tasks, duration).await
}

/// The statements of a file: a line ending in `;` ends one.
fn split_statements(text: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            let statement = current.trim().trim_end_matches(';').trim().to_string();
            if !statement.is_empty() {
                statements.push(statement);
            }
            current.clear();
        }
    }
    let rest = current.trim().to_string();
    if !rest.is_empty() {
        statements.push(rest);
    }
    statements
}

/// Runs `statements` in a closed loop, one connection per caller, as `load_call` loads a call.
async fn load_statements(load: &LoadArgs, url: &str, statements: Vec<String>) -> Result<Report, Failure> {
    use sqlx::Connection as _;
    let duration = parse_duration(&load.duration).ok_or_else(|| Failure::usage("--duration like 10s"))?;
    let warmup = parse_duration(&load.warmup).unwrap_or(Duration::ZERO);
    sqlx::any::install_default_drivers();
    let concurrency = load.concurrency.max(1);
    let statements = Arc::new(statements);
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let mut connection = sqlx::AnyConnection::connect(url)
            .await
            .map_err(|e| Failure::usage(format!("--database: {e}")))?;
        let statements = statements.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
            let (mut calls, mut errors) = (0u64, 0u64);
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let mut failed = false;
                for statement in statements.iter() {
                    let query = sqlx::query(sqlx::AssertSqlSafe(statement.as_str()));
                    if query.fetch_all(&mut connection).await.is_err() {
                        failed = true;
                    }
                }
                if began >= start {
                    calls += 1;
                    errors += u64::from(failed);
                    histogram.saturating_record(began.elapsed().as_micros().max(1) as u64);
                }
            }
            Ok::<_, String>((histogram, calls, errors))
        }));
    }
    Report::of_callers(tasks, duration).await
}

/// Serves the same diagnostics service behind every layer and behind none, and loads each in
/// turn.
async fn platform(load: &LoadArgs, rounds: u32, token_to_bare: bool) -> Result<(), Failure> {
    let mut config = Config::from_env().map_err(|e| Failure::usage(e.to_string()))?;
    config.telemetry.log_filter = "warn".into();
    bangfu_platform::telemetry::init(&config.telemetry);
    let keys = BenchKeys::new()?;
    let token = keys.admin_token()?;

    let start = |layered: bool| {
        let verifier = keys.verifier();
        let server_config = config.server.clone();
        async move {
            let listener = bangfu_platform::server::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(|e| Failure::failed(e.to_string()))?;
            let addr = listener.local_addr().map_err(|e| Failure::failed(e.to_string()))?;
            let mut host = ServerHost::new(server_config.clone(), Arc::new(verifier?));
            host.add_service(Diagnostics::new(&server_config, &[]).into_server(&server_config));
            let shutdown = host.shutdown();
            let task = tokio::spawn(async move {
                if layered {
                    host.serve(listener).await
                } else {
                    host.serve_without_layers_for_benchmark(listener).await
                }
            });
            Ok::<_, Failure>((format!("http://{addr}"), shutdown, task))
        }
    };
    let (layered_addr, layered_stop, layered_task) = start(true).await?;
    let (bare_addr, bare_stop, bare_task) = start(false).await?;
    let layered = connect(&layered_addr, load.connections).await?;
    let bare = connect(&bare_addr, load.connections).await?;

    say!(
        "platform cost: GetServerInfo, {} callers on {} connections, {} per run{}, {rounds} rounds{}",
        load.concurrency,
        load.connections,
        load.duration,
        if load.rate > 0 {
            format!(", {} calls/s", load.rate)
        } else {
            String::new()
        },
        if token_to_bare { ", the token sent to both" } else { "" }
    );
    // Saturation: as many calls as the callers can make. On two cores the load generator
    // shares the CPU with the servers, so each round's ratio is noisy; the median of the rounds
    // is the figure.
    let saturated = compare(load, rounds, &bare, &layered, &token, token_to_bare).await?;
    say!(
        "saturated: layered / bare throughput {}, p99 {} (median of {rounds} rounds, lowest–highest)",
        saturated.throughput_ratio,
        saturated.p99_ratio
    );
    layered_stop.trigger();
    bare_stop.trigger();
    let _ = layered_task.await;
    let _ = bare_task.await;
    Ok(())
}

/// The call a load run makes.
#[derive(Debug, Clone)]
pub enum Call {
    /// DiagnosticsService/GetServerInfo: authenticated, no work.
    ServerInfo,
    /// grpc.health.v1.Health/Check: no token, no work.
    Health,
    /// IdentityService/GetPerson of one person, masked: a read through every layer and the store.
    GetPerson(String),
    /// IdentityService/LookupPerson by citizen ID with a name to compare (blind index, audited).
    LookupPerson { citizen_id: String, name: String },
    /// IdentityService/BatchGetPersons of up to 1,000 names.
    BatchGetPersons(Vec<String>),
    /// IdentityService/ListPersons: one page under a region prefix, from a page token.
    ListPersons { prefix: String, page_token: String },
    /// SubsidyService/SubmitClaim: a new claim each call.
    SubmitClaim(Arc<crate::bench_claims::ClaimSequence>),
    /// WelfarePostService/CheckEligibility of a person against a post on a hire date.
    CheckEligibility {
        person: String,
        post: String,
        hire_date: common::Date,
    },
}

impl Call {
    fn label(&self) -> &'static str {
        match self {
            Self::ServerInfo => "server-info",
            Self::Health => "health",
            Self::GetPerson(_) => "get-person",
            Self::LookupPerson { .. } => "lookup",
            Self::BatchGetPersons(_) => "batch-get",
            Self::ListPersons { .. } => "list",
            Self::SubmitClaim(_) => "submit",
            Self::CheckEligibility { .. } => "eligibility",
        }
    }
}

/// One caller's clients for a call.
struct Caller {
    call: Call,
    diagnostics: DiagnosticsServiceClient<Channel>,
    health: tonic_health::pb::health_client::HealthClient<Channel>,
    identity: pb::identity_service_client::IdentityServiceClient<Channel>,
    subsidy: bangfu_proto::subsidy::v1::subsidy_service_client::SubsidyServiceClient<Channel>,
    posts: bangfu_proto::welfare_post::v1::welfare_post_service_client::WelfarePostServiceClient<Channel>,
}

impl Caller {
    fn new(call: Call, channel: Channel) -> Self {
        Self {
            call,
            diagnostics: DiagnosticsServiceClient::new(channel.clone()),
            health: tonic_health::pb::health_client::HealthClient::new(channel.clone()),
            identity: pb::identity_service_client::IdentityServiceClient::new(channel.clone()),
            subsidy: bangfu_proto::subsidy::v1::subsidy_service_client::SubsidyServiceClient::new(channel.clone()),
            posts: bangfu_proto::welfare_post::v1::welfare_post_service_client::WelfarePostServiceClient::new(channel),
        }
    }

    /// Makes the call once; true when it succeeded.
    async fn once(
        &mut self,
        authorization: Option<&MetadataValue<tonic::metadata::Ascii>>,
    ) -> Result<(), tonic::Status> {
        fn authorized<T>(
            message: T,
            authorization: Option<&MetadataValue<tonic::metadata::Ascii>>,
        ) -> tonic::Request<T> {
            let mut request = tonic::Request::new(message);
            if let Some(value) = authorization {
                request.metadata_mut().insert("authorization", value.clone());
            }
            request
        }
        match &self.call {
            Call::ServerInfo => self
                .diagnostics
                .get_server_info(authorized(GetServerInfoRequest {}, authorization))
                .await
                .map(|_| ()),
            Call::Health => self
                .health
                .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
                .await
                .map(|_| ()),
            Call::GetPerson(name) => self
                .identity
                .get_person(authorized(
                    pb::GetPersonRequest {
                        name: name.clone(),
                        ..Default::default()
                    },
                    authorization,
                ))
                .await
                .map(|_| ()),
            Call::LookupPerson { citizen_id, name } => self
                .identity
                .lookup_person(authorized(
                    pb::LookupPersonRequest {
                        citizen_id: citizen_id.clone(),
                        display_name: name.clone(),
                    },
                    authorization,
                ))
                .await
                .map(|_| ()),
            Call::BatchGetPersons(names) => self
                .identity
                .batch_get_persons(authorized(
                    pb::BatchGetPersonsRequest {
                        names: names.clone(),
                        ..Default::default()
                    },
                    authorization,
                ))
                .await
                .map(|_| ()),
            Call::SubmitClaim(sequence) => {
                let claim = sequence.next_claim();
                self.subsidy
                    .submit_claim(authorized(
                        bangfu_proto::subsidy::v1::SubmitClaimRequest {
                            claim: Some(claim),
                            request_id: String::new(),
                        },
                        authorization,
                    ))
                    .await
                    .map(|_| ())
            }
            Call::CheckEligibility {
                person,
                post,
                hire_date,
            } => {
                use bangfu_proto::welfare_post::v1 as posts;
                self.posts
                    .check_eligibility(authorized(
                        posts::CheckEligibilityRequest {
                            subject: Some(posts::check_eligibility_request::Subject::PersonAndPost(
                                posts::PersonAndPost {
                                    person: person.clone(),
                                    post: post.clone(),
                                },
                            )),
                            hire_date: Some(*hire_date),
                        },
                        authorization,
                    ))
                    .await
                    .map(|_| ())
            }
            Call::ListPersons { prefix, page_token } => self
                .identity
                .list_persons(authorized(
                    pb::ListPersonsRequest {
                        region_prefix: prefix.clone(),
                        page_size: 100,
                        page_token: page_token.clone(),
                        ..Default::default()
                    },
                    authorization,
                ))
                .await
                .map(|_| ()),
        }
    }
}

/// What the identity calls read: given, or found through ListPersons before the load starts.
#[derive(Debug, Args)]
pub struct IdentityCallArgs {
    /// get-person: the person, persons/… (default: the first one listed).
    #[arg(long)]
    person: Option<String>,
    /// lookup-person: the citizen ID to look up.
    #[arg(long)]
    citizen_id: Option<String>,
    /// lookup-person: the name to compare.
    #[arg(long, default_value = "")]
    name: String,
    /// list-persons and the persons the other calls pick: the region prefix.
    #[arg(long, default_value = "")]
    region_prefix: String,
    /// list-persons: pages of 1,000 to skip before the page loaded (a page deep in the listing).
    #[arg(long, default_value_t = 0)]
    skip_pages: u32,
    /// check-eligibility: the post, posts/….
    #[arg(long)]
    post: Option<String>,
    /// check-eligibility without --post: the posts service's database (SQLite file URL or
    /// PostgreSQL URL), to seed a cleaning post in the person's village under the shipped
    /// Zaozhuang policy.
    #[arg(long)]
    posts_database: Option<String>,
    /// check-eligibility: the hire date checked (YYYY-MM-DD), one the post's policy covers.
    #[arg(long, default_value = "2025-06-01")]
    hire_date: String,
}

impl IdentityCallArgs {
    async fn prepare(self, call: &str, channel: &Channel, token: &str) -> Result<Call, Failure> {
        let bearer: MetadataValue<tonic::metadata::Ascii> = format!("Bearer {token}")
            .parse()
            .map_err(|_| Failure::usage("the token cannot be sent as a header"))?;
        let identity = pb::identity_service_client::IdentityServiceClient::new(channel.clone());
        let page = |page_token: String| {
            let mut request = tonic::Request::new(pb::ListPersonsRequest {
                region_prefix: self.region_prefix.clone(),
                page_size: 1000,
                page_token,
                ..Default::default()
            });
            request.metadata_mut().insert("authorization", bearer.clone());
            let mut identity = identity.clone();
            async move {
                identity
                    .list_persons(request)
                    .await
                    .map(|r| r.into_inner())
                    .map_err(|s| crate::client::call_failed(&s))
            }
        };
        let call = match call {
            "server-info" => Call::ServerInfo,
            "health" => Call::Health,
            "get-person" => match self.person.clone() {
                Some(person) => Call::GetPerson(person),
                None => Call::GetPerson(
                    page(String::new())
                        .await?
                        .persons
                        .first()
                        .map(|p| p.name.clone())
                        .ok_or_else(|| Failure::usage("no person to read: import some first"))?,
                ),
            },
            "lookup-person" => Call::LookupPerson {
                citizen_id: self
                    .citizen_id
                    .clone()
                    .ok_or_else(|| Failure::usage("--call lookup-person needs --citizen-id"))?,
                name: self.name.clone(),
            },
            "batch-get-persons" => {
                let names: Vec<String> = page(String::new()).await?.persons.into_iter().map(|p| p.name).collect();
                if names.is_empty() {
                    return Err(Failure::usage("no persons to read: import some first"));
                }
                Call::BatchGetPersons(names)
            }
            "list-persons" => {
                let mut token = String::new();
                for _ in 0..self.skip_pages {
                    token = page(token).await?.next_page_token;
                    if token.is_empty() {
                        return Err(Failure::usage("--skip-pages goes past the last page"));
                    }
                }
                Call::ListPersons {
                    prefix: self.region_prefix.clone(),
                    page_token: token,
                }
            }
            "check-eligibility" => self.eligibility_call(channel, token).await?,
            other => {
                return Err(Failure::usage(format!(
                    "--call {other:?}: one of server-info, health, get-person, lookup-person, batch-get-persons, list-persons, check-eligibility"
                )));
            }
        };
        Ok(call)
    }
}

impl IdentityCallArgs {
    /// check-eligibility: the first poverty-alleviated person of the region, and the post given
    /// or one seeded in their village.
    async fn eligibility_call(&self, channel: &Channel, token: &str) -> Result<Call, Failure> {
        use crate::bench_suite::{bearer, poverty_alleviated};
        let bearer = bearer(token)?;
        let hire_date = crate::format::parse_date("--hire-date", &self.hire_date)?;
        let (person_id, village, _) = poverty_alleviated(channel, &bearer, &self.region_prefix, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Failure::usage("no poverty-alleviated person to check: import some first"))?;
        let post = match (&self.post, &self.posts_database) {
            (Some(post), _) => post.clone(),
            (None, Some(database)) => crate::bench_posts::seed_post(database, &village).await?,
            (None, None) => {
                return Err(Failure::usage(
                    "--call check-eligibility needs --post, or --posts-database to seed one",
                ));
            }
        };
        // What the loaded call answers, once, so a run that measures refusals says so.
        let person = format!("persons/{person_id}");
        let mut request = tonic::Request::new(bangfu_proto::welfare_post::v1::CheckEligibilityRequest {
            subject: Some(
                bangfu_proto::welfare_post::v1::check_eligibility_request::Subject::PersonAndPost(
                    bangfu_proto::welfare_post::v1::PersonAndPost {
                        person: person.clone(),
                        post: post.clone(),
                    },
                ),
            ),
            hire_date: Some(hire_date),
        });
        request.metadata_mut().insert("authorization", bearer.clone());
        let answer =
            bangfu_proto::welfare_post::v1::welfare_post_service_client::WelfarePostServiceClient::new(channel.clone())
                .check_eligibility(request)
                .await
                .map_err(|s| crate::client::call_failed(&s))?
                .into_inner()
                .eligibility
                .unwrap_or_default();
        let reasons: Vec<String> = answer.reasons.iter().map(|r| format!("{r:?}")).collect();
        say!(
            "checking {person} against {post} on {}: eligible {}{}",
            self.hire_date,
            answer.eligible,
            if reasons.is_empty() {
                String::new()
            } else {
                format!(", reasons {}", reasons.join("; "))
            }
        );
        Ok(Call::CheckEligibility {
            person,
            post,
            hire_date,
        })
    }
}

/// The medians of a comparison's rounds.
struct Comparison {
    throughput_ratio: Spread,
    p99_ratio: Spread,
}

/// The median of a ratio over the rounds, with its lowest and highest: a target met "in every
/// run" is judged on the range, not on the median alone.
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

impl Spread {
    fn of(values: &mut [f64]) -> Self {
        values.sort_by(f64::total_cmp);
        let median = match values.len() {
            0 => 0.0,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        };
        Self {
            median,
            low: values.first().copied().unwrap_or(0.0),
            high: values.last().copied().unwrap_or(0.0),
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3}x ({:.3}–{:.3})", self.median, self.low, self.high)
    }
}

/// Loads the bare and the layered server alternately, `rounds` times each.
async fn compare(
    load: &LoadArgs,
    rounds: u32,
    bare: &[Channel],
    layered: &[Channel],
    token: &str,
    token_to_bare: bool,
) -> Result<Comparison, Failure> {
    let (mut throughput, mut p99) = (Vec::new(), Vec::new());
    for round in 1..=rounds.max(1) {
        let plain = load_run(load, bare, token_to_bare.then_some(token)).await?;
        say!("round {round}  {}", plain.line("bare"));
        let guarded = load_run(load, layered, Some(token)).await?;
        say!("round {round}  {}", guarded.line("layered"));
        if plain.errors > 0 || guarded.errors > 0 {
            say!("warning: some calls failed; this round is not comparable");
        }
        throughput.push(guarded.throughput() / plain.throughput());
        p99.push(
            guarded.latency_us.value_at_quantile(0.99) as f64 / plain.latency_us.value_at_quantile(0.99).max(1) as f64,
        );
    }
    Ok(Comparison {
        throughput_ratio: Spread::of(&mut throughput),
        p99_ratio: Spread::of(&mut p99),
    })
}

/// Throw-away development keys for the platform benchmark, removed when dropped.
struct BenchKeys {
    dir: std::path::PathBuf,
}

impl BenchKeys {
    fn new() -> Result<Self, Failure> {
        let dir = std::env::temp_dir().join(format!("bangfu-bench-{}", new_token_id()));
        keys::ensure_development_keys(&dir).map_err(|e| Failure::failed(e.to_string()))?;
        Ok(Self { dir })
    }

    fn verifier(&self) -> Result<Verifier, Failure> {
        let ring = KeyRing::load(&self.dir, DevelopmentKeys::Allow).map_err(|e| Failure::failed(e.to_string()))?;
        Ok(Verifier::new(
            ring,
            "bangfu",
            Duration::from_secs(30),
            Revocations::none(),
        ))
    }

    fn admin_token(&self) -> Result<String, Failure> {
        let signer = TokenSigner::load(&keys::signing_key_path(&self.dir, DEVELOPMENT_DEPARTMENT_KID))
            .map_err(|e| Failure::failed(e.to_string()))?;
        let admin = UserIdentity {
            subject: "bench-admin".into(),
            department: Department::Hr,
            roles: vec![Role::Admin],
            scope: RegionScope::Country,
        };
        signer
            .sign(&signer.user_claims(&admin, "bangfu", unix_now(), Duration::from_secs(3600)))
            .map_err(|e| Failure::failed(e.to_string()))
    }
}

impl Drop for BenchKeys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
