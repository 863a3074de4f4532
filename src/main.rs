use std::process::ExitCode;

use clap::{Parser, Subcommand};
use davit::config::{Config, DataArgs, ServeArgs};
use tracing_subscriber::EnvFilter;

/// davit: your files over WebDAV, S3 and a REST API, from one server.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the defaults work on a fresh machine)
    Serve(Box<ServeArgs>),
    /// Administration: offline on a stopped data folder, or through a running server (--server)
    Admin(davit::admin::AdminArgs),
}

/// glibc gives each thread that frees memory its own arena and raises its mmap threshold
/// to the largest block freed, so the ~1 MiB chunk buffers that cross between tokio workers
/// and blocking threads pile up in many arenas: a 1 GiB transfer reached 158 MiB of RSS.
/// One arena keeps it near 70 MiB and measured faster here (2 cores: little contention).
/// A fixed mmap threshold of 6 MiB sends the 8 MiB segment buffers of uploads to mmap, so
/// each is returned when freed (ten concurrent multipart parts: 160 -> 125-133 MiB), while
/// chunk-sized buffers stay on the heap; fixing it also fixes the trim threshold, which is
/// set high so the heap is not given back and faulted in again on every chunk (GET fell
/// from 2.4 to 1.1 GB/s with glibc's 128 KiB; 8 MiB still cost a fifth of the throughput).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; it is called first thing in main,
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 6 * 1024 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 * 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// Every connection holds a descriptor, and the usual soft limit (1,024) is what let a few
/// hundred idle connections starve the server: take all the hard limit allows.
#[cfg(unix)]
#[allow(unsafe_code)]
fn raise_file_limit() {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the rlimit passed by reference,
    // which lives on this stack frame for both calls.
    let (before, raised) = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 || rl.rlim_cur >= rl.rlim_max {
            return;
        }
        let before = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        (before, libc::setrlimit(libc::RLIMIT_NOFILE, &rl) == 0)
    };
    if raised {
        tracing::debug!(from = before, to = rl.rlim_max, "raised the open file limit");
    } else {
        tracing::warn!(limit = before, "could not raise the open file limit");
    }
}

#[cfg(not(unix))]
fn raise_file_limit() {}

/// What `DAVIT_LOG` asks for (info when unset or malformed).
fn log_filter(asked: Option<&str>) -> EnvFilter {
    asked.and_then(|a| EnvFilter::try_new(a).ok()).unwrap_or_else(|| EnvFilter::new("info"))
}

/// Whether a log line may be written whatever `DAVIT_LOG` asks: none of s3s's below info.
/// s3s logs every request it serves whole at debug, headers included, and every request no
/// other front end takes reaches it, so `Authorization` (Basic passwords, bearer tokens,
/// SigV4) would reach the log, which secrets never do. A cap of its own, not a directive
/// of the filter: a more specific one (`s3s::service=debug`) would win over that.
fn never_secret(meta: &tracing::Metadata<'_>) -> bool {
    !(meta.target().starts_with("s3s") && *meta.level() > tracing::Level::INFO)
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::fmt()
            .with_env_filter(log_filter(std::env::var("DAVIT_LOG").ok().as_deref()))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .finish()
            .with(tracing_subscriber::filter::filter_fn(never_secret))
            .init();
    }
    raise_file_limit();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let reason = format!("{e:#}").replace('\n', " ");
            eprintln!("davit: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = Config::resolve(&cli.data, &args)?;
            let prepared = davit::prepare(&config)?;
            let (storage, generated) = davit::open_storage(&config)?;
            if let Some(password) = generated {
                eprintln!("davit: created the first admin account 'admin' with password: {password}");
                eprintln!("davit: this password is shown once; set DAVIT_ADMIN_PASSWORD to choose it yourself");
            }
            // Tells `admin migrate` and key rotation on a shared store that this node runs.
            let heartbeat = storage.start_heartbeat()?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let served = runtime.block_on(davit::run(config, storage, prepared, davit::shutdown_signal()));
            drop(heartbeat);
            served
        }
        Command::Admin(args) => {
            let mut config = Config::resolve(&cli.data, &ServeArgs::default())?;
            // The server's --trash-days may come from its flags or environment, which an
            // admin command does not see: it never removes trash itself.
            config.ops.trash_collect = false;
            davit::admin::main(&config, args)
        }
    }
}
