//! The package `scripts/package.sh` builds (dist/app, dist/coincap-stream.zip) is what will run
//! in Azure: a static x86_64 Linux binary laid out as host.json says, started the way the
//! Functions host starts it. Without a package these tests print a notice (and fail under CI).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::coincap::{CoinCap, page, realistic_assets};
use crate::common::{
    API_KEY, Answer, app_root, free_port, handler_at, packaged_app, signal, sink_payload,
    timer_payload, wait_ready,
};
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
fn the_packaged_handler_is_a_static_x86_64_binary_without_glibc() {
    let Some(app) = packaged_app() else { return };
    let linking = elf::linking(&app.join("handler"));
    assert!(
        linking.is_static_x86_64(),
        "dist/app/handler must run on any x86_64 Linux: {linking:?}"
    );
}

#[test]
fn the_package_is_laid_out_as_host_json_says() {
    let Some(app) = packaged_app() else { return };
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
async fn the_packaged_app_runs_both_functions_as_the_functions_host_starts_it() {
    let Some(app) = packaged_app() else { return };
    let coincap = CoinCap::serving(page(1_747_000_000_000, &realistic_assets())).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warehouse.db");
    let port = free_port();
    // As the host does: working directory = app root, the port in FUNCTIONS_CUSTOMHANDLER_PORT,
    // the arguments from host.json, every app setting in the environment.
    let mut child = handler_at(&app.join("handler"))
        .current_dir(&app)
        .arg("serve")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("COINCAP_BASE_URL", &coincap.url)
        .env("COINCAP_API_KEY", API_KEY)
        .env("WAREHOUSE", format!("sqlite:{}", db.display()))
        .spawn()
        .unwrap();
    wait_ready(port).await;
    let http = reqwest::Client::new();
    let post = |function: &'static str, body: String| {
        http.post(format!("http://127.0.0.1:{port}/{function}"))
            .header("Content-Type", "application/json")
            .header(
                "X-Azure-Functions-InvocationId",
                "00000000-0000-4000-8000-00000000000a",
            )
            .header("User-Agent", "Azure-Functions-Host/4.x")
            .body(body)
            .send()
    };

    let fetched = Answer::read(
        post("TimerFetch", timer_payload().to_string())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(fetched.status, 200, "{:?}", fetched.body);
    let mut events = fetched.events();
    assert_eq!(events.len(), realistic_assets().len());

    events.push("not json".into());
    let sunk = Answer::read(
        post("EventHubSink", sink_payload(&events, 100).to_string())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(sunk.status, 200, "{:?}", sunk.body);
    let counters = sunk.counters();
    assert_eq!(
        counters["rows_written"],
        realistic_assets().len().to_string()
    );
    assert_eq!(counters["rejects"], "1");

    signal(&child, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
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
