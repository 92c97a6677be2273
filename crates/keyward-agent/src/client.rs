//! A small blocking client for the agent socket, used by the CLI (which has no async runtime of
//! its own on the fast path: `keyward cred aws` must start and answer in a few milliseconds).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use thiserror::Error;

use crate::activity::ActivityRecord;
use keyward_core::vault::FactorInfo;

use crate::approvals::Decision;
use crate::approvals::{ApprovalInfo, ClientId, GrantInfo};
use crate::protocol::{
    AliyunCredentials, AliyunKeyInput, AwsCredentials, AwsKeyInput, AwsRotated, ErrorReply,
    FactorInput, Fido2Challenge, Initialized, KeyTested, Listed, MetaInput, NewSecret, NewVault,
    OAuth2KeyInput, OAuth2Token, Reply, Request, RequestFrame, ResponseFrame, StatusInfo, Unlocked,
    WindowState, WireSecret, VERSION,
};

/// Largest response accepted (audit tails can be long).
const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
/// How long connecting may take (the agent's backlog full: it is flooded or hung).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for its answer by default: longer than any request the agent serves
/// (an approval waits up to 60 s for the user, a token endpoint 15 s).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// Errors talking to the agent.
#[derive(Debug, Error)]
pub enum ClientError {
    /// No agent listening.
    #[error("no Keyward agent is running")]
    NotRunning,
    /// Transport failure.
    #[error("lost the connection to the Keyward agent: {0}")]
    Io(#[from] std::io::Error),
    /// The agent did not accept or answer in time.
    #[error("the Keyward agent did not answer within {} s: it may be overloaded or hung (its log: $XDG_STATE_HOME/keyward/agent.log; `keyward agent stop` restarts it on the next command)", .0.as_secs())]
    Timeout(Duration),
    /// The agent's answer was unreadable.
    #[error("the Keyward agent sent an unreadable answer (is it another version? restart it with `keyward agent stop`)")]
    Protocol,
    /// The agent refused the request.
    #[error("{}", .0.message)]
    Agent(ErrorReply),
    /// The agent answered with another kind of reply than the request asks for.
    #[error("the Keyward agent gave an unexpected answer (is it another version? restart it with `keyward agent stop`)")]
    Unexpected,
}

/// What a credential request gives: the credential, or the question the user must answer first
/// (the agent has no approver of its own; see `approvals`).
#[derive(Debug)]
pub enum Issued<C> {
    /// The credential.
    Credential(C),
    /// The program is not approved yet: ask the user, then send `approve` and ask again.
    ApprovalNeeded(ApprovalInfo),
}

/// What `cred_kube` gives, by the kind of the key.
#[derive(Debug)]
pub enum KubeCredential {
    /// An OAuth2 key's access token.
    Token(OAuth2Token),
    /// A static key's lease.
    Lease(crate::protocol::StaticLease),
}

/// Typed requests: each sends one request and returns the one kind of reply it may get.
macro_rules! typed {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty {
        $req:expr => $pat:pat => $val:expr
    })*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub fn $name(&mut self, $($arg: $ty),*) -> Result<$out, ClientError> {
                    match self.call($req)? {
                        $pat => Ok($val),
                        _ => Err(ClientError::Unexpected),
                    }
                }
            )*
        }
    };
}

typed! {
    /// The agent's pid, if it answers at all.
    fn ping() -> u32 { Request::Ping {} => Reply::Pong { pid } => pid }
    /// The vault's and the agent's state.
    fn status() -> StatusInfo { Request::Status {} => Reply::Status(s) => *s }
    /// One key's metadata.
    fn show(name: &str) -> Listed {
        Request::Show { name: name.to_owned() } => Reply::Entry { entry } => *entry
    }
    /// Stores a new AWS key.
    fn add_aws(name: &str, meta: MetaInput, aws: AwsKeyInput) -> Listed {
        Request::AddAws { name: name.to_owned(), meta, aws } => Reply::Entry { entry } => *entry
    }
    /// Stores a new OAuth2 client.
    fn add_oauth2(name: &str, meta: MetaInput, oauth2: OAuth2KeyInput) -> Listed {
        Request::AddOauth2 { name: name.to_owned(), meta, oauth2 } => Reply::Entry { entry } => *entry
    }
    /// Stores a new Alibaba Cloud AccessKey.
    fn add_aliyun(name: &str, meta: MetaInput, aliyun: AliyunKeyInput) -> Listed {
        Request::AddAliyun { name: name.to_owned(), meta, aliyun } => Reply::Entry { entry } => *entry
    }
    /// Stores a new static token.
    fn add_static(name: &str, meta: MetaInput, value: WireSecret) -> Listed {
        Request::AddStatic { name: name.to_owned(), meta, value } => Reply::Entry { entry } => *entry
    }
    /// Changes a key's metadata.
    fn update(name: &str, meta: MetaInput) -> Listed {
        Request::Update { name: name.to_owned(), meta } => Reply::Entry { entry } => *entry
    }
    /// Replaces a key's secret.
    fn rotate(name: &str, secret: NewSecret) -> Listed {
        Request::Rotate { name: name.to_owned(), secret } => Reply::Entry { entry } => *entry
    }
    /// Rotates an AWS key at IAM (new key, checked, stored; old one deactivated, deleted after
    /// `grace_secs`).
    fn rotate_aws(name: &str, grace_secs: Option<u64>) -> AwsRotated {
        Request::RotateAws { name: name.to_owned(), grace_secs } => Reply::Rotated(r) => r
    }
    /// A key's audit rows.
    fn history(name: &str, limit: u32) -> Vec<ActivityRecord> {
        Request::History { name: name.to_owned(), limit } => Reply::Audit { rows } => rows
    }
    /// The live grants.
    fn grants() -> Vec<GrantInfo> { Request::Grants {} => Reply::Grants { grants } => grants }
    /// Gives a standing grant (needs a current authenticator code).
    fn grant_allow(client: ClientId, profile: &str, hours: Option<u32>, code: WireSecret) -> Vec<GrantInfo> {
        Request::GrantAllow { client, profile: profile.to_owned(), hours, code: Some(code) }
            => Reply::Grants { grants } => grants
    }
    /// The enrolled factors.
    fn factors() -> Vec<FactorInfo> { Request::Factors {} => Reply::Factors { factors } => factors }
    /// New recovery codes (the old ones stop working).
    fn recovery_regenerate(passphrase: WireSecret) -> Vec<WireSecret> {
        Request::RecoveryRegenerate { passphrase } => Reply::RecoveryCodes { codes } => codes
    }
    /// Verifies the audit trail; the number of rows.
    fn audit_verify() -> u64 { Request::AuditVerify {} => Reply::AuditVerified { rows } => rows }
    /// The last `limit` audit rows.
    fn audit_tail(limit: u32) -> Vec<ActivityRecord> {
        Request::AuditTail { limit } => Reply::Audit { rows } => rows
    }
    /// The audit rows a filter selects.
    fn audit_query(query: crate::protocol::AuditQuery) -> Vec<ActivityRecord> {
        Request::AuditQuery(query) => Reply::Audit { rows } => rows
    }
    /// Creates the vault (`unlock`: leave it unlocked; `window`: the app's window asks).
    fn init(new: NewVault) -> Initialized {
        Request::Init(new) => Reply::Initialized(i) => i
    }
    /// Unlocks with both factors (`window`: the app's window asks, and gets a window token).
    fn unlock(passphrase: WireSecret, factor: FactorInput, window: bool) -> Unlocked {
        Request::Unlock { passphrase, factor, window } => Reply::Unlocked(u) => u
    }
    /// Locks now.
    fn lock() -> () { Request::Lock {} => Reply::Done => () }
    /// Removes a key.
    fn remove(name: &str) -> () {
        Request::Remove { name: name.to_owned() } => Reply::Done => ()
    }
    /// Enrols another authenticator app.
    fn factor_add_totp(passphrase: WireSecret, totp_secret: WireSecret, totp_code: WireSecret, label: &str) -> Vec<FactorInfo> {
        Request::FactorAddTotp { passphrase, totp_secret, totp_code, label: label.to_owned() }
            => Reply::Factors { factors } => factors
    }
    /// Removes a factor.
    fn factor_remove(id: &str) -> () {
        Request::FactorRemove { id: id.to_owned() } => Reply::Done => ()
    }
    /// Starts registering a security key: the challenge for the authenticator.
    fn fido2_register_begin() -> Fido2Challenge {
        Request::Fido2RegisterBegin {} => Reply::Fido2Challenge(c) => c
    }
    /// Finishes registering a security key; the factors now enrolled.
    fn fido2_register_finish(
        ceremony: String, passphrase: WireSecret, response: serde_json::Value,
        hmac_output: WireSecret, label: &str
    ) -> Vec<FactorInfo> {
        Request::Fido2RegisterFinish { ceremony, passphrase, response, hmac_output, label: label.to_owned() }
            => Reply::Factors { factors } => factors
    }
    /// Starts unlocking with a security key: the challenge for the authenticator.
    fn fido2_unlock_begin() -> Fido2Challenge {
        Request::Fido2UnlockBegin {} => Reply::Fido2Challenge(c) => c
    }
    /// Sets the idle time before the vault locks itself.
    fn set_auto_lock(secs: u64) -> () { Request::SetAutoLock { secs } => Reply::Done => () }
    /// Allows static key `name` to be leased in `mode` (needs a current code), or no longer.
    fn set_lease(name: &str, mode: Option<keyward_core::entry::LeaseMode>, code: Option<WireSecret>) -> () {
        Request::SetLease { name: name.to_owned(), mode, code } => Reply::Done => ()
    }
    /// Binds key `key` to `tool`'s credential helper for `host` (needs a current code).
    fn bind(tool: keyward_core::HelperTool, host: &str, key: &str, username: Option<&str>, code: Option<WireSecret>) -> () {
        Request::Bind { tool, host: host.to_owned(), key: key.to_owned(), username: username.map(str::to_owned), code }
            => Reply::Done => ()
    }
    /// Vaults what a tool's `store` hands its helper (docker), bound to `host`.
    fn helper_store(tool: keyward_core::HelperTool, host: &str, username: &str, secret: WireSecret) -> () {
        Request::HelperStore { tool, host: host.to_owned(), username: username.to_owned(), secret }
            => Reply::Done => ()
    }
    /// Unbinds `host` from `tool`'s helper (docker logout); the key stays.
    fn helper_erase(tool: keyward_core::HelperTool, host: &str) -> () {
        Request::HelperErase { tool, host: host.to_owned() } => Reply::Done => ()
    }
    /// How tools may get key `name`: its lease setting, the helpers' hosts bound to it.
    fn key_uses(name: &str) -> crate::protocol::KeyUses {
        Request::KeyUses { name: name.to_owned() } => Reply::KeyUses(u) => u
    }
    /// Which key each tool's helper answers with for which host.
    fn bindings() -> Vec<crate::protocol::BindingInfo> {
        Request::Bindings {} => Reply::Bindings { bindings } => bindings
    }
    /// Turns on or off the need for a code on standing grants (off needs a current code).
    fn set_grants_need_code(on: bool, code: Option<WireSecret>) -> () {
        Request::SetGrantsNeedCode { on, code } => Reply::Done => ()
    }
    /// Revokes a grant.
    fn grant_revoke(id: &str) -> () {
        Request::GrantRevoke { id: id.to_owned() } => Reply::Done => ()
    }
    /// Answers an approval question (`token`: the app's window answers).
    fn approve(id: &str, decision: Decision, token: Option<WireSecret>, code: Option<WireSecret>) -> () {
        Request::Approve { id: id.to_owned(), decision, token, code } => Reply::Done => ()
    }
    /// A key's secret, for the app's window (`token`: its window token).
    fn reveal(name: &str, token: WireSecret) -> WireSecret {
        Request::Reveal { name: name.to_owned(), token } => Reply::Revealed { secret } => secret
    }
    /// The window confirms it is the user with a current code, to reveal for a minute.
    fn confirm_factor(token: WireSecret, code: WireSecret) -> () {
        Request::ConfirmFactor { token, code } => Reply::Done => ()
    }
    /// The window's poll ("I am open"): what it must show.
    fn window(token: Option<WireSecret>) -> WindowState {
        Request::Window { closed: false, token } => Reply::Window(w) => w
    }
    /// The window is closing (its token ends with it).
    fn window_closed(token: Option<WireSecret>) -> () {
        Request::Window { closed: true, token } => Reply::Done => ()
    }
    /// Asks the desktop agent to open its window (or bring it to the front).
    fn open_window() -> () { Request::OpenWindow {} => Reply::Done => () }
    /// Stops the agent (it locks first).
    fn shutdown() -> () { Request::Shutdown {} => Reply::Done => () }
}

impl Client {
    /// Session credentials for AWS profile `profile` (`approval`: the id of a question the user
    /// has answered).
    pub fn cred_aws(
        &mut self,
        profile: &str,
        mfa_code: Option<WireSecret>,
        approval: Option<String>,
    ) -> Result<Issued<AwsCredentials>, ClientError> {
        let req = Request::CredAws {
            profile: profile.to_owned(),
            mfa_code,
            approval,
            exec: self.exec.clone(),
        };
        self.issued(req, |r| match r {
            Reply::AwsCredentials(c) => Some(c),
            _ => None,
        })
    }

    /// A lease of static key `profile`: for the command `keyward exec` starts when one is set
    /// with [`Client::speak_for`], else for the tool that ran this keyward (a credential helper).
    pub fn lease_static(
        &mut self,
        profile: &str,
        approval: Option<String>,
    ) -> Result<Issued<crate::protocol::StaticLease>, ClientError> {
        self.lease_static_as(profile, keyward_core::entry::LeaseMode::Env, approval)
    }

    /// A lease of static key `profile` in `form` (a variable, or a file descriptor the command
    /// reads), where the key's lease setting allows that form.
    pub fn lease_static_as(
        &mut self,
        profile: &str,
        form: keyward_core::entry::LeaseMode,
        approval: Option<String>,
    ) -> Result<Issued<crate::protocol::StaticLease>, ClientError> {
        let req = Request::LeaseStatic {
            profile: profile.to_owned(),
            form,
            approval,
            exec: self.exec.clone(),
        };
        self.issued(req, |r| match r {
            Reply::Lease(l) => Some(l),
            _ => None,
        })
    }

    /// What `tool`'s credential helper answers for `host`: the bound key's lease or token, for
    /// the tool that ran this keyward.
    pub fn helper_get(
        &mut self,
        tool: keyward_core::HelperTool,
        host: &str,
        approval: Option<String>,
    ) -> Result<Issued<crate::protocol::HelperCredential>, ClientError> {
        let req = Request::HelperGet {
            tool,
            host: host.to_owned(),
            approval,
        };
        self.issued(req, |r| match r {
            Reply::HelperCredential(h) => Some(h),
            _ => None,
        })
    }

    /// kubectl's credential for key `profile`: an OAuth2 key's token or a static key's lease,
    /// whichever the key is, in one request.
    pub fn cred_kube(
        &mut self,
        profile: &str,
        approval: Option<String>,
    ) -> Result<Issued<KubeCredential>, ClientError> {
        let req = Request::CredKube {
            profile: profile.to_owned(),
            approval,
        };
        self.issued(req, |r| match r {
            Reply::Oauth2Token(t) => Some(KubeCredential::Token(t)),
            Reply::Lease(l) => Some(KubeCredential::Lease(l)),
            _ => None,
        })
    }

    /// An access token for OAuth2 key `profile`.
    pub fn cred_oauth2(
        &mut self,
        profile: &str,
        approval: Option<String>,
    ) -> Result<Issued<OAuth2Token>, ClientError> {
        let req = Request::CredOauth2 {
            profile: profile.to_owned(),
            approval,
            exec: self.exec.clone(),
        };
        self.issued(req, |r| match r {
            Reply::Oauth2Token(t) => Some(t),
            _ => None,
        })
    }

    /// Alibaba Cloud credentials for key `profile`: an STS token, or the AccessKey of a key
    /// without a role.
    pub fn cred_aliyun(
        &mut self,
        profile: &str,
        approval: Option<String>,
    ) -> Result<Issued<AliyunCredentials>, ClientError> {
        let req = Request::CredAliyun {
            profile: profile.to_owned(),
            approval,
            exec: self.exec.clone(),
        };
        self.issued(req, |r| match r {
            Reply::AliyunCredentials(c) => Some(c),
            _ => None,
        })
    }
}

impl Client {
    /// Sends a request the approval gate may answer with its question instead of `pick`'s reply.
    fn issued<C>(
        &mut self,
        req: Request,
        pick: impl FnOnce(Reply) -> Option<C>,
    ) -> Result<Issued<C>, ClientError> {
        match self.call(req)? {
            Reply::ApprovalNeeded { approval } => Ok(Issued::ApprovalNeeded(approval)),
            other => pick(other)
                .map(Issued::Credential)
                .ok_or(ClientError::Unexpected),
        }
    }

    /// Checks a key works: issues a credential and reports whose it is (nothing secret).
    pub fn test_key(
        &mut self,
        name: &str,
        mfa_code: Option<WireSecret>,
        approval: Option<String>,
        token: Option<WireSecret>,
    ) -> Result<Issued<KeyTested>, ClientError> {
        let req = Request::TestKey {
            name: name.to_owned(),
            mfa_code,
            approval,
            token,
        };
        self.issued(req, |r| match r {
            Reply::KeyTested(t) => Some(t),
            _ => None,
        })
    }
}

/// A connection to the agent.
pub struct Client {
    stream: BufReader<UnixStream>,
    /// The command `keyward exec` will start, which credential requests are for.
    exec: Option<crate::protocol::ExecTarget>,
}

impl Client {
    /// Connects to the agent at `socket`, waiting at most [`CONNECT_TIMEOUT`]; calls then wait
    /// at most [`CALL_TIMEOUT`] for their answer.
    pub fn connect(socket: &Path) -> Result<Self, ClientError> {
        use rustix::net::{sockopt, AddressFamily, SocketAddrUnix, SocketType};
        let not_running = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ClientError::NotRunning
            }
            _ => ClientError::Io(e),
        };
        let addr = SocketAddrUnix::new(socket).map_err(|e| ClientError::Io(e.into()))?;
        let fd = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None)
            .map_err(|e| ClientError::Io(e.into()))?;
        // A blocking connect to a Unix socket waits while the listener's backlog is full; the
        // send timeout bounds that wait (SO_SNDTIMEO applies to connect).
        sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(CONNECT_TIMEOUT))
            .map_err(|e| ClientError::Io(e.into()))?;
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => {}
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INPROGRESS) => {
                return Err(ClientError::Timeout(CONNECT_TIMEOUT))
            }
            Err(e) => return Err(not_running(e.into())),
        }
        let stream = UnixStream::from(fd);
        stream.set_write_timeout(Some(CALL_TIMEOUT))?;
        stream.set_read_timeout(Some(CALL_TIMEOUT))?;
        Ok(Client {
            stream: BufReader::new(stream),
            exec: None,
        })
    }

    /// Makes this connection's credential requests (`cred_aws`, `cred_oauth2`) for `target`, the
    /// command `keyward exec` starts with them: the agent treats it as the client.
    pub fn speak_for(&mut self, target: crate::protocol::ExecTarget) {
        self.exec = Some(target);
    }

    /// Bounds how long a call may wait for the answer (`None`: [`CALL_TIMEOUT`]).
    pub fn set_timeout(&self, t: Option<Duration>) -> Result<(), ClientError> {
        self.stream
            .get_ref()
            .set_read_timeout(Some(t.unwrap_or(CALL_TIMEOUT)))?;
        Ok(())
    }

    /// Every key's metadata and standing under the policy in force. A catalog of 10,000 keys
    /// is megabytes of answer: it is read as the one reply `list` has, straight into the keys,
    /// without the generic reply's buffering of the whole frame (which took most of `keyward
    /// list --json`'s time); anything else (an error) is read the usual way.
    pub fn list(&mut self) -> Result<Vec<Listed>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Frame {
            v: u32,
            ok: Entries,
        }
        #[derive(serde::Deserialize)]
        struct Entries {
            #[serde(rename = "type")]
            kind: String,
            entries: Vec<Listed>,
        }
        let buf = self.exchange(Request::List {})?;
        if let Ok(f) = serde_json::from_slice::<Frame>(&buf) {
            if f.v == VERSION && f.ok.kind == "entries" {
                return Ok(f.ok.entries);
            }
        }
        match parse(&buf)? {
            Reply::Entries { entries } => Ok(entries),
            _ => Err(ClientError::Unexpected),
        }
    }

    /// Sends one request and waits for its answer.
    pub fn call(&mut self, req: Request) -> Result<Reply, ClientError> {
        let buf = self.exchange(req)?;
        parse(&buf)
    }

    /// Sends one request and reads its answer's line.
    fn exchange(&mut self, req: Request) -> Result<zeroize::Zeroizing<Vec<u8>>, ClientError> {
        let frame = RequestFrame { v: VERSION, req };
        let mut line =
            zeroize::Zeroizing::new(serde_json::to_vec(&frame).map_err(|_| ClientError::Protocol)?);
        line.push(b'\n');
        let limit = self
            .stream
            .get_ref()
            .read_timeout()
            .ok()
            .flatten()
            .unwrap_or(CALL_TIMEOUT);
        let timed_out = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                ClientError::Timeout(limit)
            }
            _ => ClientError::Io(e),
        };
        if let Err(e) = self.stream.get_mut().write_all(&line) {
            return Err(timed_out(e));
        }
        let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(512));
        let read = (&mut self.stream)
            .take(MAX_RESPONSE_BYTES)
            .read_until(b'\n', &mut buf);
        let n = match read {
            Ok(n) => n,
            Err(e) => return Err(timed_out(e)),
        };
        if n == 0 {
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the agent closed the connection",
            )));
        }
        Ok(buf)
    }
}

/// A response line as the reply or the agent's error.
fn parse(buf: &[u8]) -> Result<Reply, ClientError> {
    let resp: ResponseFrame = serde_json::from_slice(buf).map_err(|_| ClientError::Protocol)?;
    match resp {
        ResponseFrame::Ok(r) => Ok(r),
        ResponseFrame::Err(e) => Err(ClientError::Agent(e)),
    }
}
