//! The ways tools get a key, as the user writes them: the exact config line or command per tool,
//! for the key detail screen (with a Copy button) and `keyward show`. Nothing here is secret.

use std::path::Path;

use keyward_agent::protocol::KeyUses;
use keyward_core::{EntryKind, EntryMeta, HelperTool};

/// One way a tool gets the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The tool (`aws`, `exec`, `kubectl`, `git`, `docker`, `aliyun`, `curl`).
    pub tool: &'static str,
    /// What to write or run, exactly.
    pub line: String,
    /// What it does, or what it needs first.
    pub note: String,
}

fn usage(tool: &'static str, line: String, note: &str) -> Usage {
    Usage {
        tool,
        line,
        note: note.to_owned(),
    }
}

/// The ways tools get `meta`'s key, with `keyward` the installed command (config lines name it
/// by path, as the tools need) and `uses` its lease setting and bindings when known (unlocked).
pub fn usages(meta: &EntryMeta, keyward: &Path, uses: Option<&KeyUses>) -> Vec<Usage> {
    let (n, exe) = (&meta.name, keyward.display());
    let mut out = Vec::new();
    let bound = |tool: HelperTool| -> Vec<String> {
        uses.map(|u| {
            u.bindings
                .iter()
                .filter(|b| b.tool == tool)
                .map(|b| b.host.clone())
                .collect()
        })
        .unwrap_or_default()
    };
    let helpers = |out: &mut Vec<Usage>| {
        for (tool, name, what, setup) in [
            (HelperTool::Git, "git", "HOST", "git"),
            (HelperTool::Docker, "docker", "REGISTRY", "docker"),
        ] {
            let hosts = bound(tool);
            if hosts.is_empty() {
                out.push(usage(
                    name,
                    format!("keyward setup {setup} {what} --key {n}"),
                    &format!("{name} asks Keyward for {what}'s password (binding it asks for an authenticator code)"),
                ));
            } else {
                for h in hosts {
                    out.push(usage(
                        name,
                        format!("keyward setup {setup} {h} --key {n}"),
                        &format!("bound: {name} gets it for {h}"),
                    ));
                }
            }
        }
        out.push(usage(
            "kubectl",
            format!("keyward setup kube --key {n}"),
            "adds a kubeconfig user whose token comes from Keyward",
        ));
    };
    match meta.kind {
        EntryKind::Aws => {
            out.push(usage(
                "aws",
                format!("credential_process = {exe} cred aws --profile {n}"),
                &format!("under [profile {n}] in ~/.aws/config (keyward setup aws {n} writes it)"),
            ));
            out.push(usage(
                "exec",
                format!("keyward exec aws:{n} -- COMMAND"),
                "a credentials endpoint for the command's SDK that renews the session",
            ));
        }
        EntryKind::OAuth2 => {
            out.push(usage(
                "exec",
                format!("keyward exec oauth2:{n}=TOKEN -- COMMAND"),
                "the access token in $TOKEN, its expiry in $TOKEN_EXPIRES_AT",
            ));
            out.push(usage(
                "curl",
                format!("curl --oauth2-bearer \"$(keyward cred oauth2 --profile {n})\" URL"),
                "a token for one request",
            ));
            helpers(&mut out);
        }
        EntryKind::Static => {
            let lease = uses.and_then(|u| u.lease);
            let file_only = lease == Some(keyward_core::entry::LeaseMode::File);
            out.push(usage(
                "exec",
                format!(
                    "keyward exec static:{n}={} -- COMMAND",
                    if file_only { "fd:VAR" } else { "VAR" }
                ),
                if file_only {
                    "leased to the one command, which reads it from the file $VAR names (allowed for this key)"
                } else if lease.is_some() {
                    "leased to the one command, in $VAR (allowed for this key)"
                } else if uses.is_some() {
                    "not allowed yet: keyward edit NAME --allow-lease env (asks for a code)"
                } else {
                    "once leases are allowed for it (keyward edit NAME --allow-lease env)"
                },
            ));
            helpers(&mut out);
        }
        EntryKind::Aliyun => {
            let role = meta
                .config
                .aliyun
                .as_ref()
                .is_some_and(|a| a.role_arn.is_some());
            if role {
                out.push(usage(
                    "aliyun",
                    format!("keyward setup aliyun {n}"),
                    &format!("an External profile in ~/.aliyun/config.json running {exe} cred aliyun --profile {n}"),
                ));
            }
            out.push(usage(
                "exec",
                format!("keyward exec aliyun:{n} -- COMMAND"),
                if role {
                    "an STS token in ALIBABA_CLOUD_ACCESS_KEY_ID, _SECRET and _SECURITY_TOKEN"
                } else {
                    "the AccessKey itself in ALIBABA_CLOUD_ACCESS_KEY_ID and _SECRET (no RAM role)"
                },
            ));
        }
    }
    for u in &mut out {
        u.note = u.note.replace("NAME", n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_agent::protocol::BindingInfo;

    fn meta(kind: EntryKind) -> EntryMeta {
        EntryMeta {
            id: "id".into(),
            name: "prod".into(),
            kind,
            owner: None,
            purpose: None,
            tags: vec![],
            created: String::new(),
            rotated: None,
            rotation_interval_days: None,
            expires: None,
            last_used: None,
            use_count: 0,
            provider_use: None,
            config: Default::default(),
        }
    }

    #[test]
    fn each_kind_gets_its_tools_lines() {
        let exe = Path::new("/usr/bin/keyward");
        let aws = usages(&meta(EntryKind::Aws), exe, None);
        assert_eq!(
            aws[0].line,
            "credential_process = /usr/bin/keyward cred aws --profile prod"
        );
        let mut m = meta(EntryKind::Aliyun);
        m.config.aliyun = Some(keyward_core::AliyunConfig {
            role_arn: Some("acs:ram::1:role/r".into()),
            ..Default::default()
        });
        let tools: Vec<&str> = usages(&m, exe, None).iter().map(|u| u.tool).collect();
        assert_eq!(tools, ["aliyun", "exec"]);
        m.config.aliyun = Some(Default::default());
        let tools: Vec<&str> = usages(&m, exe, None).iter().map(|u| u.tool).collect();
        assert_eq!(
            tools,
            ["exec"],
            "no External profile for a key without a role"
        );
    }

    #[test]
    fn a_static_keys_lines_say_whether_it_may_be_leased_and_where_it_is_bound() {
        let exe = Path::new("/usr/bin/keyward");
        let uses = KeyUses {
            lease: None,
            bindings: vec![BindingInfo {
                tool: HelperTool::Git,
                host: "github.com".into(),
                key: "prod".into(),
                username: None,
            }],
        };
        let lines = usages(&meta(EntryKind::Static), exe, Some(&uses));
        assert!(
            lines[0]
                .note
                .contains("keyward edit prod --allow-lease env"),
            "{lines:?}"
        );
        let git: Vec<&Usage> = lines.iter().filter(|u| u.tool == "git").collect();
        assert_eq!(git.len(), 1);
        assert_eq!(git[0].line, "keyward setup git github.com --key prod");
        assert!(git[0].note.starts_with("bound"), "{git:?}");
    }
}
