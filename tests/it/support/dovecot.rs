//! A private Dovecot IMAP server per test, and a small blocking IMAP client to seed and
//! inspect it.
//!
//! [`Dovecot::start`] writes a config into a fresh temp dir (`base_dir`, `state_dir`, logs,
//! the passwd-file and every user's home live there), picks a free port on 127.0.0.1 and
//! runs `dovecot -F -c <config>` as a child process. Plaintext LOGIN without TLS is allowed
//! because nothing leaves the loopback interface. Mail is stored as Maildir under
//! `<tempdir>/home/<user>/Maildir`, with `/` as the hierarchy separator.
//!
//! Who owns the mail: running as root (CI containers, this dev box), Dovecot runs its login
//! and internal processes as Debian's `dovenull`/`dovecot` users and the mail processes as
//! `nobody`, which therefore must be able to enter the temp dir (made 0755; the homes are
//! chowned to it). Running as an ordinary user, every Dovecot process runs as that user
//! (`default_login_user` = `default_internal_user` = the current user, no chroot), which
//! Dovecot supports for single-uid setups like this one.
//!
//! Outages: [`Dovecot::stop`] and [`Dovecot::restart`] take the same server down and bring
//! it back on the same port with the same mail, and [`Dovecot::write_to_maildir`] delivers
//! behind the server's back (also while it is down), as a local MDA would.
//! [`DovecotOptions`] starts a server that does not advertise IDLE.
//!
//! TLS: [`Dovecot::start_tls`] runs the same server with `ssl = yes` and a certificate from
//! [`TestCerts`] (a private CA made with the `openssl` command line at test time): the
//! plain port then offers STARTTLS (RFC 2595; plaintext LOGIN stays allowed there, so the
//! helpers below work unchanged), and a second port, [`Dovecot::tls_port`], speaks IMAP
//! over implicit TLS (RFC 8314). The helpers always use the plain port.
//!
//! The IMAP helpers open a fresh connection per call, log in as the user and speak just
//! enough IMAP4rev1 (RFC 3501) plus UIDPLUS (RFC 4315, for APPENDUID) and LITERAL+ (RFC
//! 7888). They panic with the server's reply on any failure: they are for tests only.
//! Folder names must be printable ASCII (no modified UTF-7 here) and, because Maildir++
//! stores `/` as `.`, must not contain dots.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{ensure_test_deps, find_program, log_tail};

/// How long Dovecot may take to greet after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Read/write timeout of one IMAP helper call; a hang fails the test instead of the CI job.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A running private Dovecot; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Dovecot {
    /// The IMAP port on 127.0.0.1 (plaintext, LOGIN and AUTHENTICATE PLAIN/LOGIN allowed;
    /// STARTTLS offered too when started with [`Dovecot::start_tls`]).
    pub port: u16,
    /// The implicit-TLS IMAP port ("imaps") on 127.0.0.1, only when started with
    /// [`Dovecot::start_tls`].
    pub tls_port: Option<u16>,
    child: Child,
    config: PathBuf,
    log: PathBuf,
    /// Dovecot's own stderr (start-up errors before `log_path` is open).
    stderr: PathBuf,
    /// Owner of the mail files when we run as root (`nobody`); `None` otherwise.
    mail_owner: Option<(u32, u32)>,
    users: Vec<(String, String)>,
    // Declared last so it is removed after the server has stopped.
    dir: TempDir,
}

/// How to configure a test Dovecot beyond its users. `Default` is what [`Dovecot::start`]
/// runs.
#[derive(Clone, Copy, Debug)]
pub struct DovecotOptions {
    /// Advertise IDLE (RFC 2177) in CAPABILITY. With `false` the server advertises its
    /// usual list minus IDLE (set explicitly with `imap_capability`), so a client that
    /// honours CAPABILITY must fall back to polling.
    pub idle: bool,
}

impl Default for DovecotOptions {
    fn default() -> Self {
        DovecotOptions { idle: true }
    }
}

/// A private CA and one server certificate it signed, made at test time in a fresh temp
/// dir with the `openssl` command line (Debian package `openssl`), for the TLS tests of
/// both servers: [`Dovecot::start_tls`] and the SMTP sink's
/// [`SinkSecurity`](super::smtp::SinkSecurity).
///
/// The server certificate is for `localhost`: X.509 v3 with subjectAltName `DNS:localhost`
/// and `IP:127.0.0.1` (rustls/webpki ignore the CN and reject v1 certificates and
/// certificates without SAN), extendedKeyUsage serverAuth, and CA:FALSE. The CA is
/// self-signed with `basicConstraints = critical, CA:TRUE` and keyUsage keyCertSign. Both
/// keys are P-256 (fast to make), valid for a week. Nothing trusts this CA unless a client
/// is given [`TestCerts::ca_cert`]. The files are removed when this value drops; a
/// [`Dovecot`] keeps its own copy.
pub struct TestCerts {
    /// The CA certificate (PEM): what a client's `tls_ca_file` points to.
    pub ca_cert: PathBuf,
    /// The server certificate (PEM), signed by the CA.
    pub cert: PathBuf,
    /// The server's private key (PEM, PKCS#8, unencrypted).
    pub key: PathBuf,
    dir: TempDir,
}

impl TestCerts {
    /// Makes a new CA and server certificate. Panics with openssl's words if it fails, or
    /// with instructions if `openssl` is not installed.
    pub fn generate() -> TestCerts {
        let openssl = find_program("openssl").unwrap_or_else(|| {
            panic!(
                "The TLS tests make their certificates with the `openssl` command line, which \
                 is missing (Debian package openssl). Run scripts/test-deps.sh (as root or \
                 with sudo) once on this machine."
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("postdesk-certs-")
            .tempdir()
            .expect("create temp dir for test certificates");
        let path = |name: &str| dir.path().join(name);
        // Our own config files, so the machine's openssl.cnf cannot add or clash with
        // extensions (`req -x509` would otherwise add its v3_ca section as it likes).
        std::fs::write(
            path("ca.cnf"),
            "[req]\n\
             distinguished_name = dn\n\
             prompt = no\n\
             x509_extensions = ca_ext\n\
             [dn]\n\
             CN = postdesk test CA\n\
             [ca_ext]\n\
             basicConstraints = critical, CA:TRUE\n\
             keyUsage = critical, keyCertSign, cRLSign\n\
             subjectKeyIdentifier = hash\n",
        )
        .expect("write ca.cnf");
        std::fs::write(
            path("server.cnf"),
            "[req]\n\
             distinguished_name = dn\n\
             prompt = no\n\
             [dn]\n\
             CN = localhost\n\
             [server_ext]\n\
             basicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature, keyEncipherment\n\
             extendedKeyUsage = serverAuth\n\
             subjectAltName = DNS:localhost, IP:127.0.0.1\n\
             subjectKeyIdentifier = hash\n\
             authorityKeyIdentifier = keyid\n",
        )
        .expect("write server.cnf");
        // A fresh serial per certificate, as issuers must (RFC 5280 §4.1.2.2).
        let serial = format!(
            "0x{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        );
        let p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let run = |what: &str, args: &[&std::ffi::OsStr]| {
            let output = Command::new(&openssl)
                .args(args)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|err| panic!("cannot run {}: {err}", openssl.display()));
            assert!(
                output.status.success(),
                "openssl ({what}) failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let os = |s: &'static str| -> &std::ffi::OsStr { s.as_ref() };
        let mut ca_args: Vec<&std::ffi::OsStr> = ["req", "-x509", "-new", "-config", "ca.cnf"]
            .map(os)
            .to_vec();
        ca_args.extend(p256.map(os));
        ca_args.extend(
            [
                "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "7", "-sha256",
            ]
            .map(os),
        );
        run("CA certificate", &ca_args);
        let mut csr_args: Vec<&std::ffi::OsStr> =
            ["req", "-new", "-config", "server.cnf"].map(os).to_vec();
        csr_args.extend(p256.map(os));
        csr_args.extend(["-nodes", "-keyout", "server.key", "-out", "server.csr"].map(os));
        run("server key and request", &csr_args);
        let mut sign_args: Vec<&std::ffi::OsStr> = [
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-days",
            "7",
            "-sha256",
            "-extfile",
            "server.cnf",
            "-extensions",
            "server_ext",
            "-out",
            "server.pem",
            "-set_serial",
        ]
        .map(os)
        .to_vec();
        sign_args.push(serial.as_ref());
        run("signing the server certificate", &sign_args);
        TestCerts {
            ca_cert: path("ca.pem"),
            cert: path("server.pem"),
            key: path("server.key"),
            dir,
        }
    }

    /// The directory holding the files (also the CA key and openssl's inputs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The system identities Dovecot runs under; see the module docs.
struct Identities {
    login_user: String,
    internal_user: String,
    /// Only set when not running as root (then it is the current user's group).
    internal_group: Option<String>,
    mail_uid: u32,
    mail_gid: u32,
    root: bool,
}

impl Dovecot {
    /// Starts a private Dovecot with the given users (name, password). Each user gets an
    /// empty INBOX on first login. Panics with the Dovecot log tail if it does not come up.
    pub fn start(users: &[(&str, &str)]) -> Dovecot {
        Dovecot::start_with(users, DovecotOptions::default())
    }

    /// Like [`Dovecot::start`], with options. Without IDLE, the server is first started
    /// with its defaults to learn its own CAPABILITY list, then restarted (same port, same
    /// directories) with that list minus IDLE, so every other extension stays as usual.
    pub fn start_with(users: &[(&str, &str)], opts: DovecotOptions) -> Dovecot {
        Dovecot::start_inner(users, opts, None)
    }

    /// Like [`Dovecot::start_with`], with TLS: `ssl = yes` with `certs`' server certificate
    /// and key (copied into the server's own dir, so `certs` may be dropped), STARTTLS on
    /// [`Dovecot::port`] and implicit TLS on [`Dovecot::tls_port`]. Clients must trust
    /// [`TestCerts::ca_cert`] and connect to `localhost` or `127.0.0.1`, the names the
    /// certificate is for. (A separate constructor rather than a `DovecotOptions` field,
    /// so that the `DovecotOptions { idle: false }` literals elsewhere keep compiling.)
    pub fn start_tls(users: &[(&str, &str)], opts: DovecotOptions, certs: &TestCerts) -> Dovecot {
        Dovecot::start_inner(users, opts, Some(certs))
    }

    fn start_inner(
        users: &[(&str, &str)],
        opts: DovecotOptions,
        certs: Option<&TestCerts>,
    ) -> Dovecot {
        let mut dovecot = Dovecot::start_default(users, certs);
        if !opts.idle {
            let (first_user, _) = users
                .first()
                .expect("Dovecot without IDLE needs at least one user to ask for CAPABILITY");
            let without_idle: Vec<String> = dovecot
                .capabilities(first_user)
                .into_iter()
                .filter(|cap| !cap.eq_ignore_ascii_case("IDLE"))
                .collect();
            // A top-level setting after the sections is fine for Dovecot's parser.
            let mut config = std::fs::read_to_string(&dovecot.config)
                .unwrap_or_else(|err| panic!("Dovecot: read {}: {err}", dovecot.config.display()));
            let _ = writeln!(
                config,
                "# DovecotOptions {{ idle: false }}: the default list without IDLE.\n\
                 imap_capability = {}",
                without_idle.join(" ")
            );
            std::fs::write(&dovecot.config, config)
                .unwrap_or_else(|err| panic!("Dovecot: write {}: {err}", dovecot.config.display()));
            dovecot.restart();
            let now = dovecot.capabilities(first_user);
            assert!(
                !now.iter().any(|cap| cap.eq_ignore_ascii_case("IDLE")),
                "Dovecot still advertises IDLE after imap_capability was set: {now:?}"
            );
        }
        dovecot
    }

    fn start_default(users: &[(&str, &str)], certs: Option<&TestCerts>) -> Dovecot {
        ensure_test_deps();
        for (name, password) in users {
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-@+".contains(c)),
                "Dovecot test user name {name:?} must be non-empty [A-Za-z0-9._-@+]"
            );
            assert!(
                !password.is_empty() && password.chars().all(|c| c.is_ascii_graphic() && c != ':'),
                "Dovecot test password for {name:?} must be printable ASCII without ':' or spaces"
            );
        }
        let ids = identities();
        // A port can be taken between our probe and Dovecot's bind (parallel tests); then
        // try another one.
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            match try_start(users, &ids, certs) {
                Ok(dovecot) => return dovecot,
                Err(failure) if failure.contains("Address already in use") => {
                    last_failure = failure;
                }
                Err(failure) => panic!("{failure}"),
            }
        }
        panic!("{last_failure}");
    }

    /// Appends `raw` to `folder` of `user` with the given system flags or keywords (e.g.
    /// `&["\\Seen"]`), creating the folder if missing. Returns the new message's UID from
    /// the APPENDUID response code (RFC 4315).
    pub fn append(&self, user: &str, folder: &str, raw: &[u8], flags: &[&str]) -> u32 {
        for flag in flags {
            assert!(
                !flag.is_empty()
                    && flag
                        .chars()
                        .all(|c| c.is_ascii_graphic() && !"(){%*\"]".contains(c)),
                "IMAP flag {flag:?} is not a valid flag or keyword"
            );
        }
        let mut imap = self.login(user);
        if !folder.eq_ignore_ascii_case("INBOX") {
            imap.create(folder);
        }
        // LITERAL+ (RFC 7888): the server does not send a continuation for `{n+}`.
        let mut command = format!(
            "APPEND {} ({}) {{{}+}}\r\n",
            quote(folder),
            flags.join(" "),
            raw.len()
        )
        .into_bytes();
        command.extend_from_slice(raw);
        let reply = imap.run_ok(&command, &format!("APPEND to {folder:?}"));
        imap.logout();
        // Tagged reply: "OK [APPENDUID <uidvalidity> <uid>] Append completed."
        let uid = reply
            .status_text
            .split_once("[APPENDUID ")
            .and_then(|(_, rest)| rest.split([' ', ']']).nth(1))
            .and_then(|uid| uid.parse().ok());
        uid.unwrap_or_else(|| {
            panic!(
                "Dovecot: APPEND to {folder:?} of {user:?} returned no APPENDUID: {}",
                reply.status_text
            )
        })
    }

    /// Creates (and subscribes) `folder` for `user`; an existing folder is fine.
    pub fn create_folder(&self, user: &str, folder: &str) {
        let mut imap = self.login(user);
        imap.create(folder);
        imap.logout();
    }

    /// All UIDs in `folder` of `user`, ascending.
    pub fn uids(&self, user: &str, folder: &str) -> Vec<u32> {
        let mut imap = self.login(user);
        imap.examine(folder);
        let reply = imap.run_ok(b"UID SEARCH ALL", &format!("UID SEARCH in {folder:?}"));
        imap.logout();
        let mut uids: Vec<u32> = reply
            .untagged
            .iter()
            .filter_map(|line| line.strip_prefix("* SEARCH"))
            .flat_map(|rest| rest.split_whitespace().filter_map(|n| n.parse().ok()))
            .collect();
        uids.sort_unstable();
        uids
    }

    /// The flags of message `uid` in `folder` of `user`, as the server spells them
    /// (`\Seen`, `\Flagged`, keywords), without the session-specific `\Recent`. Panics if
    /// there is no such message.
    pub fn flags(&self, user: &str, folder: &str, uid: u32) -> Vec<String> {
        let mut imap = self.login(user);
        imap.examine(folder);
        let command = format!("UID FETCH {uid} (FLAGS)");
        let reply = imap.run_ok(command.as_bytes(), &format!("{command} in {folder:?}"));
        imap.logout();
        let line = reply
            .untagged
            .iter()
            .find(|line| line.contains(" FETCH ") && fetch_uid(line) == Some(uid))
            .unwrap_or_else(|| {
                panic!("Dovecot: no message with UID {uid} in {folder:?} of {user:?}")
            });
        let flags = line
            .split_once("FLAGS (")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(flags, _)| flags)
            .unwrap_or_else(|| panic!("Dovecot: FETCH reply without FLAGS: {line}"));
        flags
            .split_whitespace()
            .filter(|flag| !flag.eq_ignore_ascii_case("\\Recent"))
            .map(str::to_owned)
            .collect()
    }

    /// The UIDVALIDITY of `folder` of `user` (STATUS, RFC 3501 §6.3.10).
    pub fn uid_validity(&self, user: &str, folder: &str) -> u32 {
        let mut imap = self.login(user);
        let command = format!("STATUS {} (UIDVALIDITY)", quote(folder));
        let reply = imap.run_ok(command.as_bytes(), &format!("STATUS of {folder:?}"));
        imap.logout();
        reply
            .untagged
            .iter()
            .filter(|line| line.starts_with("* STATUS "))
            .find_map(|line| {
                let (_, rest) = line.split_once("UIDVALIDITY ")?;
                rest.split([' ', ')']).next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("Dovecot: STATUS of {folder:?} gave no UIDVALIDITY"))
    }

    /// Forces a new, larger UIDVALIDITY on `folder` of `user` while keeping its messages,
    /// flags and UIDs, as after a server-side restore: a client must now treat every UID
    /// it stored for this folder as meaningless (RFC 3501 §2.3.1.1). Uses
    /// `doveadm mailbox update --uid-validity`, which goes through Dovecot's own locking,
    /// so it is safe while clients are connected; a session that has the folder selected
    /// is disconnected on its next sync with `* BYE IMAP session state is inconsistent,
    /// please relogin.`. Panics unless the value really changed.
    pub fn reset_uid_validity(&self, user: &str, folder: &str) {
        let before = self.uid_validity(user, folder);
        let wanted = before.checked_add(1).unwrap_or(1);
        let doveadm = find_program("doveadm").unwrap_or_else(|| PathBuf::from("doveadm"));
        let output = Command::new(doveadm)
            .arg("-c")
            .arg(&self.config)
            .args(["mailbox", "update", "-u", user, "--uid-validity"])
            .arg(wanted.to_string())
            .arg(folder)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("Dovecot: cannot run doveadm: {err}"));
        assert!(
            output.status.success(),
            "Dovecot: doveadm mailbox update --uid-validity failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let after = self.uid_validity(user, folder);
        assert_eq!(
            after, wanted,
            "Dovecot: UIDVALIDITY of {folder:?} of {user:?} did not change as asked \
             (was {before})"
        );
    }

    /// The user's Maildir (`<home>/Maildir`); it exists once the user has logged in once.
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.path().join("home").join(user).join("Maildir")
    }

    /// The raw message `uid` in `folder` of `user` (fetched with BODY.PEEK[], so `\Seen` is
    /// left alone), or `None` if there is no such message.
    pub fn find_message(&self, user: &str, folder: &str, uid: u32) -> Option<Vec<u8>> {
        let mut imap = self.login(user);
        imap.examine(folder);
        let command = format!("UID FETCH {uid} (BODY.PEEK[])");
        let reply = imap.run_ok(command.as_bytes(), &format!("{command} in {folder:?}"));
        imap.logout();
        reply
            .untagged_raw
            .iter()
            .find(|line| fetch_uid(&String::from_utf8_lossy(line)) == Some(uid))
            .and_then(|line| literal_after(line, b"BODY[] "))
    }

    /// The names of all folders of `user` (LIST "" "*"), in server order.
    pub fn list_folders(&self, user: &str) -> Vec<String> {
        let mut imap = self.login(user);
        let reply = imap.run_ok(b"LIST \"\" \"*\"", "LIST");
        imap.logout();
        reply
            .untagged_raw
            .iter()
            .filter(|line| line.starts_with(b"* LIST "))
            .map(|line| parse_list_name(line))
            .collect()
    }

    /// The capabilities `user` sees after LOGIN (an explicit CAPABILITY command, as
    /// clients such as async-imap issue it), in server order.
    pub fn capabilities(&self, user: &str) -> Vec<String> {
        let mut imap = self.login(user);
        let reply = imap.run_ok(b"CAPABILITY", "CAPABILITY");
        imap.logout();
        reply
            .untagged
            .iter()
            .filter_map(|line| line.strip_prefix("* CAPABILITY "))
            .flat_map(|rest| rest.split_whitespace().map(str::to_owned))
            .collect()
    }

    /// Stops the server (SIGTERM to the master, then waits for it to exit; SIGKILL after
    /// 10 s), as in a server outage: new connections are refused at once. Sessions that
    /// were open get `* BYE Server shutting down.` and a close from their own imap process,
    /// which (Dovecot 2.3.19, a session in IDLE) takes about 10 s after the master is gone.
    /// Mail and index files stay; [`Dovecot::restart`] brings the same server back.
    /// Stopping a stopped server does nothing.
    pub fn stop(&mut self) {
        stop(&mut self.child);
    }

    /// The process id of Dovecot's master process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process ids of the `imap` processes that serve logged-in sessions right now
    /// (children of the master, from /proc). A test may SIGSTOP them to play a server that
    /// hangs with the connection open, as behind a network partition; it must SIGCONT
    /// them again, or they outlive the test.
    pub fn imap_session_pids(&self) -> Vec<u32> {
        let master = self.pid().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut pids: Vec<u32> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces.
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    stat.rsplit_once(") ").is_some_and(|(head, tail)| {
                        head.ends_with("(imap") && tail.split(' ').nth(1) == Some(master.as_str())
                    })
                })
            })
            .collect();
        pids.sort_unstable();
        pids
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Starts the server again from the same config: the same port, users and mail
    /// directories, so messages, UIDs and UIDVALIDITY survive. Stops it first if it is
    /// still running. Returns once the greeting is served; panics with the log tails if
    /// it is not (for instance because another process took the port meanwhile).
    pub fn restart(&mut self) {
        self.stop();
        match spawn_server(&self.config, self.port, &self.log, &self.stderr) {
            Ok(child) => self.child = child,
            Err(failure) => panic!("Dovecot restart: {failure}"),
        }
    }

    /// Puts `raw` straight into `user`'s `Maildir/new` (written in `tmp/`, then renamed,
    /// as an MDA does), bypassing IMAP. Works while the server is stopped: Dovecot assigns
    /// the next UID when a session next looks at the folder, and a session in IDLE hears
    /// of it. Creates the Maildir if the user never logged in. Files are owned by the mail
    /// user (`nobody` when running as root). Returns the file's path.
    pub fn write_to_maildir(&self, user: &str, raw: &[u8]) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        self.password(user); // panics on an unknown user
        let maildir = self.maildir(user);
        for sub in ["", "cur", "new", "tmp"] {
            let dir = maildir.join(sub);
            if !dir.is_dir() {
                std::fs::create_dir_all(&dir)
                    .unwrap_or_else(|err| panic!("Dovecot: mkdir {}: {err}", dir.display()));
                set_mode(&dir, 0o700).unwrap_or_else(|err| panic!("{err}"));
                self.chown_to_mail_user(&dir);
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        // Maildir names: <secs>.M<usecs>P<pid>Q<n>.<host>, unique within this process.
        let name = format!(
            "{}.M{}P{}Q{}.postdesk-test",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = maildir.join("tmp").join(&name);
        let new = maildir.join("new").join(&name);
        std::fs::write(&tmp, raw)
            .unwrap_or_else(|err| panic!("Dovecot: write {}: {err}", tmp.display()));
        set_mode(&tmp, 0o600).unwrap_or_else(|err| panic!("{err}"));
        self.chown_to_mail_user(&tmp);
        std::fs::rename(&tmp, &new)
            .unwrap_or_else(|err| panic!("Dovecot: rename to {}: {err}", new.display()));
        new
    }

    fn chown_to_mail_user(&self, path: &Path) {
        if let Some((uid, gid)) = self.mail_owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .unwrap_or_else(|err| panic!("Dovecot: chown {}: {err}", path.display()));
        }
    }

    /// The password `user` was started with.
    pub fn password(&self, user: &str) -> &str {
        self.users
            .iter()
            .find(|(name, _)| name == user)
            .map(|(_, password)| password.as_str())
            .unwrap_or_else(|| panic!("Dovecot: no test user {user:?}"))
    }

    /// The Dovecot log (`log_path`), for tests that want to look at what the server saw.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn login(&self, user: &str) -> ImapSession {
        let password = self.password(user).to_owned();
        let context = format!("Dovecot on port {} as {user:?}", self.port);
        let mut imap = ImapSession::connect(self.port, context);
        let command = format!("LOGIN {} {}", quote(user), quote(&password));
        imap.run_ok(command.as_bytes(), "LOGIN");
        imap
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- Dovecot log ({}), last lines ---\n{}",
                self.log.display(),
                log_tail(&self.log, 40)
            );
        }
        stop(&mut self.child);
    }
}

/// Writes the config, starts Dovecot and waits for its greeting. `Err` carries a
/// human-readable reason including the log tail.
fn try_start(
    users: &[(&str, &str)],
    ids: &Identities,
    certs: Option<&TestCerts>,
) -> Result<Dovecot, String> {
    let dir = tempfile::Builder::new()
        .prefix("postdesk-dovecot-")
        .tempdir()
        .map_err(|err| format!("Dovecot: cannot create temp dir: {err}"))?;
    let root = dir.path();
    // The mail processes run as `nobody` when we are root: they must be able to enter.
    set_mode(root, 0o755)?;
    let home_root = root.join("home");
    std::fs::create_dir(&home_root).map_err(|err| format!("Dovecot: mkdir home: {err}"))?;
    set_mode(&home_root, 0o755)?;

    let mut passwd = String::new();
    for (name, password) in users {
        let home = home_root.join(name);
        std::fs::create_dir(&home).map_err(|err| format!("Dovecot: mkdir {name}: {err}"))?;
        if ids.root {
            std::os::unix::fs::chown(&home, Some(ids.mail_uid), Some(ids.mail_gid))
                .map_err(|err| format!("Dovecot: chown {}: {err}", home.display()))?;
        }
        let _ = writeln!(
            passwd,
            "{name}:{{PLAIN}}{password}:{}:{}::{}::",
            ids.mail_uid,
            ids.mail_gid,
            home.display()
        );
    }
    let passwd_path = root.join("users");
    std::fs::write(&passwd_path, passwd).map_err(|err| format!("Dovecot: write users: {err}"))?;
    set_mode(&passwd_path, 0o644)?;

    let tls = match certs {
        Some(certs) => Some(install_certs(root, certs)?),
        None => None,
    };

    let port = free_port()?;
    let tls_port = match tls {
        Some(_) => Some(loop {
            let candidate = free_port()?;
            if candidate != port {
                break candidate;
            }
        }),
        None => None,
    };
    let tls_config = tls.as_ref().zip(tls_port);
    let config = root.join("dovecot.conf");
    let log = root.join("dovecot.log");
    std::fs::write(&config, config_text(root, port, tls_config, ids))
        .map_err(|err| format!("Dovecot: write config: {err}"))?;
    set_mode(&config, 0o644)?;

    let stderr_path = root.join("dovecot.stderr");
    let child = spawn_server(&config, port, &log, &stderr_path)?;
    Ok(Dovecot {
        port,
        tls_port,
        child,
        config,
        log,
        stderr: stderr_path,
        mail_owner: ids.root.then_some((ids.mail_uid, ids.mail_gid)),
        users: users
            .iter()
            .map(|(name, password)| ((*name).to_owned(), (*password).to_owned()))
            .collect(),
        dir,
    })
}

/// Runs `dovecot -F -c <config>` and waits for its greeting on `port`. Dovecot's stderr
/// is appended to `stderr_path` (a restart keeps the first run's words). `Err` carries a
/// human-readable reason including the log tails.
fn spawn_server(config: &Path, port: u16, log: &Path, stderr_path: &Path) -> Result<Child, String> {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_path)
        .map_err(|err| format!("Dovecot: open {}: {err}", stderr_path.display()))?;
    let dovecot = find_program("dovecot").unwrap_or_else(|| PathBuf::from("dovecot"));
    let mut child = Command::new(&dovecot)
        .arg("-F")
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|err| format!("Dovecot: cannot run {}: {err}", dovecot.display()))?;

    if let Err(reason) = wait_for_greeting(&mut child, port) {
        stop(&mut child);
        return Err(format!(
            "Dovecot did not start on 127.0.0.1:{port}: {reason}\n\
             --- {} ---\n{}\n--- {} ---\n{}",
            log.display(),
            log_tail(log, 30),
            stderr_path.display(),
            log_tail(stderr_path, 30)
        ));
    }
    Ok(child)
}

/// The server certificate and key inside a Dovecot's own dir.
struct InstalledCerts {
    cert: PathBuf,
    key: PathBuf,
}

/// Copies `certs`' server certificate and key into `<root>/tls` (key 0600: only Dovecot's
/// config process, which runs as us, reads it).
fn install_certs(root: &Path, certs: &TestCerts) -> Result<InstalledCerts, String> {
    let dir = root.join("tls");
    std::fs::create_dir(&dir).map_err(|err| format!("Dovecot: mkdir tls: {err}"))?;
    set_mode(&dir, 0o700)?;
    let installed = InstalledCerts {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    for (from, to) in [(&certs.cert, &installed.cert), (&certs.key, &installed.key)] {
        std::fs::copy(from, to).map_err(|err| {
            format!(
                "Dovecot: copy {} to {}: {err}",
                from.display(),
                to.display()
            )
        })?;
        set_mode(to, 0o600)?;
    }
    Ok(installed)
}

/// The config. With `tls` (the installed certificate and the imaps port) the server runs
/// `ssl = yes`; without it the text is what it always was: `ssl = no`, no imaps listener.
fn config_text(
    root: &Path,
    port: u16,
    tls: Option<(&InstalledCerts, u16)>,
    ids: &Identities,
) -> String {
    // `ssl = yes`, not `required`: plaintext LOGIN on the plain port must keep working for
    // the test helpers, and a client that skips STARTTLS is what a test may want to see.
    let (ssl, imaps) = match tls {
        None => ("ssl = no".to_owned(), "port = 0".to_owned()),
        Some((certs, tls_port)) => (
            format!(
                "ssl = yes\nssl_cert = <{}\nssl_key = <{}",
                certs.cert.display(),
                certs.key.display()
            ),
            format!("address = 127.0.0.1\n    port = {tls_port}\n    ssl = yes"),
        ),
    };
    let root = root.display();
    let internal_group = ids
        .internal_group
        .as_ref()
        .map(|group| format!("default_internal_group = {group}\n"))
        .unwrap_or_default();
    format!(
        r#"# Generated by tests/it/support/dovecot.rs for one test run. Not for production.
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests fail logins on purpose: no 2 s delay after a failure (and see anvil below).
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
{internal_group}first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
mail_location = maildir:~/Maildir

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \Drafts
  }}
  mailbox Sent {{
    special_use = \Sent
  }}
  mailbox Trash {{
    special_use = \Trash
  }}
  mailbox Junk {{
    special_use = \Junk
  }}
  mailbox Archive {{
    special_use = \Archive
  }}
}}

passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/users
}}
userdb {{
  driver = passwd-file
  args = {root}/users
}}

# chroot needs root; it buys nothing for a loopback-only test server.
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    {imaps}
  }}
}}
# Without this socket (mode 0 = not created) auth disables its per-IP penalty, which
# would otherwise delay every later login from 127.0.0.1 by 2-15 s after a failure.
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"#,
        login_user = ids.login_user,
        internal_user = ids.internal_user,
        uid = ids.mail_uid,
        gid = ids.mail_gid,
    )
}

/// Root: Debian's dovenull/dovecot users plus `nobody` for mail. Otherwise: ourselves.
fn identities() -> Identities {
    let uid: u32 = id(&["-u"]).parse().unwrap_or(u32::MAX);
    if uid == 0 {
        Identities {
            login_user: "dovenull".into(),
            internal_user: "dovecot".into(),
            internal_group: None,
            mail_uid: id(&["-u", "nobody"]).parse().expect("uid of nobody"),
            mail_gid: id(&["-g", "nobody"]).parse().expect("gid of nobody"),
            root: true,
        }
    } else {
        let user = id(&["-un"]);
        Identities {
            login_user: user.clone(),
            internal_user: user,
            internal_group: Some(id(&["-gn"])),
            mail_uid: uid,
            mail_gid: id(&["-g"]).parse().expect("our gid"),
            root: false,
        }
    }
}

/// Runs `id ARGS` and returns its trimmed output.
fn id(args: &[&str]) -> String {
    let output = Command::new("id")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run `id`: {err}"));
    assert!(
        output.status.success(),
        "`id {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|err| format!("Dovecot: chmod {}: {err}", path.display()))
}

/// A port that was free a moment ago (the kernel picks it for a bind to port 0).
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|err| format!("Dovecot: cannot bind 127.0.0.1:0: {err}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|err| format!("Dovecot: local_addr: {err}"))
}

/// Connects until Dovecot sends its `* OK` greeting, failing early if it exits.
fn wait_for_greeting(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last_error = String::from("no attempt yet");
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("dovecot exited with {status}"));
        }
        match read_greeting(port) {
            Ok(()) => return Ok(()),
            Err(err) => last_error = err,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "no greeting within {START_TIMEOUT:?} (last error: {last_error})"
    ))
}

fn read_greeting(port: u16) -> Result<(), String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|err| err.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|err| err.to_string())?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|err| err.to_string())?;
    let _ = stream.shutdown(Shutdown::Both);
    if line.starts_with("* OK") {
        Ok(())
    } else {
        Err(format!("unexpected greeting {line:?}"))
    }
}

/// SIGTERM (Dovecot's master then stops its children), wait, SIGKILL as a last resort.
fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // std has no portable SIGTERM and the crate has no libc dependency: use kill(1).
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// An IMAP string for a folder, user name or password (RFC 3501 quoted string).
fn quote(value: &str) -> String {
    assert!(
        value.chars().all(|c| (' '..='~').contains(&c)),
        "{value:?}: the test IMAP client only sends printable ASCII (no modified UTF-7)"
    );
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The UID in an untagged FETCH response line, if any.
fn fetch_uid(line: &str) -> Option<u32> {
    let (_, rest) = line.split_once("UID ")?;
    rest.split([' ', ')']).next()?.parse().ok()
}

/// The bytes of the literal `{n}\r\n...` that follows `marker` in `line`.
fn literal_after(line: &[u8], marker: &[u8]) -> Option<Vec<u8>> {
    let start = line
        .windows(marker.len())
        .position(|window| window == marker)?
        + marker.len();
    let rest = line.get(start..)?.strip_prefix(b"{")?;
    let close = rest.iter().position(|&b| b == b'}')?;
    let len: usize = std::str::from_utf8(rest.get(..close)?).ok()?.parse().ok()?;
    let body = rest.get(close + 1..)?.strip_prefix(b"\r\n")?;
    body.get(..len).map(<[u8]>::to_vec)
}

/// The mailbox name of a `* LIST (flags) "delim" name` line (quoted, atom or literal).
fn parse_list_name(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end();
    let after_flags = text
        .split_once(") ")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("Dovecot: odd LIST line {text:?}"));
    // Skip the delimiter: a quoted char or NIL.
    let name = if let Some(rest) = after_flags.strip_prefix("NIL ") {
        rest
    } else {
        after_flags
            .get(4..)
            .unwrap_or_else(|| panic!("Dovecot: odd LIST line {text:?}"))
    };
    if let Some(quoted) = name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        quoted.replace("\\\"", "\"").replace("\\\\", "\\")
    } else if name.starts_with('{') {
        name.split_once("}\r\n")
            .map(|(_, literal)| literal.to_owned())
            .unwrap_or_else(|| name.to_owned())
    } else {
        name.to_owned()
    }
}

/// One server reply to a tagged command.
struct Reply {
    /// Untagged lines (`* ...`), lossily decoded, literals inline.
    untagged: Vec<String>,
    /// The same lines as bytes, for literals that are message data.
    untagged_raw: Vec<Vec<u8>>,
    /// The tagged completion after the status word, e.g. `[APPENDUID 1 2] Append completed.`
    status_text: String,
}

/// A logged-in (or about to be) blocking IMAP connection.
struct ImapSession {
    stream: BufReader<TcpStream>,
    next_tag: u32,
    context: String,
}

impl ImapSession {
    fn connect(port: u16, context: String) -> ImapSession {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|err| panic!("{context}: cannot connect: {err}"));
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
            .unwrap_or_else(|err| panic!("{context}: cannot set timeouts: {err}"));
        let mut session = ImapSession {
            stream: BufReader::new(stream),
            next_tag: 1,
            context,
        };
        let greeting = session.read_response();
        assert!(
            greeting.starts_with(b"* OK"),
            "{}: unexpected greeting {:?}",
            session.context,
            String::from_utf8_lossy(&greeting)
        );
        session
    }

    /// Sends one command (which may carry LITERAL+ literals) and collects the reply; panics
    /// unless it completes with OK. `what` names the command in panics without echoing
    /// passwords or message data.
    fn run_ok(&mut self, command: &[u8], what: &str) -> Reply {
        let (status, reply) = self.run(command, what);
        assert!(
            status == "OK",
            "{}: {what} failed: {status} {}",
            self.context,
            reply.status_text
        );
        reply
    }

    /// Like `run_ok`, but returns the status word (OK, NO, BAD) instead of panicking.
    fn run(&mut self, command: &[u8], what: &str) -> (String, Reply) {
        let tag = format!("T{}", self.next_tag);
        self.next_tag += 1;
        let mut line = Vec::with_capacity(command.len() + tag.len() + 3);
        line.extend_from_slice(tag.as_bytes());
        line.push(b' ');
        line.extend_from_slice(command);
        line.extend_from_slice(b"\r\n");
        self.stream
            .get_mut()
            .write_all(&line)
            .unwrap_or_else(|err| panic!("{}: {what}: write failed: {err}", self.context));

        let mut reply = Reply {
            untagged: Vec::new(),
            untagged_raw: Vec::new(),
            status_text: String::new(),
        };
        let tag_prefix = format!("{tag} ");
        loop {
            let response = self.read_response();
            if let Some(rest) = response.strip_prefix(tag_prefix.as_bytes()) {
                let rest = String::from_utf8_lossy(rest).trim_end().to_owned();
                let (status, text) = rest.split_once(' ').unwrap_or((rest.as_str(), ""));
                reply.status_text = text.to_owned();
                return (status.to_ascii_uppercase(), reply);
            }
            if response.starts_with(b"* BYE") {
                panic!(
                    "{}: {what}: server said {}",
                    self.context,
                    String::from_utf8_lossy(&response).trim_end()
                );
            }
            reply
                .untagged
                .push(String::from_utf8_lossy(&response).trim_end().to_owned());
            reply.untagged_raw.push(response);
        }
    }

    /// Reads one response line including any literals it announces (`{n}` at line end).
    fn read_response(&mut self) -> Vec<u8> {
        let mut response = Vec::new();
        loop {
            let read = self
                .stream
                .read_until(b'\n', &mut response)
                .unwrap_or_else(|err| panic!("{}: read failed: {err}", self.context));
            assert!(read > 0, "{}: server closed the connection", self.context);
            let Some(len) = announced_literal(&response) else {
                return response;
            };
            let start = response.len();
            response.resize(start + len, 0);
            let (_, literal) = response.split_at_mut(start);
            self.stream
                .read_exact(literal)
                .unwrap_or_else(|err| panic!("{}: literal read failed: {err}", self.context));
        }
    }

    fn examine(&mut self, folder: &str) {
        let command = format!("EXAMINE {}", quote(folder));
        self.run_ok(command.as_bytes(), &format!("EXAMINE {folder:?}"));
    }

    /// CREATE + SUBSCRIBE; ALREADYEXISTS (RFC 5530) is not an error here.
    fn create(&mut self, folder: &str) {
        let command = format!("CREATE {}", quote(folder));
        let (status, reply) = self.run(command.as_bytes(), "CREATE");
        assert!(
            status == "OK" || reply.status_text.contains("[ALREADYEXISTS]"),
            "{}: CREATE {folder:?} failed: {status} {}",
            self.context,
            reply.status_text
        );
        let command = format!("SUBSCRIBE {}", quote(folder));
        self.run_ok(command.as_bytes(), &format!("SUBSCRIBE {folder:?}"));
    }

    fn logout(mut self) {
        // The reply is `* BYE` then the tagged OK; we do not need either.
        let _ = self.stream.get_mut().write_all(b"L LOGOUT\r\n");
        let _ = self.stream.get_mut().shutdown(Shutdown::Write);
        let mut rest = Vec::new();
        let _ = self.stream.read_to_end(&mut rest);
    }
}

/// `Some(n)` if the line ends with a literal announcement `{n}\r\n` (or `{n+}`).
fn announced_literal(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}\r\n")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = body.get(open + 1..)?;
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}
