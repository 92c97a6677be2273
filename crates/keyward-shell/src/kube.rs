//! Kubernetes: the kubeconfig edit `keyward setup kube` makes — one exec user added, every other
//! byte of the file kept.
//!
//! The edit is made on the text (a YAML round trip would drop comments and reorder keys); the
//! result is then parsed and compared with the original: anything but the one new user differing
//! refuses the edit, so a file laid out in a way the text edit does not expect is never damaged.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use crate::ShellError;

/// The exec user Keyward adds.
pub struct ExecUser<'a> {
    /// Its name in the kubeconfig (`keyward-KEY` by default).
    pub name: &'a str,
    /// The keyward command kubectl runs (an absolute path: kubectl runs it without a shell).
    pub command: &'a Path,
    /// The key (`--profile`).
    pub profile: &'a str,
    /// `IfAvailable` instead of `Never`: kubectl lets Keyward ask on its terminal.
    pub interactive: bool,
}

/// Why the kubeconfig was not changed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KubeConfigError {
    /// Not YAML, or not a kubeconfig's shape.
    #[error("not a kubeconfig Keyward can read: {0}")]
    Unreadable(String),
    /// A user of that name is there, set otherwise.
    #[error(
        "the kubeconfig already has a user '{0}' set up otherwise: choose another with --user"
    )]
    UserExists(String),
    /// The file is laid out so that a text edit could not add the user alone.
    #[error("Keyward cannot add the user to this kubeconfig without changing more (a flow-style `users`?): add it with `kubectl config set-credentials`")]
    CannotEdit,
}

/// Where kubectl reads its config: the first file in `KUBECONFIG` that exists (else its first),
/// or `~/.kube/config`.
pub fn kubeconfig_path() -> Result<PathBuf, ShellError> {
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let paths: Vec<PathBuf> = std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if let Some(p) = paths.iter().find(|p| p.exists()).or(paths.first()) {
            return Ok(p.clone());
        }
    }
    let home = std::env::var_os("HOME").ok_or_else(|| ShellError::Read {
        path: PathBuf::from("~/.kube/config"),
        why: std::io::Error::new(std::io::ErrorKind::NotFound, "HOME is not set"),
    })?;
    Ok(PathBuf::from(home).join(".kube").join("config"))
}

fn quoted(s: &str) -> String {
    // A JSON string is a YAML double-quoted scalar.
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The user's list item, at `indent` spaces, as kubectl itself writes one.
fn user_block(u: &ExecUser, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mode = if u.interactive {
        "IfAvailable"
    } else {
        "Never"
    };
    let mut out = String::new();
    let lines = [
        format!("- name: {}", quoted(u.name)),
        "  user:".to_owned(),
        "    exec:".to_owned(),
        "      apiVersion: client.authentication.k8s.io/v1".to_owned(),
        format!(
            "      command: {}",
            quoted(&u.command.display().to_string())
        ),
        "      args:".to_owned(),
        format!("      - {}", quoted("cred")),
        format!("      - {}", quoted("kube")),
        format!("      - {}", quoted("--profile")),
        format!("      - {}", quoted(u.profile)),
        format!("      interactiveMode: {mode}"),
        "      provideClusterInfo: false".to_owned(),
    ];
    for l in lines {
        out.push_str(&pad);
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn parse(text: &str) -> Result<Yaml, KubeConfigError> {
    let docs =
        YamlLoader::load_from_str(text).map_err(|e| KubeConfigError::Unreadable(e.to_string()))?;
    match docs.len() {
        0 => Ok(Yaml::Hash(Default::default())),
        1 => match &docs[0] {
            Yaml::Hash(_) => Ok(docs[0].clone()),
            Yaml::Null => Ok(Yaml::Hash(Default::default())),
            _ => Err(KubeConfigError::Unreadable("not a mapping".into())),
        },
        _ => Err(KubeConfigError::Unreadable("more than one document".into())),
    }
}

fn users(doc: &Yaml) -> Result<Vec<Yaml>, KubeConfigError> {
    match &doc["users"] {
        Yaml::BadValue | Yaml::Null => Ok(Vec::new()),
        Yaml::Array(a) => Ok(a.clone()),
        _ => Err(KubeConfigError::Unreadable("`users` is not a list".into())),
    }
}

fn top_level_key(line: &str) -> bool {
    line.chars()
        .next()
        .is_some_and(|c| !c.is_whitespace() && c != '-' && c != '#')
}

/// `text` with `u` added to its users; `None` when that very user is there already.
pub fn with_exec_user(text: &str, u: &ExecUser) -> Result<Option<String>, KubeConfigError> {
    let before = parse(text)?;
    let ours = YamlLoader::load_from_str(&user_block(u, 0))
        .ok()
        .and_then(|d| d.into_iter().next())
        .and_then(|d| d.as_vec().and_then(|v| v.first().cloned()))
        .ok_or(KubeConfigError::CannotEdit)?;
    let had = users(&before)?;
    if let Some(same) = had.iter().find(|x| x["name"].as_str() == Some(u.name)) {
        return if same["user"] == ours["user"] {
            Ok(None)
        } else {
            Err(KubeConfigError::UserExists(u.name.to_owned()))
        };
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let at = lines.iter().position(|l| {
        l.strip_prefix("users:").is_some_and(|rest| {
            rest.trim().is_empty() || rest.trim_start().starts_with(['#', '[', 'n', '~'])
        })
    });
    let mut out = String::new();
    match at {
        Some(i) => {
            let rest = lines[i].trim_end_matches(['\n', '\r'])["users:".len()..].trim();
            let empty_value = matches!(rest, "[]" | "null" | "~");
            if !(rest.is_empty() || rest.starts_with('#') || empty_value) {
                return Err(KubeConfigError::CannotEdit);
            }
            // The items' indentation, from the first item (kubectl writes them at column 0).
            let indent = if empty_value {
                0
            } else {
                lines[i + 1..]
                    .iter()
                    .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .filter(|l| !top_level_key(l))
                    .map_or(0, |l| l.len() - l.trim_start().len())
            };
            for l in &lines[..i] {
                out.push_str(l);
            }
            if empty_value {
                out.push_str("users:\n");
            } else {
                out.push_str(lines[i]);
                if !lines[i].ends_with('\n') {
                    out.push('\n');
                }
            }
            out.push_str(&user_block(u, indent));
            for l in &lines[i + 1..] {
                out.push_str(l);
            }
        }
        None if text.trim().is_empty() => {
            // Nothing to keep: a new kubeconfig with just the user.
            out.push_str("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers:\n");
            out.push_str(&user_block(u, 0));
            return match parse(&out)?["users"].as_vec() {
                Some(v) if v == &vec![ours] => Ok(Some(out)),
                _ => Err(KubeConfigError::CannotEdit),
            };
        }
        None => {
            if !matches!(before["users"], Yaml::BadValue) {
                return Err(KubeConfigError::CannotEdit);
            }
            out.push_str(text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
            out.push_str("users:\n");
            out.push_str(&user_block(u, 0));
        }
    }
    // Nothing but the one user may differ.
    let after = parse(&out).map_err(|_| KubeConfigError::CannotEdit)?;
    let mut want = vec![ours];
    want.extend(had);
    let (Yaml::Hash(b), Yaml::Hash(a)) = (&before, &after) else {
        return Err(KubeConfigError::CannotEdit);
    };
    let users_key = Yaml::String("users".into());
    let others_same = b
        .iter()
        .filter(|(k, _)| **k != users_key)
        .all(|(k, v)| a.get(k) == Some(v))
        && a.len() == b.len() + usize::from(!b.contains_key(&users_key));
    if !others_same || after["users"].as_vec() != Some(&want) {
        return Err(KubeConfigError::CannotEdit);
    }
    Ok(Some(out))
}

/// What `keyward setup kube` did.
pub struct KubeSetup {
    /// The kubeconfig.
    pub path: PathBuf,
    /// The old file, when there was one.
    pub backup: Option<PathBuf>,
    /// The user was there already, as it would have been added.
    pub already: bool,
}

/// Adds `u` to the kubeconfig kubectl reads (backup, atomic write, the file's mode kept).
pub fn setup(u: &ExecUser) -> Result<KubeSetup, ShellError> {
    let path = kubeconfig_path()?;
    let text = match std::fs::read(&path) {
        Ok(b) => String::from_utf8(b).map_err(|_| ShellError::NotText(path.clone()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(why) => return Err(ShellError::Read { path, why }),
    };
    let Some(new) = with_exec_user(&text, u).map_err(|e| ShellError::KubeConfig {
        path: path.clone(),
        why: e,
    })?
    else {
        return Ok(KubeSetup {
            path,
            backup: None,
            already: true,
        });
    };
    let mode = keyward_core::awsfiles::mode_to_keep(&path);
    let backup = keyward_core::awsfiles::write_atomic_with_backup(&path, &new, mode)?;
    Ok(KubeSetup {
        path,
        backup,
        already: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> ExecUser<'static> {
        ExecUser {
            name: "keyward-kube",
            command: Path::new("/usr/bin/keyward"),
            profile: "kube",
            interactive: false,
        }
    }

    const CONFIG: &str = "# my clusters\napiVersion: v1\nclusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: test   # the lab\ncontexts:\n- context:\n    cluster: test\n    user: keyward-kube\n  name: test\ncurrent-context: test\nkind: Config\nusers:\n- name: old\n  user:\n    token: abc\n";

    #[test]
    fn the_user_is_added_and_every_other_byte_is_kept() {
        let out = with_exec_user(CONFIG, &user())
            .expect("edit")
            .expect("changed");
        let (head, tail) = CONFIG.split_at(CONFIG.find("- name: old").expect("old"));
        assert!(out.starts_with(head), "{out}");
        assert!(out.ends_with(tail), "{out}");
        assert!(out.contains("interactiveMode: Never"));
        let doc = parse(&out).expect("yaml");
        assert_eq!(
            doc["users"][0]["user"]["exec"]["args"][3].as_str(),
            Some("kube")
        );
        // Twice: nothing to do.
        assert_eq!(with_exec_user(&out, &user()).expect("again"), None);
        // The same name set otherwise: refused.
        let mut other = user();
        other.profile = "prod";
        assert_eq!(
            with_exec_user(&out, &other),
            Err(KubeConfigError::UserExists("keyward-kube".into()))
        );
    }

    #[test]
    fn indented_lists_empty_files_and_missing_users_work() {
        let indented = "apiVersion: v1\nusers:\n  - name: old\n    user: {}\nkind: Config\n";
        let out = with_exec_user(indented, &user())
            .expect("edit")
            .expect("changed");
        assert!(
            out.contains("\n  - name: \"keyward-kube\"\n    user:\n"),
            "{out}"
        );
        for text in [
            "",
            "apiVersion: v1\nkind: Config\n",
            "users: []\nkind: Config\n",
        ] {
            let out = with_exec_user(text, &user())
                .expect("edit")
                .expect("changed");
            assert_eq!(
                parse(&out).expect("yaml")["users"].as_vec().map(Vec::len),
                Some(1),
                "{out}"
            );
        }
        // A layout the text edit cannot handle is refused, never damaged.
        assert_eq!(
            with_exec_user("{users: [{name: old}], kind: Config}\n", &user()),
            Err(KubeConfigError::CannotEdit)
        );
        assert!(matches!(
            with_exec_user("users: [\n", &user()),
            Err(KubeConfigError::Unreadable(_))
        ));
    }
}
