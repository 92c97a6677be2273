//! `keyward audit list`: the trail filtered by key, event, client and time, exported as JSON
//! lines and CSV.

use crate::support::Home;

fn jsonl(home: &Home, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["audit", "list", "--format", "jsonl"];
    all.extend_from_slice(args);
    home.kw(&all)
        .ok()
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn the_trail_filters_by_key_event_client_and_time_and_exports() {
    let home = Home::new();
    home.init();
    home.unlock();
    home.kw_input(&["add", "static", "alpha"], &["alpha-Value-1"])
        .ok();
    home.kw_input(&["add", "static", "beta"], &["beta-Value-2"])
        .ok();
    home.kw(&["edit", "alpha", "--owner", "data-team"]).ok();

    let alpha = jsonl(&home, &["--key", "alpha"]);
    let actions: Vec<&str> = alpha.iter().filter_map(|r| r["action"].as_str()).collect();
    assert!(
        actions.contains(&"add") && actions.contains(&"update"),
        "{actions:?}"
    );
    assert!(alpha.iter().all(|r| r["target"] == "alpha"), "{alpha:#?}");
    let adds = jsonl(&home, &["--action", "add"]);
    assert_eq!(adds.len(), 2, "{adds:#?}");
    // Every record carries its place in the chain.
    assert!(adds
        .iter()
        .all(|r| r["seq"].is_i64() && r["hash"].as_str().is_some_and(|h| h.len() == 64)));
    assert_eq!(
        jsonl(&home, &["--action", "add", "--client", "keyward"]).len(),
        2
    );
    assert!(jsonl(&home, &["--action", "add", "--client", "terraform"]).is_empty());
    assert_eq!(jsonl(&home, &["--action", "add", "--since", "1h"]).len(), 2);
    assert!(jsonl(&home, &["--until", "2000-01-01"]).is_empty());

    // Everything, page by page, is the same as the newest n when n covers it (each listing
    // is itself recorded, so compare a filter the listings do not match).
    let all = jsonl(&home, &["--all", "--action", "add"]);
    let newest = jsonl(&home, &["-n", "10000", "--action", "add"]);
    assert_eq!(all, newest);
    let all = jsonl(&home, &["--all"]);
    let seqs: Vec<i64> = all.iter().filter_map(|r| r["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first");

    let csv = home
        .kw(&["audit", "list", "--action", "add", "--format", "csv"])
        .ok()
        .stdout;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("seq,ts,action,target,outcome,client,summary,detail,hash")
    );
    assert_eq!(lines.count(), 2, "{csv}");
    assert!(!csv.contains("Value-"), "no secret");

    let line = home
        .kw(&["audit", "list", "--since", "last tuesday"])
        .one_line_error();
    assert!(
        line.contains("--since \"last tuesday\": give an RFC 3339 time"),
        "{line}"
    );
}
