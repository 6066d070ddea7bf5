//! A private Synapse homeserver (`matrix-synapse` from PyPI, in the project's `.venv`,
//! installed by scripts/test-deps.sh) on a free loopback port with SQLite, started from a
//! generated config in a temp dir and stopped when dropped, plus a tiny client-server API
//! client for the customer's side of a test. It knows nothing of postdesk.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::relay::{self, free_port};

const SHARED_SECRET: &str = "postdesk-test-registration-secret";

pub struct Synapse {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Synapse {
    pub fn start() -> Synapse {
        let python = super::python();
        let ok = Command::new(&python)
            .args(["-c", "import synapse"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "Matrix tests need Synapse (matrix-synapse) for {}: run scripts/test-deps.sh",
            python.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("postdesk-synapse-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let d = dir.path().display();
        let limit = "{per_second: 1000, burst_count: 1000}";
        let config = format!(
            r#"server_name: "localhost"
pid_file: {d}/homeserver.pid
listeners:
  - port: {port}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: {d}/homeserver.db
media_store_path: {d}/media
registration_shared_secret: "{SHARED_SECRET}"
report_stats: false
signing_key_path: {d}/signing.key
trusted_key_servers: []
suppress_key_server_warning: true
enable_registration: false
rc_message: {limit}
rc_login:
  address: {limit}
  account: {limit}
  failed_attempts: {limit}
rc_joins:
  local: {limit}
  remote: {limit}
rc_invites:
  per_room: {limit}
  per_user: {limit}
  per_issuer: {limit}
"#
        );
        let cfg = dir.path().join("homeserver.yaml");
        std::fs::write(&cfg, config).unwrap();
        let keys = Command::new(&python)
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&cfg)
            .arg("--generate-keys")
            .output()
            .unwrap();
        assert!(
            keys.status.success(),
            "synapse --generate-keys: {}",
            String::from_utf8_lossy(&keys.stderr)
        );
        let log = std::fs::File::create(dir.path().join("synapse.log")).unwrap();
        let child = Command::new(&python)
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&cfg)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let hs = Synapse { port, dir, child };
        let started = Instant::now();
        while relay::request(port, "GET", "/_matrix/client/versions", &[], b"")
            .map_or(true, |r| r.status != 200)
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "Synapse did not come up:\n{}",
                hs.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        hs
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        super::log_tail(&self.dir.path().join("synapse.log"), 40)
    }

    /// Registers `user` with `password` through the shared secret.
    pub fn register(&self, user: &str, password: &str) {
        let script: PathBuf = super::python()
            .parent()
            .unwrap()
            .join("register_new_matrix_user");
        let out = Command::new(super::python())
            .arg(&script)
            .args([
                "-u",
                user,
                "-p",
                password,
                "--no-admin",
                "-k",
                SHARED_SECRET,
            ])
            .arg(self.url())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "registering {user}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Logs `user` in: a client for the customer's side.
    pub fn login(&self, user: &str, password: &str) -> MxUser {
        let body = json!({"type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user}, "password": password});
        let r = self.call(None, "POST", "/login", Some(&body));
        MxUser {
            port: self.port,
            token: r["access_token"].as_str().unwrap().to_string(),
            user_id: r["user_id"].as_str().unwrap().to_string(),
        }
    }

    fn call(&self, token: Option<&str>, method: &str, path: &str, body: Option<&Value>) -> Value {
        call(self.port, token, method, path, body)
    }
}

fn call(port: u16, token: Option<&str>, method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    if let Some(t) = token {
        headers.push(("Authorization", format!("Bearer {t}")));
    }
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let r = relay::request(
        port,
        method,
        &format!("/_matrix/client/v3{path}"),
        &headers,
        &bytes,
    )
    .unwrap();
    assert!(r.status == 200, "{method} {path}: {} {}", r.status, r.body);
    r.json()
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A logged-in user.
pub struct MxUser {
    port: u16,
    pub token: String,
    pub user_id: String,
}

/// A transaction id not used before: `prefix` and the time in nanoseconds.
fn txn_id(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{nanos}")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl MxUser {
    /// A private room with `invite` invited; its id.
    pub fn create_room(&self, invite: &str) -> String {
        let r = call(
            self.port,
            Some(&self.token),
            "POST",
            "/createRoom",
            Some(&json!({"preset": "private_chat", "invite": [invite], "is_direct": true})),
        );
        r["room_id"].as_str().unwrap().to_string()
    }

    /// Joins `room` (accepts an invitation).
    pub fn join(&self, room: &str) {
        call(
            self.port,
            Some(&self.token),
            "POST",
            &format!("/rooms/{}/join", enc(room)),
            Some(&json!({})),
        );
    }

    /// Sends a text; its event id.
    pub fn say(&self, room: &str, text: &str) -> String {
        let txn = txn_id("t");
        let r = call(
            self.port,
            Some(&self.token),
            "PUT",
            &format!("/rooms/{}/send/m.room.message/{txn}", enc(room)),
            Some(&json!({"msgtype": "m.text", "body": text})),
        );
        r["event_id"].as_str().unwrap().to_string()
    }

    /// Uploads `data` to the media repository; returns its `mxc://` address.
    pub fn upload(&self, content_type: &str, data: &[u8]) -> String {
        let r = relay::request(
            self.port,
            "POST",
            "/_matrix/media/v3/upload?filename=upload.bin",
            &[
                ("Content-Type", content_type.to_string()),
                ("Authorization", format!("Bearer {}", self.token)),
            ],
            data,
        )
        .unwrap();
        assert!(r.status == 200, "upload: {} {}", r.status, r.body);
        r.json()["content_uri"].as_str().unwrap().to_string()
    }

    /// Sends an `m.image` or `m.file` event naming `mxc`; returns the event id.
    pub fn send_file(
        &self,
        room: &str,
        msgtype: &str,
        mxc: &str,
        name: &str,
        mimetype: &str,
    ) -> String {
        let txn = txn_id("f");
        let r = call(
            self.port,
            Some(&self.token),
            "PUT",
            &format!("/rooms/{}/send/m.room.message/{txn}", enc(room)),
            Some(&json!({"msgtype": msgtype, "body": name, "url": mxc,
                "info": {"mimetype": mimetype}})),
        );
        r["event_id"].as_str().unwrap().to_string()
    }

    /// Sends `text` to `room` as a reply to event `to`; returns the event id.
    pub fn reply(&self, room: &str, to: &str, text: &str) -> String {
        let txn = txn_id("r");
        let r = call(
            self.port,
            Some(&self.token),
            "PUT",
            &format!("/rooms/{}/send/m.room.message/{txn}", enc(room)),
            Some(&json!({"msgtype": "m.text", "body": text,
                "m.relates_to": {"m.in_reply_to": {"event_id": to}}})),
        );
        r["event_id"].as_str().unwrap().to_string()
    }

    /// The room's members who joined.
    pub fn joined_members(&self, room: &str) -> Vec<String> {
        let r = call(
            self.port,
            Some(&self.token),
            "GET",
            &format!("/rooms/{}/joined_members", enc(room)),
            None,
        );
        r["joined"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The room's text messages, oldest first: (sender, body, the event it replies to).
    pub fn messages(&self, room: &str) -> Vec<(String, String, Option<String>)> {
        let r = call(
            self.port,
            Some(&self.token),
            "GET",
            &format!("/rooms/{}/messages?dir=b&limit=100", enc(room)),
            None,
        );
        let mut out: Vec<(String, String, Option<String>)> = r["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "m.room.message")
            .map(|e| {
                (
                    e["sender"].as_str().unwrap_or("").to_string(),
                    e["content"]["body"].as_str().unwrap_or("").to_string(),
                    e["content"]["m.relates_to"]["m.in_reply_to"]["event_id"]
                        .as_str()
                        .map(str::to_string),
                )
            })
            .collect();
        out.reverse();
        out
    }
}
