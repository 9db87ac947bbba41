//! The package `scripts/package.sh` builds (dist/app, dist/coincap-stream.zip) is what will run
//! in Azure: a static x86_64 Linux binary laid out as host.json says, started the way the
//! Functions host starts it. They need the package, so a plain `cargo test` lists them as ignored;
//! .ci/run builds it and runs them with `cargo test -- --ignored package`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::common::coincap::{CoinCap, page, realistic_assets};
use crate::common::run::Binary;
use crate::common::{app_root, packaged_app, sink_payload, timer_payload};
use crate::elf;

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_elf_reader_sees_the_interpreter_and_libraries_of_a_dynamic_binary() {
    // The test binary itself is linked dynamically against glibc: the check below must notice.
    let me = elf::linking(&std::env::current_exe().unwrap());
    assert!(me.has_interpreter, "{me:?}");
    assert!(me.needed > 0, "{me:?}");
    assert!(!me.is_static_x86_64());
}

#[test]
#[ignore = "needs dist/app: run scripts/package.sh, then cargo test -- --ignored package"]
fn the_packaged_handler_is_a_static_x86_64_binary_without_glibc() {
    let app = packaged_app();
    let linking = elf::linking(&app.join("handler"));
    assert!(
        linking.is_static_x86_64(),
        "dist/app/handler must run on any x86_64 Linux: {linking:?}"
    );
}

#[test]
#[ignore = "needs dist/app: run scripts/package.sh, then cargo test -- --ignored package"]
fn the_package_is_laid_out_as_host_json_says() {
    let app = packaged_app();
    let host = read_json(&app.join("host.json"));
    assert_eq!(
        host,
        read_json(&app_root().join("host.json")),
        "the packaged host.json is the repository's"
    );
    let executable = host["customHandler"]["description"]["defaultExecutablePath"]
        .as_str()
        .unwrap();
    let mode = std::fs::metadata(app.join(executable))
        .unwrap()
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "{executable} is executable");
    for function in ["TimerFetch", "EventHubSink"] {
        let path = format!("{function}/function.json");
        assert_eq!(
            read_json(&app.join(&path)),
            read_json(&app_root().join(&path))
        );
    }

    let zip = std::fs::read(app.parent().unwrap().join("coincap-stream.zip")).unwrap();
    for entry in [
        "handler",
        "host.json",
        "TimerFetch/function.json",
        "EventHubSink/function.json",
    ] {
        // Zip archives store entry names uncompressed (local headers and central directory).
        let name = entry.as_bytes();
        assert!(
            zip.windows(name.len()).any(|w| w == name),
            "the zip holds {entry}"
        );
    }
}

#[tokio::test]
#[ignore = "needs dist/app: run scripts/package.sh, then cargo test -- --ignored package"]
async fn the_packaged_app_runs_both_functions_as_the_functions_host_starts_it() {
    let app = packaged_app();
    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warehouse.db");
    // As the host does: working directory = app root, the port in FUNCTIONS_CUSTOMHANDLER_PORT,
    // the arguments from host.json, every app setting in the environment.
    let mut handler = Binary::at(&app.join("handler"), "serve")
        .current_dir(&app)
        .coincap(&coincap)
        .sqlite(&db)
        .start()
        .await;

    let fetched = handler
        .post("TimerFetch", timer_payload().to_string())
        .await;
    assert_eq!(fetched.status, 200, "{:?}", fetched.body);
    let mut events = fetched.events();
    assert_eq!(events.len(), realistic_assets().len());

    events.push("not json".into());
    let sunk = handler
        .post("EventHubSink", sink_payload(&events, 100).to_string())
        .await;
    assert_eq!(sunk.status, 200, "{:?}", sunk.body);
    let counters = sunk.sink_counters();
    assert_eq!(counters.rows_written, realistic_assets().len() as u64);
    assert_eq!(counters.rejects, 1);

    let stopped = handler.stop("-TERM").await;
    assert!(stopped.status.success(), "{}", stopped.status);
    let rows: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM asset_statistics_history_v3",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, realistic_assets().len() as i64);
}
