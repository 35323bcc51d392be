//! The tool against a fake xenstored: a Unix socket server in the test
//! that speaks the wire format (headers built here by hand from
//! xs_wire.h's layout, not with the library under test) over an
//! in-memory tree, and that can be told to answer with garbage.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use selfballoon::xen::errno::Errno;
use selfballoon::xen::xenstore::{Store, XsError};
use selfballoonctl::error::exit;
use selfballoonctl::transport::Connection;

const XS_DIRECTORY: u32 = 1;
const XS_READ: u32 = 2;
const XS_WRITE: u32 = 11;
const XS_RM: u32 = 13;
const XS_WATCH_EVENT: u32 = 15;
const XS_ERROR: u32 = 16;

/// What the fake does with the next request instead of answering it.
#[derive(Clone, Debug)]
enum Fault {
    /// A header announcing 4097 payload bytes.
    Oversize,
    /// The right reply with another req_id.
    WrongReqId,
    /// The reply with type XS_READ+100.
    WrongType,
    /// Close the connection without a reply.
    Close,
    /// Half a header, then close.
    HalfHeader,
    /// A header for 10 bytes, 3 of them, then close.
    ShortPayload,
    /// A value that is not UTF-8.
    NotUtf8,
    /// An XS_ERROR with this payload.
    ErrorReply(&'static [u8]),
    /// This many watch events before the real reply.
    WatchEvents(usize),
    /// No reply at all (the connection stays open).
    Silence,
    /// These bytes as the whole reply.
    Raw(Vec<u8>),
}

#[derive(Default)]
struct State {
    nodes: BTreeMap<String, String>,
    writes: Vec<(String, String)>,
    faults: VecDeque<Fault>,
    requests: u32,
}

struct Fake {
    path: PathBuf,
    state: Arc<Mutex<State>>,
}

fn header(ty: u32, req_id: u32, tx_id: u32, len: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&ty.to_ne_bytes());
    h[4..8].copy_from_slice(&req_id.to_ne_bytes());
    h[8..12].copy_from_slice(&tx_id.to_ne_bytes());
    h[12..16].copy_from_slice(&len.to_ne_bytes());
    h
}

fn msg(ty: u32, req_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = header(ty, req_id, 0, payload.len() as u32).to_vec();
    m.extend_from_slice(payload);
    m
}

fn cstr(p: &[u8]) -> String {
    String::from_utf8_lossy(p.strip_suffix(b"\0").unwrap_or(p)).into_owned()
}

impl State {
    /// The normal answer: (type, payload).
    fn answer(&mut self, ty: u32, payload: &[u8]) -> (u32, Vec<u8>) {
        let enoent = (XS_ERROR, b"ENOENT\0".to_vec());
        match ty {
            XS_READ => match self.nodes.get(&cstr(payload)) {
                Some(v) => (XS_READ, v.clone().into_bytes()),
                None => enoent,
            },
            XS_WRITE => {
                let sep = payload
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(payload.len());
                let path = String::from_utf8_lossy(&payload[..sep]).into_owned();
                let value =
                    String::from_utf8_lossy(payload.get(sep + 1..).unwrap_or(&[])).into_owned();
                self.writes.push((path.clone(), value.clone()));
                self.nodes.insert(path, value);
                (XS_WRITE, b"OK\0".to_vec())
            }
            XS_DIRECTORY => {
                let dir = cstr(payload);
                let prefix = format!("{dir}/");
                let mut kids: Vec<&str> = self
                    .nodes
                    .keys()
                    .filter_map(|k| k.strip_prefix(&prefix))
                    .filter_map(|rest| rest.split('/').next())
                    .collect();
                kids.dedup();
                if kids.is_empty() && !self.nodes.contains_key(&dir) {
                    return enoent;
                }
                let mut out = Vec::new();
                for k in kids {
                    out.extend_from_slice(k.as_bytes());
                    out.push(0);
                }
                (XS_DIRECTORY, out)
            }
            XS_RM => {
                self.nodes.remove(&cstr(payload));
                (XS_RM, b"OK\0".to_vec())
            }
            _ => (XS_ERROR, b"ENOSYS\0".to_vec()),
        }
    }
}

fn serve(mut s: UnixStream, state: Arc<Mutex<State>>) {
    loop {
        let mut h = [0u8; 16];
        if s.read_exact(&mut h).is_err() {
            return;
        }
        let word = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let (ty, req_id, len) = (word(0), word(4), word(12));
        assert!(len <= 4096, "the tool sent a payload of {len} bytes");
        let mut payload = vec![0u8; len as usize];
        if s.read_exact(&mut payload).is_err() {
            return;
        }
        let (fault, (rty, rbody)) = {
            let mut st = state.lock().unwrap();
            st.requests += 1;
            let f = st.faults.pop_front();
            (f, st.answer(ty, &payload))
        };
        let out = match fault {
            None => msg(rty, req_id, &rbody),
            Some(Fault::Oversize) => header(rty, req_id, 0, 4097).to_vec(),
            Some(Fault::WrongReqId) => msg(rty, req_id.wrapping_add(7), &rbody),
            Some(Fault::WrongType) => msg(rty + 100, req_id, &rbody),
            Some(Fault::Close) => return,
            Some(Fault::HalfHeader) => {
                let _ = s.write_all(&header(rty, req_id, 0, 0)[..7]);
                return;
            }
            Some(Fault::ShortPayload) => {
                let mut m = header(rty, req_id, 0, 10).to_vec();
                m.extend_from_slice(b"abc");
                let _ = s.write_all(&m);
                return;
            }
            Some(Fault::NotUtf8) => msg(rty, req_id, &[0xff, 0xfe, b'1']),
            Some(Fault::ErrorReply(p)) => msg(XS_ERROR, req_id, p),
            Some(Fault::WatchEvents(n)) => {
                let mut m = Vec::new();
                for i in 0..n {
                    m.extend(msg(
                        XS_WATCH_EVENT,
                        0,
                        format!("/local/domain/{i}\0tok\0").as_bytes(),
                    ));
                }
                m.extend(msg(rty, req_id, &rbody));
                m
            }
            Some(Fault::Silence) => {
                std::thread::sleep(Duration::from_secs(3));
                return;
            }
            Some(Fault::Raw(b)) => {
                let _ = s.write_all(&b);
                return;
            }
        };
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Fake {
    fn start(nodes: &[(&str, &str)]) -> Fake {
        let path = std::env::temp_dir().join(format!(
            "selfballoonctl-test-{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        for (k, v) in nodes {
            state
                .lock()
                .unwrap()
                .nodes
                .insert(k.to_string(), v.to_string());
        }
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(s) => {
                        let st = st.clone();
                        std::thread::spawn(move || serve(s, st));
                    }
                    Err(_) => return,
                }
            }
        });
        Fake { path, state }
    }

    fn host() -> Fake {
        Fake::start(HOST)
    }

    fn fault(&self, f: Fault) {
        self.state.lock().unwrap().faults.push_back(f);
    }

    fn writes(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().writes.clone()
    }

    fn node(&self, k: &str) -> Option<String> {
        self.state.lock().unwrap().nodes.get(k).cloned()
    }

    fn requests(&self) -> u32 {
        self.state.lock().unwrap().requests
    }

    fn connect(&self) -> Connection<UnixStream> {
        let s = UnixStream::connect(&self.path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        Connection::new(s)
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_selfballoonctl"))
            .arg("--socket")
            .arg(&self.path)
            .args(args)
            .env_remove("XENSTORED_PATH")
            .output()
            .unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A host: dom0 (no selfballoon status), our guest `sb` (domid 3), a
/// guest still being built (5, no name), and a Linux guest (7).
const HOST: &[(&str, &str)] = &[
    ("/local/domain/0/name", "Domain-0"),
    ("/local/domain/0/memory/target", "524288"),
    ("/local/domain/3/name", "sb"),
    ("/local/domain/3/memory/target", "262144"),
    ("/local/domain/3/data/selfballoon/current", "117760"),
    ("/local/domain/3/data/selfballoon/target", "117000"),
    ("/local/domain/3/data/selfballoon/goal_kib", "20480"),
    ("/local/domain/3/data/selfballoon/committed_kib", "10000"),
    ("/local/domain/3/data/selfballoon/mode", "linux"),
    ("/local/domain/3/data/selfballoon/selfballoon_interval", "5"),
    (
        "/local/domain/3/data/selfballoon/selfballoon_downhysteresis",
        "8",
    ),
    ("/local/domain/5/memory/target", "65536"),
    ("/local/domain/7/name", "linux-pv"),
    ("/local/domain/7/memory/target", "12k"),
    ("/local/domain/pool", "not a domain"),
];

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn status_table() {
    let f = Fake::host();
    let o = f.ctl(&["status"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "\
NAME      DOMID  CURRENT  TARGET   GOAL  COMMITTED  FRONTSWAP  MODE   BACKEND
Domain-0      0        -  512.0M      -          -          -  -      -
sb            3   115.0M  256.0M  20.0M       9.8M          -  linux  -
-             5        -   64.0M      -          -          -  -      -
linux-pv      7        -       ?      -          -          -  -      -
"
    );
    assert!(f.writes().is_empty());
}

#[test]
fn status_json_and_export() {
    let f = Fake::host();
    let o = f.ctl(&["status", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let doms = v["domains"].as_array().unwrap();
    assert_eq!(doms.len(), 4);
    assert_eq!(doms[1]["name"], "sb");
    assert_eq!(doms[1]["domid"], 3);
    assert_eq!(doms[1]["current_kib"], 117760);
    assert_eq!(doms[1]["mode"], "linux");
    assert_eq!(doms[1]["frontswap_kib"], serde_json::Value::Null);
    assert_eq!(doms[2]["name"], serde_json::Value::Null);
    assert_eq!(doms[3]["target_kib"], serde_json::Value::Null);
    assert_eq!(doms[3]["malformed"][0]["key"], "target_kib");
    assert_eq!(doms[3]["malformed"][0]["value"], "12k");

    let o = f.ctl(&["export"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("\nselfballoon_current_kib{domain=\"sb\",domid=\"3\"} 117760\n"));
    assert!(text.contains("\nselfballoon_target_kib{domain=\"\",domid=\"5\"} 65536\n"));
    assert!(!text.contains("domid=\"7\"} 12"));
    assert!(text.ends_with("selfballoon_domains 4\n"));

    let out = std::env::temp_dir().join(format!("selfballoonctl-test-{}.prom", std::process::id()));
    let o = f.ctl(&["export", "--output", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
    std::fs::remove_file(&out).unwrap();
    let o = f.ctl(&["export", "-o", "/nonexistent/dir/x.prom"]);
    assert_eq!(code(&o), i32::from(exit::OTHER));
}

#[test]
fn top_frames() {
    let f = Fake::host();
    let o = f.ctl(&["top", "--interval", "0.05", "--iterations", "3"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        out.matches("selfballoonctl top: 4 domains, ").count(),
        3,
        "{out}"
    );
    assert_eq!(
        out.matches("\nsb            3   115.0M").count(),
        3,
        "{out}"
    );
    // Not a terminal: no escape sequences.
    assert!(!out.contains('\u{1b}'));
    let o = f.ctl(&["--json", "top", "--interval", "0.05", "--iterations", "2"]);
    let lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 2);
    for l in lines {
        serde_json::from_str::<serde_json::Value>(l).unwrap();
    }
}

#[test]
fn get_values() {
    let f = Fake::host();
    // In force as the guest publishes it.
    let o = f.ctl(&["get", "sb", "selfballoon_interval"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "5\n"),
        "{}",
        stderr(&o)
    );
    let o = f.ctl(&["get", "3", "mode"]);
    assert_eq!(stdout(&o), "linux\n");
    let o = f.ctl(&["get", "sb", "memory/target"]);
    assert_eq!(stdout(&o), "262144\n");
    // Neither published nor written.
    let o = f.ctl(&["get", "sb", "selfballoon_reserved_mb"]);
    assert_eq!(code(&o), i32::from(exit::NO_VALUE));
    assert!(
        stderr(&o).contains("selfballoon_reserved_mb of sb: no value"),
        "{}",
        stderr(&o)
    );
    // --json shows both sides.
    let o = f.ctl(&["--json", "get", "sb", "selfballoon_downhysteresis"]);
    assert_eq!(
        stdout(&o),
        "{\"domain\":\"sb\",\"domid\":3,\"key\":\"selfballoon_downhysteresis\",\"in_force\":\"8\",\"requested\":null}\n"
    );
    let o = f.ctl(&["--json", "get", "sb", "selfballoon_reserved_mb"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("\"in_force\":null,\"requested\":null"));
}

#[test]
fn set_writes_exactly_the_value() {
    let f = Fake::host();
    let o = f.ctl(&["set", "sb", "selfballoon_interval", "2"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "/local/domain/3/memory/selfballoon/selfballoon_interval = 2\n"
    );
    let o = f.ctl(&[
        "--json",
        "set",
        "3",
        "memory/selfballoon/selfballoon_downhysteresis",
        "002",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["in_force_expected"], "2");
    let o = f.ctl(&["set", "sb", "target", "131072"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = f.ctl(&["set", "sb", "workload", "alloc:8M,hold:1s,free:8M"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        f.writes(),
        [
            (
                "/local/domain/3/memory/selfballoon/selfballoon_interval".into(),
                "2".into()
            ),
            (
                "/local/domain/3/memory/selfballoon/selfballoon_downhysteresis".into(),
                "002".into()
            ),
            ("/local/domain/3/memory/target".into(), "131072".into()),
            (
                "/local/domain/3/memory/workload".into(),
                "alloc:8M,hold:1s,free:8M".into()
            ),
        ]
    );
    // A domain that publishes no status: written, with a note.
    let o = f.ctl(&["set", "linux-pv", "mode", "2011"]);
    assert_eq!(code(&o), 0);
    assert!(
        stderr(&o).contains("note: linux-pv publishes no data/selfballoon/"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        f.node("/local/domain/7/memory/selfballoon/mode").as_deref(),
        Some("2011")
    );
}

#[test]
fn rejected_values_never_reach_the_store() {
    let f = Fake::host();
    for (key, value, reason) in [
        ("selfballoon_interval", "0", "zero"),
        ("selfballoon_interval", "-1", "not-decimal"),
        ("selfballoon_interval", " 5", "not-decimal"),
        (
            "selfballoon_interval",
            "1180591620717411303424",
            "out-of-range",
        ),
        ("selfballoon_uphysteresis", "", "empty"),
        ("selfballooning", "2", "not-boolean"),
        ("mode", "Linux", "unknown-mode"),
        (
            "memory/target",
            "12k",
            "memory/target is not a decimal number",
        ),
        ("memory/workload", "alloc:1Q", "phase 0:"),
    ] {
        let o = f.ctl(&["set", "sb", key, value]);
        assert_eq!(code(&o), i32::from(exit::REJECTED), "{key}={value:?}");
        let e = stderr(&o);
        assert!(
            e.contains(&format!("refused by the guest's parser: {reason}")),
            "{e}"
        );
        assert!(e.contains("nothing written"), "{e}");
    }
    assert!(f.writes().is_empty());
    // Refused before connecting: not even a request went out.
    assert_eq!(f.requests(), 0);
}

#[test]
fn unknown_domains_and_keys() {
    let f = Fake::host();
    let o = f.ctl(&["get", "nosuch", "mode"]);
    assert_eq!(code(&o), i32::from(exit::UNKNOWN_DOMAIN));
    assert_eq!(stderr(&o), "selfballoonctl: unknown domain 'nosuch'\n");
    let o = f.ctl(&["set", "9", "mode", "linux"]);
    assert_eq!(code(&o), i32::from(exit::UNKNOWN_DOMAIN));
    let o = f.ctl(&["get", "sb", "nosuch"]);
    assert_eq!(code(&o), i32::from(exit::UNKNOWN_KEY));
    assert!(stderr(&o).starts_with("selfballoonctl: unknown key 'nosuch' (known: "));
    let o = f.ctl(&["set", "sb", "data/selfballoon/mode", "linux"]);
    assert_eq!(code(&o), i32::from(exit::UNKNOWN_KEY));
    assert!(f.writes().is_empty());
    let o = f.ctl(&["set", "sb", "mode"]);
    assert_eq!(code(&o), i32::from(exit::USAGE));
}

#[test]
fn no_xenstore() {
    let missing = std::env::temp_dir().join("selfballoonctl-test-no-such.sock");
    let o = Command::new(env!("CARGO_BIN_EXE_selfballoonctl"))
        .args(["--socket", missing.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert_eq!(code(&o), i32::from(exit::NO_XENSTORE));
    assert!(stderr(&o).starts_with(&format!(
        "selfballoonctl: no xenstore: {}: ",
        missing.display()
    )));
    // A file that is not a socket.
    let file =
        std::env::temp_dir().join(format!("selfballoonctl-test-{}.file", std::process::id()));
    std::fs::write(&file, b"").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_selfballoonctl"))
        .args(["status"])
        .env("XENSTORED_PATH", &file)
        .output()
        .unwrap();
    assert_eq!(code(&o), i32::from(exit::NO_XENSTORE), "{}", stderr(&o));
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn garbage_from_xenstored_is_an_error_with_its_exit_code() {
    for (fault, want, text) in [
        (
            Fault::Oversize,
            exit::BAD_REPLY,
            "header announces 4097 payload bytes",
        ),
        (
            Fault::WrongReqId,
            exit::BAD_REPLY,
            "reply to request 8 while waiting for 1",
        ),
        (
            Fault::WrongType,
            exit::BAD_REPLY,
            "reply of type 101 to a request of type 1",
        ),
        (
            Fault::HalfHeader,
            exit::BAD_REPLY,
            "cut short after 7 of 16 bytes",
        ),
        (
            Fault::ShortPayload,
            exit::BAD_REPLY,
            "cut short after 3 of 10 payload bytes",
        ),
        (Fault::NotUtf8, exit::BAD_REPLY, "malformed directory reply"),
        (
            Fault::ErrorReply(b"enoent\0"),
            exit::BAD_REPLY,
            "malformed error reply",
        ),
        (
            Fault::ErrorReply(b"EACCES\0"),
            exit::XENSTORED_ERROR,
            "xenstored refused it: EACCES",
        ),
        (
            Fault::Close,
            exit::NO_XENSTORE,
            "xenstored closed the connection",
        ),
        (
            Fault::Silence,
            exit::BAD_REPLY,
            "no reply from xenstored in time",
        ),
    ] {
        let f = Fake::host();
        f.fault(fault.clone());
        let o = f.ctl(&["--timeout", "0.3", "status"]);
        let e = stderr(&o);
        assert_eq!(code(&o), i32::from(want), "{fault:?}: {e}");
        assert!(
            e.starts_with("selfballoonctl: listing /local/domain: "),
            "{fault:?}: {e}"
        );
        assert!(e.contains(text), "{fault:?}: {e}");
        assert!(stdout(&o).is_empty());
    }
    // Stray watch events are skipped.
    let f = Fake::host();
    f.fault(Fault::WatchEvents(5));
    let o = f.ctl(&["get", "sb", "mode"]);
    assert_eq!((code(&o), stdout(&o).as_str()), (0, "linux\n"));
}

#[test]
fn connection_errors_and_recovery() {
    let f = Fake::host();
    let mut c = f.connect();
    assert_eq!(c.read("/local/domain/3/name").unwrap(), "sb");
    assert_eq!(
        c.read("/local/domain/3/nosuch"),
        Err(XsError::Remote(Errno::ENOENT))
    );
    // An error reply leaves the connection usable.
    f.fault(Fault::ErrorReply(b"EQUOTA\0"));
    assert_eq!(
        c.read("/local/domain/3/name"),
        Err(XsError::Remote(Errno::EINVAL))
    );
    assert_eq!(
        c.directory("/local/domain/3/data").unwrap(),
        ["selfballoon"]
    );
    c.write("/local/domain/3/memory/selfballoon/mode", "2011")
        .unwrap();
    c.rm("/local/domain/3/memory/selfballoon/mode").unwrap();
    f.fault(Fault::WatchEvents(3));
    assert_eq!(c.read("/local/domain/0/name").unwrap(), "Domain-0");
    assert_eq!(c.skipped(), 3);
    // More stray messages than one request reads: an error, no hang.
    f.fault(Fault::WatchEvents(
        selfballoonctl::transport::MAX_SKIPPED + 5,
    ));
    assert_eq!(c.read("/local/domain/0/name"), Err(XsError::Protocol));
    assert!(c.take_detail().unwrap().contains("stray messages"));
    // Broken framing: every later call fails, and says why.
    assert_eq!(c.read("/local/domain/0/name"), Err(XsError::Protocol));
    assert_eq!(
        c.take_detail().as_deref(),
        Some("the connection failed before")
    );
    // Arguments the wire cannot carry never leave.
    let mut c = f.connect();
    let before = f.requests();
    assert_eq!(c.read(""), Err(XsError::BadArgument));
    assert_eq!(c.write("/a", &"v".repeat(5000)), Err(XsError::BadArgument));
    assert_eq!(f.requests(), before);
}

/// Random replies (random headers with small lengths, random payloads, or
/// plain noise): the connection errs or answers, it never panics or
/// hangs.
#[test]
fn random_garbage_never_panics() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let f = Fake::host();
    for i in 0..300 {
        let reply = match i % 3 {
            0 => (0..rand() % 40).map(|_| rand() as u8).collect(),
            _ => {
                let len = (rand() % 24) as u32;
                let ty = [XS_READ, XS_ERROR, XS_WATCH_EVENT, rand() as u32][(rand() % 4) as usize];
                let req_id = if rand() % 2 == 0 { 1 } else { rand() as u32 };
                let mut m = header(ty, req_id, rand() as u32, len).to_vec();
                let body_len = if rand() % 4 == 0 {
                    rand() % 24
                } else {
                    u64::from(len)
                };
                m.extend((0..body_len).map(|_| rand() as u8));
                m
            }
        };
        f.fault(Fault::Raw(reply));
        let mut c = f.connect();
        let _ = c.read("/local/domain/3/name");
        let _ = c.read("/local/domain/3/name");
    }
}
