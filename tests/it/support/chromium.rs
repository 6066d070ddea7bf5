//! A real headless Chromium (Debian's `chromium`, installed by scripts/test-deps.sh),
//! driven over the Chrome DevTools Protocol: the browser listens on a loopback port it
//! picks itself (`--remote-debugging-port=0`, read back from `DevToolsActivePort` in its
//! profile directory), and [`Page`] speaks JSON commands to one tab over a WebSocket
//! (`tungstenite`, blocking, no TLS). Only what the dashboard test needs: navigate,
//! evaluate JavaScript, wait for a condition, take a screenshot.
//!
//! Each browser has a fresh profile in a temporary directory (no cookies from another
//! test) and is killed when its handle drops, also when the test panics.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use super::find_program;

/// How long one protocol command may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium binary: `$POSTDESK_TEST_CHROMIUM`, else `chromium` (Debian) or
/// `chromium-browser` in `$PATH`. Panics with instructions when there is none: under
/// `CI=true` and elsewhere alike, the dashboard test never skips.
pub fn chromium_program() -> PathBuf {
    if let Some(p) = std::env::var_os("POSTDESK_TEST_CHROMIUM") {
        return PathBuf::from(p);
    }
    ["chromium", "chromium-browser"]
        .iter()
        .find_map(|name| find_program(name))
        .unwrap_or_else(|| {
            panic!(
                "The dashboard test needs a headless Chromium (Debian package `chromium`), \
                 but none is installed. Run scripts/test-deps.sh (as root or with sudo) once \
                 on this machine, or name one in POSTDESK_TEST_CHROMIUM."
            )
        })
}

pub struct Browser {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts a headless Chromium with a 1280×1000 window and a fresh profile.
    pub fn start() -> Browser {
        let program = chromium_program();
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile");
        let log = std::fs::File::create(dir.path().join("chromium.log")).unwrap();
        let child = Command::new(&program)
            .args([
                "--headless",
                // Root (CI containers) cannot use the sandbox; the pages are our own.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-features=Translate,OptimizationHints,MediaRouter",
                "--hide-scrollbars",
                "--window-size=1280,1000",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut browser = Browser {
            child,
            port: 0,
            dir,
        };
        let active = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(port) = std::fs::read_to_string(&active)
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()))
            {
                browser.port = port;
                break;
            }
            if let Ok(Some(status)) = browser.child.try_wait() {
                panic!(
                    "chromium exited ({status}) before it listened: {}",
                    browser.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not open its DevTools port in 60 s: {}",
                browser.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        browser
    }

    /// What the browser wrote to standard output and error.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromium.log")).unwrap_or_default()
    }

    /// A new tab on `about:blank`: the browser's own endpoint (named in
    /// `DevToolsActivePort`) opens it, then the tab's endpoint takes its commands.
    pub fn page(&self) -> Page {
        let active =
            std::fs::read_to_string(self.dir.path().join("profile/DevToolsActivePort")).unwrap();
        let browser_path = active.lines().nth(1).unwrap_or_default().trim().to_string();
        let mut browser = Page::connect(self.port, &browser_path);
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let id = target["targetId"]
            .as_str()
            .unwrap_or_else(|| panic!("no target: {target}"))
            .to_string();
        let mut page = Page::connect(self.port, &format!("/devtools/page/{id}"));
        page.call("Page.enable", json!({}));
        page.call("Runtime.enable", json!({}));
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab.
pub struct Page {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Uncaught exceptions, `console.error` lines and the browser's own errors (with
    /// `Log.enable`) the page produced, in order.
    pub errors: Vec<String>,
}

impl Page {
    fn connect(port: u16, path: &str) -> Page {
        let url = format!("ws://127.0.0.1:{port}{path}");
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(COMMAND_TIMEOUT)).unwrap();
        let (ws, _) = tungstenite::client(url.as_str(), stream)
            .unwrap_or_else(|e| panic!("WebSocket to {url}: {e}"));
        Page {
            ws,
            next_id: 0,
            errors: Vec::new(),
        }
    }

    /// Sends one command and returns its result; the events that arrive meanwhile are
    /// dropped, but for the page's errors, which are kept in [`Page::errors`].
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "{method}: no answer in time");
            let text = match self.ws.read() {
                Ok(Message::Text(t)) => t.to_string(),
                Ok(_) => continue,
                Err(e) => panic!("{method}: {e}"),
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"].as_u64() == Some(id) {
                if let Some(err) = v.get("error") {
                    panic!("{method} failed: {err}");
                }
                return v["result"].clone();
            }
            match v["method"].as_str() {
                Some("Runtime.exceptionThrown") => self.errors.push(
                    v["params"]["exceptionDetails"]["exception"]["description"]
                        .as_str()
                        .unwrap_or("an exception")
                        .to_string(),
                ),
                Some("Runtime.consoleAPICalled") if v["params"]["type"] == "error" => {
                    self.errors.push(v["params"]["args"].to_string())
                }
                // The browser's own complaints (a script or style the CSP blocked, say);
                // failed requests are the test's business (it asks for refusals).
                Some("Log.entryAdded")
                    if v["params"]["entry"]["level"] == "error"
                        && v["params"]["entry"]["source"] != "network" =>
                {
                    self.errors.push(v["params"]["entry"]["text"].to_string())
                }
                _ => {}
            }
        }
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("`{expression}` threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Whether `expression` became true within `timeout`, checked every 100 ms. An
    /// expression that throws (the page is between documents) counts as false.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let guarded = format!(
            "(() => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }})()"
        );
        loop {
            let r = self.call(
                "Runtime.evaluate",
                json!({ "expression": guarded, "returnByValue": true, "awaitPromise": true }),
            );
            if r["result"]["value"] == Value::Bool(true) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Opens `url` and waits until its document (after any redirects) has loaded.
    pub fn goto(&mut self, url: &str) {
        let r = self.call("Page.navigate", json!({ "url": url }));
        if let Some(e) = r.get("errorText") {
            panic!("navigating to {url}: {e}");
        }
        assert!(
            self.wait_for(
                "document.readyState === 'complete' && location.href !== 'about:blank'",
                Duration::from_secs(30)
            ),
            "{url} never finished loading"
        );
    }

    /// The page's path (`location.pathname`).
    pub fn path(&mut self) -> String {
        self.eval("location.pathname")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A PNG of the whole page, also written to `path`.
    pub fn screenshot(&mut self, path: &Path) -> Vec<u8> {
        let r = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap_or_default())
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, &png).unwrap();
        png
    }
}
