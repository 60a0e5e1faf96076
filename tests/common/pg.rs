//! A throwaway PostgreSQL cluster for the tests that run the store on PostgreSQL.
//!
//! The server binaries come from `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql` package;
//! `.ci/run` installs it) or from `$PG_BIN`. PostgreSQL refuses to run as root and the tests run as
//! root, so the cluster belongs to the `postgres` OS user: a temp folder it owns, `initdb` and
//! `pg_ctl` run through `runuser -u postgres --`. The server listens on a Unix socket in that folder
//! only (no TCP port to collide with), trusts local connections, and is stopped and its folder removed
//! when the [`Pg`] is dropped, also when a test panics. A watchdog process stops it too should the test
//! process die without unwinding (killed, aborted): it waits on a pipe from the test process, which
//! the kernel closes however that process ends. (No `kill -<pgid>`: procps-ng 4.0's `kill` does not
//! parse a negative pid after a signal name the way one expects.)
//!
//! Missing binaries make the test fail with a message saying what to install: never a silent skip.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The socket's "port" (it only names the socket file: the folder is the cluster's own).
const PORT: u16 = 5432;
/// The user the server runs as when the tests run as root.
const OS_USER: &str = "postgres";

/// A running throwaway cluster with one database (`gw`) created.
pub struct Pg {
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    watchdog: Option<Child>,
    databases: AtomicUsize,
}

/// The folder of the PostgreSQL server binaries, or a panic saying how to get them.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").exists(),
            "PG_BIN={} has no initdb (install the Debian `postgresql` package, or point PG_BIN at a \
             folder with initdb and pg_ctl)",
            dir.display()
        );
        return dir;
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): install the Debian \
             `postgresql` package (.ci/run does), or point PG_BIN at a folder with initdb and pg_ctl. \
             The PostgreSQL tests fail rather than skip."
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Pg {
    /// Creates, starts and fills a cluster in a new temp folder.
    pub fn start() -> Self {
        let bin = bin_dir();
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!(
            "gw-pg-{}-{}",
            std::process::id(),
            ulid::Ulid::new()
        ));
        std::fs::create_dir_all(&dir).expect("pg temp dir");
        // The server (another user) must reach its folder: the parents are 0755 already (/tmp is 1777).
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .expect("chmod pg temp dir");
        if as_postgres {
            run(Command::new("chown").arg(OS_USER).arg(&dir), "chown");
        }
        let mut pg = Self {
            dir,
            bin,
            as_postgres,
            watchdog: None,
            databases: AtomicUsize::new(0),
        };
        pg.watchdog = Some(pg.spawn_watchdog());
        let data = pg.data();
        pg.run_pg(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-locale".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        // Durability is not what these tests are about: no fsync keeps a 20,000-item run quick.
        let options = format!(
            "-c listen_addresses='' -k {} -p {PORT} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            pg.dir.display()
        );
        let log = pg.dir.join("log");
        pg.run_pg(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        );
        pg.create_database("gw");
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The socket folder.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The URL of database `db` (through the socket in `host`, as user `postgres`; the `localhost` is
    /// only there because sqlx refuses an empty host).
    pub fn url_of(&self, db: &str) -> String {
        format!(
            "postgres://postgres@localhost/{db}?host={}&port={PORT}",
            self.dir.display()
        )
    }

    /// The URL of the database created at start.
    pub fn url(&self) -> String {
        self.url_of("gw")
    }

    /// Creates database `name`; returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        let port = PORT.to_string();
        self.run_pg(
            "createdb",
            &[
                "-h".as_ref(),
                self.dir.as_os_str(),
                "-p".as_ref(),
                port.as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                name.as_ref(),
            ],
        );
        self.url_of(name)
    }

    /// A new empty database with a generated name; returns its URL.
    pub fn fresh_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        self.create_database(&format!("gw{n}"))
    }

    /// The server's log (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", OS_USER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run_pg(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let mut c = self.command(program);
        c.args(args).current_dir(&self.dir);
        let out = c
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} failed ({}): {}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// A process of its own (own process group, so a Ctrl-C of the tests does not reach it) that
    /// stops the cluster and removes the folder when its stdin, a pipe from this process, ends without
    /// the word `done`: that is, when this process died without dropping the [`Pg`].
    fn spawn_watchdog(&self) -> Child {
        let stop = format!(
            "{runas}{pg_ctl} -D {data} -m immediate -w stop >/dev/null 2>&1",
            runas = if self.as_postgres {
                format!("runuser -u {OS_USER} -- ")
            } else {
                String::new()
            },
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data().display(),
        );
        let script = format!(
            "read -r word; if [ \"$word\" != done ]; then {stop}; rm -rf {dir}; fi",
            dir = self.dir.display(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("pg watchdog")
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(mut w) = self.watchdog.take() {
            if let Some(mut stdin) = w.stdin.take() {
                let _ = stdin.write_all(b"done\n");
            }
            let _ = w.wait();
        }
    }
}

fn run(c: &mut Command, what: &str) {
    let status = c.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}

/// Rows of a table in the PostgreSQL database at `url` (to prove the store unchanged).
pub async fn count_rows(url: &str, table: &str) -> i64 {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("open db");
    let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "select count(*) as n from {table}"
    )))
    .fetch_one(&pool)
    .await
    .expect("count")
    .try_get("n")
    .expect("n");
    pool.close().await;
    n
}
