//! A local Telegram Bot API server (std only, a thread per connection) implementing the
//! documented semantics the bridge relies on (<https://core.telegram.org/bots/api>):
//!
//! - `getUpdates`: an update is confirmed, and forgotten, once `getUpdates` is called with
//!   an `offset` above its `update_id`; without an offset the oldest unconfirmed come
//!   first; `limit`; the long poll waits up to `timeout` seconds for an update to arrive;
//!   `allowed_updates` filters by type (not the updates created before the call, as documented).
//! - `sendMessage`: message ids are per chat; `reply_to_message_id` must name a message of
//!   that chat unless `allow_sending_without_reply` is true; an unknown chat is 400.
//! - `getFile` and the download at `/file/bot<token>/<file_path>`.
//! - A wrong or revoked token answers 401 `Unauthorized`; injected faults answer 429
//!   with `parameters.retry_after`, 5xx, a hang, a body that is not JSON or not UTF-8, a
//!   huge body, or a connection closed after the request was read.
//!
//! It knows nothing of postdesk: it speaks the Bot API's JSON.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One call the server received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub params: Value,
    pub at: Instant,
}

/// A message the bot sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub chat_id: i64,
    pub message_id: i64,
    pub text: String,
    pub reply_to: Option<i64>,
}

/// What the next call of a method gets instead of its answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with `parameters.retry_after`.
    RetryAfter(u64),
    /// This status with the Bot API's error body.
    Status(u16),
    /// These bytes as a 200 answer.
    Body(Vec<u8>),
    /// No answer for this long, then the connection closes.
    Hang(Duration),
    /// The request is carried out, then the connection closes without an answer.
    DoThenDrop,
}

#[derive(Default)]
struct State {
    token: String,
    revoked: bool,
    next_update: i64,
    /// Unconfirmed updates, oldest first.
    updates: VecDeque<Value>,
    /// Every update ever queued (to re-deliver after a lost confirmation).
    history: Vec<Value>,
    next_message: HashMap<i64, i64>,
    messages: HashMap<i64, Vec<i64>>,
    files: HashMap<String, (String, Vec<u8>)>,
    faults: HashMap<String, VecDeque<Fault>>,
    /// The last `allowed_updates` asked for, and the last update id that existed then:
    /// the filter does not apply to updates created before the call (as documented).
    allowed: Option<(Vec<String>, i64)>,
    calls: Vec<Call>,
    sent: Vec<Sent>,
}

pub struct FakeTelegram {
    pub port: u16,
    shared: Arc<(Mutex<State>, Condvar)>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

pub const TOKEN: &str = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

impl FakeTelegram {
    pub fn start() -> FakeTelegram {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let shared = Arc::new((
            Mutex::new(State {
                token: TOKEN.to_string(),
                next_update: 1000,
                ..State::default()
            }),
            Condvar::new(),
        ));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            let shared = shared.clone();
                            std::thread::spawn(move || {
                                let _ = serve(stream, &shared);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        FakeTelegram { port, shared, stop }
    }

    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let (lock, cv) = &*self.shared;
        let out = f(&mut lock.lock().unwrap());
        cv.notify_all();
        out
    }

    /// Queues a raw update (its `update_id` is set here); returns the id.
    pub fn push_update(&self, mut update: Value) -> i64 {
        self.with(|s| {
            s.next_update += 1;
            update["update_id"] = json!(s.next_update);
            s.updates.push_back(update.clone());
            s.history.push(update);
            s.next_update
        })
    }

    /// A customer's text message in their private chat (chat id = user id); returns the
    /// message id.
    pub fn customer_writes(&self, user: i64, name: &str, text: &str) -> i64 {
        self.customer_message(user, name, json!({"text": text}))
    }

    /// A customer's message with `extra` fields (text, caption, document, photo...).
    pub fn customer_message(&self, user: i64, name: &str, extra: Value) -> i64 {
        let id = self.with(|s| {
            let n = s.next_message.entry(user).or_insert(0);
            *n += 1;
            let id = *n;
            s.messages.entry(user).or_default().push(id);
            id
        });
        let mut message = json!({
            "message_id": id,
            "date": 1_796_000_000 + id,
            "chat": {"id": user, "type": "private", "first_name": name},
            "from": {"id": user, "is_bot": false, "first_name": name},
        });
        if let (Some(m), Some(e)) = (message.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                m.insert(k.clone(), v.clone());
            }
        }
        self.push_update(json!({"message": message}));
        id
    }

    /// Makes a file available to `getFile`; returns its file_id.
    pub fn add_file(&self, path: &str, data: &[u8]) -> String {
        self.with(|s| {
            let id = format!("FILE{}", s.files.len() + 1);
            s.files
                .insert(id.clone(), (path.to_string(), data.to_vec()));
            id
        })
    }

    /// The next call of `method` gets `fault`.
    pub fn fault(&self, method: &str, fault: Fault) {
        self.with(|s| s.faults.entry(method.into()).or_default().push_back(fault));
    }

    /// Every token is refused from now on.
    pub fn revoke(&self) {
        self.with(|s| s.revoked = true);
    }

    /// As if every confirmation had been lost: every update is unconfirmed again.
    pub fn forget_confirmations(&self) {
        self.with(|s| s.updates = s.history.iter().cloned().collect());
    }

    /// Updates not confirmed yet.
    pub fn unconfirmed(&self) -> usize {
        self.with(|s| s.updates.len())
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.with(|s| {
            s.calls
                .iter()
                .filter(|c| c.method == method)
                .cloned()
                .collect()
        })
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.with(|s| s.sent.clone())
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn serve(stream: TcpStream, shared: &(Mutex<State>, Condvar)) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(70)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let (method_verb, target, body) = read_request(&mut reader)?;
    let answer = handle(shared, &method_verb, &target, &body);
    let mut stream = stream;
    match answer {
        Reply::Json(status, v) => write_answer(&mut stream, status, v.to_string().as_bytes()),
        Reply::Bytes(status, b) => write_answer(&mut stream, status, &b),
        Reply::Hang(d) => {
            std::thread::sleep(d);
            Ok(())
        }
        Reply::Drop => Ok(()),
    }
}

enum Reply {
    Json(u16, Value),
    Bytes(u16, Vec<u8>),
    Hang(Duration),
    Drop,
}

fn error(code: u16, description: &str) -> Reply {
    Reply::Json(
        code,
        json!({"ok": false, "error_code": code, "description": description}),
    )
}

fn handle(shared: &(Mutex<State>, Condvar), verb: &str, target: &str, body: &[u8]) -> Reply {
    let (lock, cv) = shared;
    // /file/bot<token>/<path>
    if let Some(rest) = target.strip_prefix("/file/bot") {
        let s = lock.lock().unwrap();
        let Some((token, path)) = rest.split_once('/') else {
            return error(404, "Not Found");
        };
        if token != s.token || s.revoked {
            return error(401, "Unauthorized");
        }
        return match s.files.values().find(|(p, _)| p == path) {
            Some((_, data)) => Reply::Bytes(200, data.clone()),
            None => error(404, "Not Found"),
        };
    }
    let Some(rest) = target.strip_prefix("/bot") else {
        return error(404, "Not Found");
    };
    let Some((token, method)) = rest.split_once('/') else {
        return error(404, "Not Found");
    };
    let method = method.split('?').next().unwrap_or("").to_string();
    let params: Value = if verb == "POST" && !body.is_empty() {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return error(400, "Bad Request: can't parse JSON"),
        }
    } else {
        json!({})
    };
    let mut s = lock.lock().unwrap();
    s.calls.push(Call {
        method: method.clone(),
        params: params.clone(),
        at: Instant::now(),
    });
    if token != s.token || s.revoked {
        return error(401, "Unauthorized");
    }
    let fault = s.faults.get_mut(&method).and_then(VecDeque::pop_front);
    match fault {
        Some(Fault::RetryAfter(secs)) => {
            return Reply::Json(
                429,
                json!({"ok": false, "error_code": 429,
                       "description": format!("Too Many Requests: retry after {secs}"),
                       "parameters": {"retry_after": secs}}),
            );
        }
        Some(Fault::Status(code)) => return error(code, "Internal Server Error"),
        Some(Fault::Body(b)) => return Reply::Bytes(200, b),
        Some(Fault::Hang(d)) => return Reply::Hang(d),
        Some(Fault::DoThenDrop) => {
            let _ = call(&mut s, cv, &method, &params);
            return Reply::Drop;
        }
        None => {}
    }
    if method == "getUpdates" {
        return get_updates(s, cv, &params);
    }
    call(&mut s, cv, &method, &params)
}

fn get_updates(mut s: std::sync::MutexGuard<'_, State>, cv: &Condvar, params: &Value) -> Reply {
    if let Some(offset) = params.get("offset").and_then(Value::as_i64) {
        if offset < 0 {
            // The last -offset updates; everything before is forgotten.
            let keep = usize::try_from(-offset).unwrap_or(0);
            while s.updates.len() > keep {
                s.updates.pop_front();
            }
        } else {
            while s
                .updates
                .front()
                .is_some_and(|u| u["update_id"].as_i64().unwrap() < offset)
            {
                s.updates.pop_front();
            }
        }
    }
    let limit = params
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .clamp(1, 100) as usize;
    let timeout = params.get("timeout").and_then(Value::as_u64).unwrap_or(0);
    if let Some(a) = params.get("allowed_updates").and_then(Value::as_array) {
        let list = a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
        let since = s
            .allowed
            .as_ref()
            .map_or(s.next_update, |(_, since)| *since);
        s.allowed = Some((list, since));
    }
    let allowed = s.allowed.clone();
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let ready: Vec<Value> = s
            .updates
            .iter()
            .filter(|u| {
                allowed.as_ref().is_none_or(|(a, since)| {
                    a.is_empty()
                        || u["update_id"].as_i64().unwrap() <= *since
                        || u.as_object()
                            .unwrap()
                            .keys()
                            .any(|k| k != "update_id" && a.contains(k))
                })
            })
            .take(limit)
            .cloned()
            .collect();
        let now = Instant::now();
        if !ready.is_empty() || now >= deadline {
            return Reply::Json(200, json!({"ok": true, "result": ready}));
        }
        s = cv.wait_timeout(s, deadline - now).unwrap().0;
    }
}

fn call(s: &mut State, _cv: &Condvar, method: &str, params: &Value) -> Reply {
    match method {
        "getMe" => Reply::Json(
            200,
            json!({"ok": true, "result": {"id": 110201543, "is_bot": true, "first_name": "Shop"}}),
        ),
        "sendMessage" => {
            let chat = match &params["chat_id"] {
                Value::String(x) => x.parse::<i64>().ok(),
                v => v.as_i64(),
            };
            let Some(chat) = chat.filter(|c| s.messages.contains_key(c)) else {
                return error(400, "Bad Request: chat not found");
            };
            let text = params["text"].as_str().unwrap_or("").to_string();
            if text.is_empty() {
                return error(400, "Bad Request: message text is empty");
            }
            if text.chars().count() > 4096 {
                return error(400, "Bad Request: message is too long");
            }
            let reply_to = params.get("reply_to_message_id").and_then(Value::as_i64);
            if let Some(r) = reply_to
                && !s.messages[&chat].contains(&r)
                && params.get("allow_sending_without_reply") != Some(&json!(true))
            {
                return error(400, "Bad Request: message to be replied not found");
            }
            let n = s.next_message.entry(chat).or_insert(0);
            *n += 1;
            let id = *n;
            s.messages.entry(chat).or_default().push(id);
            s.sent.push(Sent {
                chat_id: chat,
                message_id: id,
                text: text.clone(),
                reply_to,
            });
            Reply::Json(
                200,
                json!({"ok": true, "result": {"message_id": id, "date": 1_796_000_000,
                       "chat": {"id": chat, "type": "private"}, "text": text}}),
            )
        }
        "setWebhook" => {
            let url = params["url"].as_str().unwrap_or("");
            if !url.starts_with("http") {
                return error(
                    400,
                    "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
                );
            }
            Reply::Json(
                200,
                json!({"ok": true, "result": true, "description": "Webhook was set"}),
            )
        }
        "getFile" => {
            let id = params["file_id"].as_str().unwrap_or("");
            match s.files.get(id) {
                Some((path, data)) => Reply::Json(
                    200,
                    json!({"ok": true, "result": {"file_id": id, "file_unique_id": id,
                           "file_size": data.len(), "file_path": path}}),
                ),
                None => error(400, "Bad Request: invalid file_id"),
            }
        }
        _ => error(404, "Not Found"),
    }
}

fn read_request(reader: &mut impl BufRead) -> std::io::Result<(String, String, Vec<u8>)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let verb = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok((verb, target, body))
}

fn write_answer(stream: &mut TcpStream, status: u16, body: &[u8]) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status} Status\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}
