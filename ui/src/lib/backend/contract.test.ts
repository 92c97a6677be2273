// The window's command contract is written in four places that must agree: the Rust commands
// (`#[tauri::command]`), the list the app registers (`generate_handler!` in main.rs), the list
// Tauri makes permissions from (build.rs) with the window's capability allowing each, and the
// names the web view calls (tauri.ts). A command missing from one of them fails at run time
// only; this test fails first.
import { describe, expect, it } from 'vitest';
import buildRs from '../../../../src-tauri/build.rs?raw';
import mainRs from '../../../../src-tauri/src/main.rs?raw';
import commandsRs from '../../../../src-tauri/src/commands.rs?raw';
import keycmdsRs from '../../../../src-tauri/src/keycmds.rs?raw';
import settingscmdsRs from '../../../../src-tauri/src/settingscmds.rs?raw';
import capability from '../../../../src-tauri/capabilities/main.json?raw';
import tauriTs from './tauri.ts?raw';

const sorted = (names: Iterable<string>) => [...new Set(names)].sort();

/** Functions marked `#[tauri::command]`, by name. */
function commandFns(...sources: string[]): string[] {
  const out: string[] = [];
  for (const src of sources) {
    for (const m of src.matchAll(/#\[tauri::command[^\]]*\]\s*pub (?:async )?fn (\w+)/g)) out.push(m[1]);
  }
  return sorted(out);
}

function registered(src: string): string[] {
  const list = /generate_handler!\[([^\]]*)\]/.exec(src)?.[1] ?? '';
  return sorted(list.split(',').map((s) => s.trim().split('::').pop() ?? '').filter(Boolean));
}

function permissioned(src: string): string[] {
  const list = /const COMMANDS: &\[&str\] = &\[([^\]]*)\]/.exec(src)?.[1] ?? '';
  return sorted([...list.matchAll(/"(\w+)"/g)].map((m) => m[1]));
}

function allowed(json: string): string[] {
  const { permissions } = JSON.parse(json) as { permissions: string[] };
  return sorted(permissions.filter((p) => p.startsWith('allow-')).map((p) => p.slice(6).replaceAll('-', '_')));
}

function called(src: string): string[] {
  return sorted([...src.matchAll(/\bcall(?:<.*?>)?\('(\w+)'/g)].map((m) => m[1]));
}

describe('the window contract', () => {
  const fns = commandFns(commandsRs, keycmdsRs, settingscmdsRs);

  it('finds the commands at all (the parsers still match the sources)', () => {
    expect(fns.length).toBeGreaterThan(30);
    expect(fns).toContain('status');
  });

  it('registers, permits, allows and calls exactly the commands the app defines', () => {
    expect(registered(mainRs)).toEqual(fns);
    expect(permissioned(buildRs)).toEqual(fns);
    expect(allowed(capability)).toEqual(fns);
    expect(called(tauriTs)).toEqual(fns);
  });
});
