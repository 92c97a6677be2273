//! `keyward`: the command-line face of Keyward and the adapter tools call for credentials.
//!
//! Every command is a thin request to the agent (started on demand); the CLI never opens the
//! vault itself. Errors are one line on stderr with a non-zero exit.

#![forbid(unsafe_code)]

mod aliyuncmd;
mod auditcmd;
mod awscmd;
mod connect;
mod container;
mod dockercmd;
mod duration_arg;
mod exec;
mod gitcmd;
mod grantscmd;
mod keys;
mod kubecmd;
mod oauthcmd;
mod policycmd;
mod prompt;
mod vaultcmd;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// Keyward: a two-factor key vault that hands tools short-lived credentials.
#[derive(Parser)]
#[command(name = "keyward", version, about, propagate_version = true)]
struct Cli {
    /// Read passphrases, codes and answers from this file descriptor, one line per prompt (for scripts).
    #[arg(long, global = true, value_name = "FD")]
    input_fd: Option<u32>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
// Parsed once per process: boxing variants would only add noise.
#[allow(clippy::large_enum_variant)]
enum Cmd {
    /// Create the vault: passphrase, TOTP factor, recovery codes.
    Init(InitArgs),
    /// Unlock the vault with the passphrase and a second factor.
    Unlock {
        /// Use a one-time recovery code instead of the authenticator app.
        #[arg(long, conflicts_with = "fido2")]
        recovery: bool,
        /// Use a FIDO2 security key instead of the authenticator app.
        #[arg(long)]
        fido2: bool,
    },
    /// Lock the vault now (wipes keys and cached credentials).
    Lock,
    /// Show whether the vault is locked, the keys that need action and the policy in force.
    ///
    /// Exit status: 0 every key is ok, 1 a key is due soon, 2 a key is overdue, expired or
    /// unused, 3 the status could not be read.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Store a key.
    #[command(subcommand)]
    Add(AddCmd),
    /// List stored keys (metadata only).
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show one key's metadata (never its secret).
    Show {
        /// Key name.
        name: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Change a key's owner, purpose, tags (given tags replace the old ones), rotation interval
    /// or expiry; fields not given stay.
    Edit {
        /// Key name.
        name: String,
        #[command(flatten)]
        meta: MetaArgs,
        /// Clear a field: owner, purpose, tags, rotate-every, expires (repeatable).
        #[arg(long, value_name = "FIELD")]
        clear: Vec<String>,
        /// A static key: let `keyward exec` hand it to the command it starts as a lease (`env`:
        /// in a variable, `static:NAME=VAR`, or a file descriptor; `file`: only in a file
        /// descriptor, `static:NAME=fd:VAR`), or no longer (`off`). Allowing asks for a code
        /// from your authenticator app.
        #[arg(long, value_name = "MODE", value_parser = ["env", "file", "off"])]
        allow_lease: Option<String>,
    },
    /// Rotate a key. An AWS key is rotated at IAM: a new access key is created, checked and
    /// stored, the old one deactivated and deleted after the grace period; a crash at any step
    /// is finished at the next unlock. Other keys (and AWS with --manual) take the new value,
    /// asked for, never from the command line.
    Rotate {
        /// Key name.
        name: String,
        /// Store a value rotated elsewhere instead (asked for).
        #[arg(long)]
        manual: bool,
        /// How long the deactivated old AWS key is kept before it is deleted, e.g. 0, 1h, 7d
        /// (default 1 day; at most 90 days).
        #[arg(long, value_parser = parse_grace, conflicts_with = "manual")]
        grace: Option<Duration>,
    },
    /// A key's history: added, edited, rotated, used (from the audit trail).
    History {
        /// Key name.
        name: String,
        /// How many of the newest records.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove a key from the vault and the keychain.
    Remove {
        /// Key name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Check an AWS or OAuth2 key works: issue a short-lived credential and show whose it is (no
    /// secrets printed).
    Test {
        /// Key name.
        name: String,
    },
    /// Run a command with short-lived credentials for the profiles named, and no long-lived key.
    ///
    /// PROFILE is aws:NAME (the child's AWS SDK gets its session from a credentials endpoint on
    /// 127.0.0.1 and refreshes it by itself; AWS_REGION is set when the key has a region),
    /// oauth2:NAME=VAR (the access token in VAR, its expiry in VAR_EXPIRES_AT) or a bare NAME.
    /// Approvals, unlocking and MFA codes are asked for before the command starts. The exit
    /// status is the command's (128 + N if signal N ended it); SIGTERM, SIGHUP, SIGUSR1 and
    /// SIGUSR2 are passed on to it.
    #[command(after_help = "Example: keyward exec aws:prod oauth2:ci=CI_TOKEN -- terraform apply")]
    Exec {
        /// Profiles: aws:NAME, oauth2:NAME=VAR, or NAME.
        #[arg(required = true, value_name = "PROFILE")]
        profiles: Vec<String>,
        /// The variable for the token of the one OAuth2 profile given without =VAR.
        #[arg(long = "env", value_name = "VAR")]
        env_var: Option<String>,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<std::ffi::OsString>,
    },
    /// git's credential helper (what `keyward setup git` configures; git runs it): answers
    /// only for hosts a key is bound to.
    #[command(name = "git-credential")]
    GitCredential {
        /// What git asks: get, store or erase.
        action: String,
    },
    /// docker's credential helper (what `keyward setup docker` configures; docker runs it as
    /// docker-credential-keyward).
    #[command(name = "docker-credential")]
    DockerCredential {
        /// What docker asks: get, store, erase, list or version.
        action: String,
    },
    /// Takes what the Alibaba Cloud SDK saved into Keyward's profiles of ~/.aliyun/config.json
    /// out again, for a few seconds (`cred aliyun` starts it).
    #[command(name = "aliyun-scrub", hide = true)]
    AliyunScrub,
    /// Print short-lived credentials in a tool's format.
    #[command(subcommand)]
    Cred(CredCmd),
    /// Point a tool at Keyward.
    #[command(subcommand)]
    Setup(SetupCmd),
    /// Import keys from a tool's plaintext files.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Manage second factors.
    #[command(subcommand)]
    Factor(FactorCmd),
    /// Inspect the audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Admin policy files.
    #[command(subcommand)]
    Policy(policycmd::PolicyCmd),
    /// The key directory for admins: every key, its owner, dates, state and rule (no secret).
    Report {
        /// json, csv, or one self-contained HTML page.
        #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
        format: ReportFormat,
        /// Write it to this file (whole or not at all) instead of standard output.
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
    },
    /// Programs allowed to get credentials (listed, revoked, or granted ahead).
    Grants {
        #[command(subcommand)]
        cmd: Option<GrantsCmd>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Vault settings.
    #[command(subcommand)]
    Settings(SettingsCmd),
    /// Run or stop the agent.
    Agent(AgentArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or PowerShell
    /// (`keyward completions bash > ~/.local/share/bash-completion/completions/keyward`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages, `keyward.1` and one per command (`keyward-cred-aws.1`, …), into a
    /// directory (`scripts/run` puts them in ~/.local/share/man/man1).
    Man {
        /// The directory (created when missing).
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
}

/// How `keyward report` writes the directory.
#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    /// One JSON document.
    Json,
    /// One row per key, for a spreadsheet.
    Csv,
    /// One page with state colours and sortable columns; loads nothing from the network.
    Html,
}

/// Where a new vault keeps its secrets.
#[derive(Clone, Copy, ValueEnum)]
enum KeystoreArg {
    /// The OS keychain (Secret Service / Keychain / Credential Manager).
    Keychain,
    /// The catalog file; only for machines without a keychain.
    File,
}

#[derive(Args)]
struct InitArgs {
    /// Where secrets are stored.
    #[arg(long, value_enum, default_value = "keychain")]
    keystore: KeystoreArg,
    /// Argon2id memory in MiB (default: 64, with passes calibrated to ~1 s). Lower values are for tests.
    #[arg(long, value_name = "MIB")]
    kdf_memory_mib: Option<u32>,
    /// Argon2id passes (default: calibrated to ~1 s).
    #[arg(long, value_name = "N", requires = "kdf_memory_mib")]
    kdf_iterations: Option<u32>,
}

#[derive(Args, Default)]
struct MetaArgs {
    /// Who is responsible for this key.
    #[arg(long)]
    owner: Option<String>,
    /// What the key is for.
    #[arg(long)]
    purpose: Option<String>,
    /// A tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Rotation interval, e.g. 90d.
    #[arg(long, value_parser = parse_days)]
    rotate_every: Option<u32>,
    /// When the key expires (RFC 3339, e.g. 2027-01-31T00:00:00Z).
    #[arg(long)]
    expires: Option<String>,
}

#[derive(Subcommand)]
enum AddCmd {
    /// An AWS access key (AKIA…); tools get STS session credentials from it.
    Aws(AddAwsArgs),
    /// An OAuth2 client (id and secret); tools get access tokens from the client-credentials grant.
    Oauth2(AddOAuth2Args),
    /// An Alibaba Cloud AccessKey (LTAI…); tools get STS tokens from it (AssumeRole) when it has
    /// a RAM role.
    Aliyun(AddAliyunArgs),
    /// A plain token or API key.
    Static {
        /// Key name.
        name: String,
        #[command(flatten)]
        meta: MetaArgs,
    },
}

#[derive(Args)]
struct AddAwsArgs {
    /// Key name; also the AWS profile name used by `setup aws`.
    name: String,
    /// Access key id (asked for when absent; the secret is always asked for).
    #[arg(long)]
    access_key_id: Option<String>,
    /// Role to assume (AssumeRole instead of GetSessionToken).
    #[arg(long)]
    role_arn: Option<String>,
    /// MFA device serial or ARN (a code is asked for when a session is issued).
    #[arg(long)]
    mfa_serial: Option<String>,
    /// Region for STS.
    #[arg(long)]
    region: Option<String>,
    /// Session duration, e.g. 1h or 12h (30 minutes to 36 hours).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// STS endpoint override (private endpoints, tests).
    #[arg(long)]
    sts_endpoint: Option<String>,
    /// IAM endpoint override, where `keyward rotate` creates and retires keys (private
    /// endpoints, tests).
    #[arg(long)]
    iam_endpoint: Option<String>,
    #[command(flatten)]
    meta: MetaArgs,
}

#[derive(Args)]
struct AddAliyunArgs {
    /// Key name; also the profile `setup aliyun` writes.
    name: String,
    /// AccessKey ID (asked for when absent; the secret is always asked for).
    #[arg(long)]
    access_key_id: Option<String>,
    /// RAM role to assume (acs:ram::ACCOUNT:role/NAME); without one tools get the AccessKey
    /// itself.
    #[arg(long)]
    role_arn: Option<String>,
    /// Region, e.g. cn-hangzhou (the STS endpoint's, and the one tools get).
    #[arg(long)]
    region: Option<String>,
    /// Token lifetime, e.g. 1h (15 minutes to 12 hours; the role's maximum applies).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// STS endpoint override (private endpoints, tests).
    #[arg(long)]
    sts_endpoint: Option<String>,
    #[command(flatten)]
    meta: MetaArgs,
}

#[derive(Args)]
struct AddOAuth2Args {
    /// Key name; also the profile tools ask for (`keyward cred oauth2 --profile NAME`).
    name: String,
    /// Client id (the secret is always asked for).
    #[arg(long)]
    client_id: String,
    /// The authorization server's token endpoint (https://…).
    #[arg(long)]
    token_url: String,
    /// A scope to ask for (repeatable, or several separated by spaces); default: the server's.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// How the client authenticates to the token endpoint.
    #[arg(long, value_enum, default_value = "basic")]
    auth: ClientAuthArg,
    /// Token introspection endpoint (RFC 7662); `keyward test` uses it to confirm the client and scope.
    #[arg(long)]
    introspection_url: Option<String>,
    #[command(flatten)]
    meta: MetaArgs,
}

/// Client authentication at the token endpoint.
#[derive(Clone, Copy, ValueEnum)]
enum ClientAuthArg {
    /// HTTP Basic (client_secret_basic).
    Basic,
    /// Id and secret in the request body (client_secret_post).
    Post,
}

#[derive(Subcommand)]
enum CredCmd {
    /// AWS `credential_process` JSON (version 1) with STS session credentials.
    Aws {
        /// Profile (key name).
        #[arg(long)]
        profile: String,
    },
    /// An OAuth2 access token from the client-credentials grant.
    Oauth2 {
        /// Profile (key name).
        #[arg(long)]
        profile: String,
        /// Output: the bare token, an `Authorization:` header line, or JSON with its expiry.
        #[arg(long, value_enum, default_value = "token")]
        format: oauthcmd::Format,
    },
    /// The Alibaba Cloud CLI's `External` process JSON: an STS token (StsToken mode), or the
    /// AccessKey of a key without a role (AK mode).
    Aliyun {
        /// Profile (key name).
        #[arg(long)]
        profile: String,
    },
    /// A Kubernetes `ExecCredential` (client.authentication.k8s.io/v1) for a kubeconfig exec
    /// user: an OAuth2 key's access token or a static key's lease, with its expiry.
    Kube {
        /// Profile (key name).
        #[arg(long)]
        profile: String,
    },
}

#[derive(Subcommand)]
enum SetupCmd {
    /// Write `credential_process` for a key into the AWS config file.
    Aws {
        /// Key name.
        name: String,
        /// AWS profile to write (defaults to the key name).
        #[arg(long)]
        profile: Option<String>,
    },
    /// Write an `External` profile for an Alibaba Cloud key into ~/.aliyun/config.json (the
    /// aliyun CLI and the SDKs read it), with a backup of the old file.
    Aliyun {
        /// Key name.
        name: String,
        /// Profile to write (defaults to the key name).
        #[arg(long)]
        profile: Option<String>,
    },
    /// Make git ask Keyward for HOST's credentials: the key is bound to git for HOST in the
    /// vault (asks for an authenticator code); git gets a static key's lease or an OAuth2 token
    /// (global git config).
    Git {
        /// The host (host or host:port) as git names it, e.g. github.com.
        host: String,
        /// The key whose lease or token git gets.
        #[arg(long)]
        key: String,
        /// The user name git sends when the URL has none (default: token).
        #[arg(long)]
        username: Option<String>,
    },
    /// Add a user to your kubeconfig whose credentials come from Keyward (`keyward cred kube`):
    /// KUBECONFIG respected, every other byte kept, a backup of the old file.
    Kube {
        /// The static or OAuth2 key whose lease or token kubectl gets.
        #[arg(long)]
        key: String,
        /// The user's name in the kubeconfig (default: keyward-KEY).
        #[arg(long)]
        user: Option<String>,
        /// Let Keyward ask on kubectl's terminal (interactiveMode IfAvailable, not Never).
        #[arg(long)]
        interactive: bool,
    },
    /// Make docker ask Keyward for REGISTRY's credentials (credHelpers in ~/.docker/config.json
    /// or $DOCKER_CONFIG): `docker login` then vaults the password; a plain-text login docker
    /// kept is vaulted and removed; --key binds a key you have (asks for an authenticator code).
    Docker {
        /// The registry (host or host:port), e.g. ghcr.io.
        registry: String,
        /// A static or OAuth2 key to answer with, instead of what `docker login` stores.
        #[arg(long)]
        key: Option<String>,
        /// The user name docker sends with it (with --key; default for a token: oauth2accesstoken).
        #[arg(long, requires = "key")]
        username: Option<String>,
    },
}

#[derive(Subcommand)]
enum ImportCmd {
    /// Import AccessKeys from ~/.aliyun/config.json (AK and RamRoleArn profiles).
    Aliyun {
        /// Only these profiles (repeatable; default: all with an AccessKey).
        #[arg(long = "profile")]
        profiles: Vec<String>,
        /// Take the imported keys out of the file without asking (profiles with a role then run
        /// Keyward, the others are removed; a 0600 backup is kept).
        #[arg(long, conflicts_with = "keep_plaintext")]
        remove_plaintext: bool,
        /// Keep the plaintext keys without asking.
        #[arg(long)]
        keep_plaintext: bool,
        /// STS endpoint override for the imported keys (tests, private endpoints).
        #[arg(long)]
        sts_endpoint: Option<String>,
    },
    /// Import long-lived keys from the AWS shared credentials file.
    Aws {
        /// Only these profiles (repeatable; default: all with long-lived keys).
        #[arg(long = "profile")]
        profiles: Vec<String>,
        /// Remove the imported plaintext keys from the credentials file without asking (a 0600 backup is kept).
        #[arg(long, conflicts_with = "keep_plaintext")]
        remove_plaintext: bool,
        /// Keep the plaintext keys without asking.
        #[arg(long)]
        keep_plaintext: bool,
        /// STS endpoint override for the imported keys (tests, private endpoints).
        #[arg(long)]
        sts_endpoint: Option<String>,
    },
}

#[derive(Subcommand)]
enum FactorCmd {
    /// List enrolled factors and recovery codes left.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Enroll another authenticator app (vault must be unlocked).
    AddTotp {
        /// A label for it.
        #[arg(long, default_value = "authenticator app")]
        label: String,
    },
    /// Enroll a FIDO2 security key (vault must be unlocked).
    AddFido2 {
        /// A label for it.
        #[arg(long, default_value = "security key")]
        label: String,
    },
    /// Replace all recovery codes with new ones (vault must be unlocked).
    NewRecoveryCodes,
    /// Remove a factor by id (vault must be unlocked).
    Remove {
        /// Factor id from `keyward factor list`.
        id: String,
    },
}

#[derive(Subcommand)]
enum SettingsCmd {
    /// Lock after this much idle time, e.g. 10m (1 minute to 24 hours); kept in the vault.
    AutoLock {
        /// Idle time.
        #[arg(value_parser = parse_duration)]
        after: Duration,
    },
    /// Whether allowing a program for hours or until lock (at the terminal or in the app) also
    /// asks for an authenticator code; turning it off asks for one.
    GrantsNeedCode {
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

#[derive(Subcommand)]
enum GrantsCmd {
    /// Revoke a grant.
    Revoke {
        /// Grant id from `keyward grants`.
        id: String,
    },
    /// Allow a program a profile ahead of time (for scripts and CI runners).
    Allow {
        /// The program's executable (absolute, as /proc/PID/exe shows it).
        #[arg(long)]
        exe: String,
        /// For interpreters: the script it runs.
        #[arg(long)]
        script: Option<String>,
        /// Profile (key name).
        #[arg(long)]
        profile: String,
        /// How long, in hours (default: until the vault locks).
        #[arg(long)]
        hours: Option<u32>,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check that no audit record was edited or deleted.
    Verify,
    /// List records by key, event, client and time; export them as JSON lines or CSV.
    List(auditcmd::ListArgs),
    /// Show the latest audit records.
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct AgentArgs {
    #[command(subcommand)]
    action: Option<AgentAction>,
    /// Lock after this much idle time, e.g. 15m.
    #[arg(long, global = true, env = "KEYWARD_AUTO_LOCK", value_parser = parse_duration)]
    auto_lock: Option<Duration>,
    /// Run for the desktop app: a tray icon, notifications, and the app's window opened when a
    /// program asks for credentials (the app starts its agent this way). The app is the
    /// `keyward-desktop` installed beside this executable, and no other: the agent hands its
    /// window a token that reveals keys.
    #[arg(long, global = true)]
    tray: bool,
}

#[derive(Subcommand)]
enum AgentAction {
    /// Run in the foreground (the default).
    Run,
    /// Start in the background if not running.
    Start,
    /// Stop the running agent (locks first).
    Stop,
}

fn parse_grace(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (use e.g. 0, 12h, 7d)"))
}

use duration_arg::parse as parse_duration;

/// `--remove-plaintext` / `--keep-plaintext` of an import: decided, or to be asked (`None`).
fn plaintext_choice(remove: bool, keep: bool) -> Option<bool> {
    match (remove, keep) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

fn parse_days(s: &str) -> Result<u32, String> {
    let d = parse_duration(s)?;
    let days = d.as_secs() / 86_400;
    if days == 0 || days > 3650 {
        return Err("use 1 to 3650 days, e.g. 90d".to_owned());
    }
    Ok(days as u32)
}

fn run(cli: Cli) -> Result<()> {
    let input_fd = cli.input_fd;
    match cli.command {
        Cmd::Init(a) => vaultcmd::init(
            input_fd,
            matches!(a.keystore, KeystoreArg::File),
            a.kdf_memory_mib,
            a.kdf_iterations,
        ),
        Cmd::Unlock { recovery, fido2 } => vaultcmd::unlock(
            input_fd,
            if recovery {
                vaultcmd::FactorKind::Recovery
            } else if fido2 {
                vaultcmd::FactorKind::Fido2
            } else {
                vaultcmd::FactorKind::Totp
            },
        ),
        Cmd::Lock => vaultcmd::lock(),
        Cmd::Status { json } => vaultcmd::status(json).map(|code| {
            // A script reads the state from the exit status; the output is already written.
            if code != 0 {
                let _ = std::io::Write::flush(&mut std::io::stdout());
                std::process::exit(code.into());
            }
        }),
        Cmd::Add(AddCmd::Aws(a)) => keys::add_aws(
            input_fd,
            keys::AddAws {
                name: a.name,
                access_key_id: a.access_key_id,
                role_arn: a.role_arn,
                mfa_serial: a.mfa_serial,
                region: a.region,
                duration: a.duration,
                sts_endpoint: a.sts_endpoint,
                iam_endpoint: a.iam_endpoint,
            },
            a.meta.into(),
        ),
        Cmd::Add(AddCmd::Aliyun(a)) => aliyuncmd::add(
            input_fd,
            aliyuncmd::AddAliyun {
                name: a.name,
                access_key_id: a.access_key_id,
                role_arn: a.role_arn,
                region: a.region,
                duration: a.duration,
                sts_endpoint: a.sts_endpoint,
            },
            a.meta.into(),
        ),
        Cmd::Add(AddCmd::Static { name, meta }) => keys::add_static(input_fd, name, meta.into()),
        Cmd::Add(AddCmd::Oauth2(a)) => oauthcmd::add(
            input_fd,
            oauthcmd::AddOAuth2 {
                name: a.name,
                client_id: a.client_id,
                token_url: a.token_url,
                scopes: a
                    .scopes
                    .iter()
                    .flat_map(|s| s.split_whitespace())
                    .map(str::to_owned)
                    .collect(),
                auth: match a.auth {
                    ClientAuthArg::Basic => keyward_core::ClientAuth::Basic,
                    ClientAuthArg::Post => keyward_core::ClientAuth::Post,
                },
                introspection_url: a.introspection_url,
            },
            a.meta.into(),
        ),
        Cmd::List { json } => keys::list(json),
        Cmd::Show { name, json } => keys::show(&name, json),
        Cmd::Edit {
            name,
            meta,
            clear,
            allow_lease,
        } => {
            let meta: keyward_agent::protocol::MetaInput = meta.into();
            let changes_meta = meta.owner.is_some()
                || meta.purpose.is_some()
                || !meta.tags.is_empty()
                || meta.rotation_interval_days.is_some()
                || meta.expires.is_some()
                || !clear.is_empty();
            if changes_meta || allow_lease.is_none() {
                keys::edit(&name, meta, &clear)?;
            }
            match allow_lease.as_deref() {
                Some("env") => {
                    keys::set_lease(input_fd, &name, Some(keyward_core::entry::LeaseMode::Env))
                }
                Some("file") => {
                    keys::set_lease(input_fd, &name, Some(keyward_core::entry::LeaseMode::File))
                }
                Some(_) => keys::set_lease(input_fd, &name, None),
                None => Ok(()),
            }
        }
        Cmd::Rotate {
            name,
            manual,
            grace,
        } => keys::rotate(input_fd, &name, manual, grace),
        Cmd::History { name, lines, json } => keys::history(&name, lines, json),
        Cmd::Settings(SettingsCmd::AutoLock { after }) => vaultcmd::set_auto_lock(after),
        Cmd::Settings(SettingsCmd::GrantsNeedCode { state }) => {
            vaultcmd::set_grants_need_code(input_fd, state == "on")
        }
        Cmd::Factor(FactorCmd::NewRecoveryCodes) => vaultcmd::factor_new_recovery_codes(input_fd),
        Cmd::Remove { name, yes } => keys::remove(input_fd, &name, yes),
        Cmd::Exec {
            profiles,
            env_var,
            command,
        } => {
            let code = exec::run(input_fd, &profiles, env_var, &command)?;
            // The child's status is ours; everything of ours is written.
            let _ = std::io::Write::flush(&mut std::io::stdout());
            std::process::exit(code);
        }
        Cmd::Cred(CredCmd::Aws { profile }) => awscmd::cred(input_fd, &profile),
        Cmd::Cred(CredCmd::Kube { profile }) => kubecmd::cred(&profile),
        Cmd::Cred(CredCmd::Aliyun { profile }) => aliyuncmd::cred(input_fd, &profile),
        Cmd::AliyunScrub => aliyuncmd::scrub_watch(),
        Cmd::Setup(SetupCmd::Aliyun { name, profile }) => {
            aliyuncmd::setup(&name, profile.as_deref())
        }
        Cmd::Cred(CredCmd::Oauth2 { profile, format }) => {
            oauthcmd::cred(input_fd, &profile, format)
        }
        Cmd::Setup(SetupCmd::Aws { name, profile }) => awscmd::setup(&name, profile.as_deref()),
        Cmd::Setup(SetupCmd::Git {
            host,
            key,
            username,
        }) => gitcmd::setup(input_fd, &host, &key, username.as_deref()),
        Cmd::Setup(SetupCmd::Docker {
            registry,
            key,
            username,
        }) => dockercmd::setup(input_fd, &registry, key.as_deref(), username.as_deref()),
        Cmd::Setup(SetupCmd::Kube {
            key,
            user,
            interactive,
        }) => kubecmd::setup(&key, user.as_deref(), interactive),
        Cmd::GitCredential { action } => gitcmd::helper(&action),
        // Answered before `run`: docker reads errors from stdout.
        Cmd::DockerCredential { .. } => Ok(()),
        Cmd::Import(ImportCmd::Aws {
            profiles,
            remove_plaintext,
            keep_plaintext,
            sts_endpoint,
        }) => awscmd::import(
            input_fd,
            &profiles,
            plaintext_choice(remove_plaintext, keep_plaintext),
            sts_endpoint,
        ),
        Cmd::Import(ImportCmd::Aliyun {
            profiles,
            remove_plaintext,
            keep_plaintext,
            sts_endpoint,
        }) => aliyuncmd::import(
            input_fd,
            &profiles,
            plaintext_choice(remove_plaintext, keep_plaintext),
            sts_endpoint,
        ),
        Cmd::Factor(FactorCmd::List { json }) => vaultcmd::factor_list(json),
        Cmd::Factor(FactorCmd::AddTotp { label }) => vaultcmd::factor_add_totp(input_fd, &label),
        Cmd::Factor(FactorCmd::AddFido2 { label }) => vaultcmd::factor_add_fido2(input_fd, &label),
        Cmd::Factor(FactorCmd::Remove { id }) => vaultcmd::factor_remove(&id),
        Cmd::Test { name } => keys::test(input_fd, &name),
        Cmd::Grants { cmd: None, json } => grantscmd::list(json),
        Cmd::Grants {
            cmd: Some(GrantsCmd::Revoke { id }),
            ..
        } => grantscmd::revoke(&id),
        Cmd::Grants {
            cmd:
                Some(GrantsCmd::Allow {
                    exe,
                    script,
                    profile,
                    hours,
                }),
            ..
        } => grantscmd::allow(input_fd, &exe, script, &profile, hours),
        Cmd::Audit(AuditCmd::Verify) => vaultcmd::audit_verify(),
        Cmd::Audit(AuditCmd::List(a)) => auditcmd::list(a),
        Cmd::Audit(AuditCmd::Tail { lines, json }) => vaultcmd::audit_tail(lines, json),
        Cmd::Policy(cmd) => policycmd::run(cmd),
        Cmd::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "keyward", &mut out);
            Ok(())
        }
        Cmd::Man { out } => {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            clap_mangen::generate_to(Cli::command(), &out)
                .with_context(|| format!("cannot write the manual pages into {}", out.display()))
        }
        Cmd::Report { format, output } => policycmd::report(
            match format {
                ReportFormat::Json => keyward_shell::report::Format::Json,
                ReportFormat::Csv => keyward_shell::report::Format::Csv,
                ReportFormat::Html => keyward_shell::report::Format::Html,
            },
            output.as_deref(),
        ),
        Cmd::Agent(a) => vaultcmd::agent(
            match a.action {
                None | Some(AgentAction::Run) => vaultcmd::AgentVerb::Run,
                Some(AgentAction::Start) => vaultcmd::AgentVerb::Start,
                Some(AgentAction::Stop) => vaultcmd::AgentVerb::Stop,
            },
            vaultcmd::AgentMode {
                auto_lock: a.auto_lock,
                tray: a.tray,
            },
        ),
    }
}

impl From<MetaArgs> for keyward_agent::protocol::MetaInput {
    fn from(m: MetaArgs) -> Self {
        keyward_agent::protocol::MetaInput {
            owner: m.owner,
            purpose: m.purpose,
            tags: m.tags,
            rotation_interval_days: m.rotate_every,
            expires: m.expires,
        }
    }
}

fn main() -> ExitCode {
    // Before anything is read: a crash while a passphrase is in memory writes no core file.
    if let Err(e) = keyward_agent::hardening::no_core_dumps() {
        eprintln!("keyward: {e}");
        return ExitCode::FAILURE;
    }
    // Run as `git-credential-keyward` (git's `credential.helper = keyward`) or
    // `docker-credential-keyward` (docker's `credHelpers`): the helper command.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| match n.to_str() {
            Some("git-credential-keyward") => Some("git-credential"),
            Some("docker-credential-keyward") => Some("docker-credential"),
            _ => None,
        });
    if let Some(sub) = invoked {
        args.splice(0..1, ["keyward".into(), sub.into()]);
    }
    let cli = Cli::parse_from(args);
    let is_agent = matches!(cli.command, Cmd::Agent(_));
    // 1 and 2 are states of the keys for `status`; its own failure must not look like one.
    let failure = match cli.command {
        Cmd::Status { .. } => ExitCode::from(3),
        _ => ExitCode::FAILURE,
    };
    // Only Keyward's own crates log by default: a dependency's internal error line must not turn
    // the CLI's one-line error into two.
    let default_level = if is_agent {
        "keyward=info,keyward_agent=info,keyward_core=info,warn"
    } else {
        "keyward=warn,keyward_agent=warn,keyward_core=warn,off"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    if let Cmd::DockerCredential { action } = &cli.command {
        return dockercmd::helper(action);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of causes joined, no backtrace, no secret (errors never hold any).
            let mut line = String::new();
            for cause in e.chain().map(|c| c.to_string()) {
                if !line.contains(&cause) {
                    if !line.is_empty() {
                        line.push_str(": ");
                    }
                    line.push_str(&cause);
                }
            }
            // One line, and nothing a terminal would act on: messages can quote an endpoint.
            eprintln!(
                "keyward: {}",
                keyward_agent::text::terminal_safe(&line, 2000)
            );
            failure
        }
    }
}
