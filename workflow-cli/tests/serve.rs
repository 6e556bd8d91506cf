//! `workflow serve`: the web view of a store a real engine wrote, read-only, on the address it
//! prints; a missing store or a bad address is one line and exit code 1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;

use workflow::prelude::*;
use workflow::{Engine, SqliteStore};

workflow! {
    workflow Lamp {
        initial Off;
        events { Toggle, Remove }
        state Off { on Toggle => On; on Remove => Removed; }
        state On { on Toggle => Off; }
        final Removed;
    }
}
struct Switch;
impl LampHandlers for Switch {}

/// One HTTP/1.1 request; the status line and the body.
fn http(address: &str, method: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_shows_a_store_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lamps.db");
    let engine = Engine::<Lamp, Switch>::builder(Switch)
        .store(Arc::new(SqliteStore::open(&path).unwrap()))
        .build();
    engine.start("hall", ()).await.unwrap();
    engine.start("porch", ()).await.unwrap();
    engine.send("porch", LampEvent::Toggle).await.unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_workflow"))
        .args(["serve", "--store", path.to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let address = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    assert!(
        address.starts_with("127.0.0.1:") && first.ends_with("(read-only)\n"),
        "{first}"
    );
    let (status, home) = http(&address, "GET", "/");
    assert!(status.contains("200"), "{status}");
    assert!(home.contains(">Lamp</a>"), "{home}");
    let (_, diagram) = http(&address, "GET", "/api/workflows/Lamp/diagram");
    assert!(
        diagram.contains("{\"state\":\"On\",\"instances\":1,\"running\":1}"),
        "{diagram}"
    );
    // No actions: the command has no engine.
    let (status, _) = http(&address, "POST", "/api/instances/Lamp/hall/cancel");
    assert!(status.contains("404"), "{status}");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        engine.status("hall").await.unwrap(),
        workflow::Status::Running(LampState::Off)
    );
}

#[test]
fn a_missing_store_or_a_bad_address_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.db");
    let out = Command::new(env!("CARGO_BIN_EXE_workflow"))
        .args(["serve", "--store", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no such file"), "{stderr}");

    let path = dir.path().join("empty.db");
    drop(SqliteStore::open(&path).unwrap());
    let out = Command::new(env!("CARGO_BIN_EXE_workflow"))
        .args(["serve", "--store", path.to_str().unwrap(), "--bind", "256.0.0.1:80"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: 256.0.0.1:80: ") && stderr.lines().count() == 1,
        "{stderr}"
    );
}
