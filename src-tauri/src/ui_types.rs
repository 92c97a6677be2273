//! The window's TypeScript types for what the app's own commands send and take are generated
//! from these Rust types (ts-rs), as `keyward-agent`'s are: this test renders them and fails when
//! `ui/src/lib/backend/app-generated.ts` is not what the Rust types say. After changing one, run
//! `KEYWARD_WRITE_UI_TYPES=1 cargo test --manifest-path src-tauri/Cargo.toml ui_types` and commit
//! the file.

use std::collections::BTreeSet;

use ts_rs::{Config, TS};

use crate::commands::{
    Created, KeyRow, LeaseRow, PassphraseVerdict, Tested, TotpEnrollment, UnlockFactor, Unlocked,
};
use crate::keycmds::{
    ImportCandidate, ImportPreview, ImportResult, KeyDetail, Revealed, RotateInput, UsageLine,
};

const HEADER: &str =
    "// Generated from the app's Rust types by src-tauri/src/ui_types.rs (ts-rs): do not edit.\n\
// After changing a Rust type, run that test with KEYWARD_WRITE_UI_TYPES=1 and commit this.\n";

/// One type's declaration and the names it refers to.
fn entry<T: TS + 'static>(cfg: &Config) -> (String, String, Vec<String>) {
    let deps = T::dependencies(cfg).into_iter().map(|d| d.ts_name);
    (T::ident(cfg), T::decl(cfg), deps.collect())
}

fn generated() -> String {
    // Counts and sizes fit a JavaScript number; a bigint would not compare with them.
    let cfg = Config::new().with_large_int("number");
    let types = [
        entry::<PassphraseVerdict>(&cfg),
        entry::<TotpEnrollment>(&cfg),
        entry::<Created>(&cfg),
        entry::<UnlockFactor>(&cfg),
        entry::<Unlocked>(&cfg),
        entry::<KeyRow>(&cfg),
        entry::<Tested>(&cfg),
        entry::<LeaseRow>(&cfg),
        entry::<UsageLine>(&cfg),
        entry::<KeyDetail>(&cfg),
        entry::<RotateInput>(&cfg),
        entry::<Revealed>(&cfg),
        entry::<ImportCandidate>(&cfg),
        entry::<ImportPreview>(&cfg),
        entry::<ImportResult>(&cfg),
    ];
    let here: BTreeSet<&str> = types.iter().map(|(name, _, _)| name.as_str()).collect();
    // What they refer to and this file does not declare comes from the agent's types.
    let from_agent: BTreeSet<&str> = types
        .iter()
        .flat_map(|(_, _, deps)| deps.iter().map(String::as_str))
        .filter(|d| !here.contains(d))
        .collect();
    let mut out = String::from(HEADER);
    if !from_agent.is_empty() {
        let names: Vec<&str> = from_agent.into_iter().collect();
        out.push_str(&format!(
            "\nimport type {{ {} }} from './generated';\n",
            names.join(", ")
        ));
    }
    for (_, decl, _) in &types {
        out.push_str("\nexport ");
        out.push_str(decl);
        out.push('\n');
    }
    out
}

#[test]
fn the_windows_types_are_the_ones_the_app_commands_make() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ui/src/lib/backend/app-generated.ts");
    let want = generated();
    if std::env::var_os("KEYWARD_WRITE_UI_TYPES").is_some() {
        std::fs::write(&path, &want).expect("write app-generated.ts");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is not what the app's Rust types make: run `KEYWARD_WRITE_UI_TYPES=1 cargo test --manifest-path src-tauri/Cargo.toml ui_types` and commit it",
        path.display()
    );
}
