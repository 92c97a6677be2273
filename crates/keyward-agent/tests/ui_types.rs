//! The desktop window's TypeScript types for what the agent sends and takes are generated from
//! the Rust types (ts-rs), not copied by hand: this test renders them and fails when
//! `ui/src/lib/backend/generated.ts` is not what the Rust types say. After changing one of them,
//! run it with `KEYWARD_WRITE_UI_TYPES=1` to write the file, and commit it.

use ts_rs::{Config, TS};

use keyward_agent::activity::{ActivityKind, ActivityRecord};
use keyward_agent::approvals::{ApprovalInfo, ClientId, Decision, GrantInfo};
use keyward_agent::protocol::{
    AliyunKeyInput, AwsKeyInput, AwsRotated, BindingInfo, ErrorCode, KeyStates, KeyUses, Listed,
    MetaInput, OAuth2KeyInput, PolicyInfo, PolicyLimit, PolicyRule, ShowKey, StatusInfo,
    WireSecret,
};
use keyward_core::policy::Standing;
use keyward_core::vault::{FactorInfo, ReconcileNote, SlotKind};
use keyward_core::{
    Actor, AliyunConfig, AwsConfig, ClientAuth, EntryConfig, EntryKind, EntryMeta, EntryState,
    OAuth2Config, ProcessInfo, ProviderUse,
};

const HEADER: &str = "// Generated from the Rust types by crates/keyward-agent/tests/ui_types.rs (ts-rs): do not\n\
// edit. After changing a Rust type, run that test with KEYWARD_WRITE_UI_TYPES=1 and commit this.\n";

fn generated() -> String {
    // Counts and sizes fit a JavaScript number; a bigint would not compare with them.
    let cfg = Config::new().with_large_int("number");
    let decls = [
        serde_json::Value::decl(&cfg),
        WireSecret::decl(&cfg),
        ErrorCode::decl(&cfg),
        EntryKind::decl(&cfg),
        EntryState::decl(&cfg),
        ClientAuth::decl(&cfg),
        AwsConfig::decl(&cfg),
        OAuth2Config::decl(&cfg),
        AliyunConfig::decl(&cfg),
        EntryConfig::decl(&cfg),
        ProviderUse::decl(&cfg),
        AwsRotated::decl(&cfg),
        ShowKey::decl(&cfg),
        EntryMeta::decl(&cfg),
        MetaInput::decl(&cfg),
        AwsKeyInput::decl(&cfg),
        OAuth2KeyInput::decl(&cfg),
        AliyunKeyInput::decl(&cfg),
        keyward_core::entry::LeaseMode::decl(&cfg),
        keyward_core::HelperTool::decl(&cfg),
        BindingInfo::decl(&cfg),
        KeyUses::decl(&cfg),
        ReconcileNote::decl(&cfg),
        Standing::decl(&cfg),
        Listed::decl(&cfg),
        PolicyLimit::decl(&cfg),
        PolicyRule::decl(&cfg),
        PolicyInfo::decl(&cfg),
        KeyStates::decl(&cfg),
        keyward_agent::forward::Forwarding::decl(&cfg),
        StatusInfo::decl(&cfg),
        SlotKind::decl(&cfg),
        FactorInfo::decl(&cfg),
        ProcessInfo::decl(&cfg),
        Actor::decl(&cfg),
        ActivityKind::decl(&cfg),
        ActivityRecord::decl(&cfg),
        ClientId::decl(&cfg),
        Decision::decl(&cfg),
        ApprovalInfo::decl(&cfg),
        GrantInfo::decl(&cfg),
    ];
    let mut out = String::from(HEADER);
    for d in decls {
        out.push_str("\nexport ");
        out.push_str(&d);
        out.push('\n');
    }
    out
}

#[test]
fn the_windows_types_are_the_ones_the_rust_types_make() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../ui/src/lib/backend/generated.ts");
    let want = generated();
    if std::env::var_os("KEYWARD_WRITE_UI_TYPES").is_some() {
        std::fs::write(&path, &want).expect("write generated.ts");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is not what the Rust types make: run `KEYWARD_WRITE_UI_TYPES=1 cargo test -p keyward-agent --test ui_types` and commit it",
        path.display()
    );
}
