//! Lists every app command so Tauri generates one permission per command; the `main` window's
//! capability (capabilities/main.json) allows exactly these.

const COMMANDS: &[&str] = &[
    "status",
    "passphrase_check",
    "totp_enrollment",
    "init_vault",
    "unlock",
    "lock",
    "list_keys",
    "add_aws",
    "add_static",
    "remove_key",
    "test_key",
    "activity",
    "factors",
    "grants",
    "revoke_grant",
    "decide_approval",
    "pending_approvals",
];

fn main() {
    let attrs = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        panic!("tauri build step failed: {e:#}");
    }
}
