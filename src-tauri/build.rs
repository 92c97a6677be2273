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
    "add_oauth2",
    "add_aliyun",
    "remove_key",
    "test_key",
    "activity",
    "factors",
    "grants",
    "leases",
    "revoke_grant",
    "decide_approval",
    "pending_approvals",
    "key_detail",
    "update_key",
    "rotate_key",
    "rotate_aws",
    "reveal_key",
    "copy_key",
    "copy_usage",
    "confirm_factor",
    "import_aws_preview",
    "import_aws",
    "enroll_security_key",
    "unlock_with_security_key",
    "add_totp",
    "remove_factor",
    "new_recovery_codes",
    "set_auto_lock",
    "set_grants_need_code",
];

fn main() {
    let attrs = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        panic!("tauri build step failed: {e:#}");
    }
}
