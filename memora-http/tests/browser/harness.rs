//! Plumbing of the browser tests: the real `memora serve` binary on the
//! embedded backend (known demo password, free port), a `chromedriver` on a
//! free port driving headless Chromium, a WebDriver session (fantoccini),
//! waits with generous deadlines, an API client for set-up and checks, and
//! screenshots.
//!
//! Without Chromium or chromedriver the tests print `SKIPPED: …` and pass;
//! under `CI` they fail (`.ci/run` installs the Debian packages `chromium`
//! and `chromium-driver`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// One browser and one server at a time: the machine has two shared cores.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Password of the demo accounts (passes the password policy).
pub const DEMO_PASSWORD: &str = "Demo-Memora-2026!";
pub const STUDENT: &str = "student@demo.memora";
pub const ADMIN: &str = "admin@demo.memora";

/// How long any wait may take before the test fails. Generous: the
/// machine is shared and a debug build is slow; the waits return as soon
/// as the condition holds.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Viewport of the screenshots in docs/console/.
pub const WIDTH: u32 = 1024;
pub const HEIGHT: u32 = 700;

fn skip(why: &str) -> Option<Tools> {
    if std::env::var_os("CI").is_some() {
        panic!(
            "browser tests need Chromium under CI: {why} (apt-get install chromium chromium-driver)"
        );
    }
    eprintln!("SKIPPED: {why} (apt-get install chromium chromium-driver to run the browser tests)");
    None
}

fn which(candidates: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in candidates {
        let p = Path::new(name);
        if p.is_absolute() && p.is_file() {
            return Some(p.to_path_buf());
        }
        for dir in std::env::split_paths(&path) {
            let full = dir.join(name);
            if full.is_file() {
                return Some(full);
            }
        }
    }
    None
}

/// The browser and its driver.
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

/// Finds Chromium and chromedriver (`MEMORA_TEST_CHROMIUM`,
/// `MEMORA_TEST_CHROMEDRIVER` override the search), or skips.
pub fn tools() -> Option<Tools> {
    let from_env = |v: &str| {
        std::env::var_os(v)
            .map(PathBuf::from)
            .filter(|p| p.is_file())
    };
    let chromium = from_env("MEMORA_TEST_CHROMIUM").or_else(|| {
        which(&[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "/usr/lib/chromium/chromium",
        ])
    });
    let chromedriver = from_env("MEMORA_TEST_CHROMEDRIVER")
        .or_else(|| which(&["chromedriver", "/usr/lib/chromium/chromedriver"]));
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some(Tools {
            chromium,
            chromedriver,
        }),
        (None, _) => skip("no chromium on PATH"),
        (_, None) => skip("no chromedriver on PATH"),
    }
}

/// A free loopback port below the ephemeral range (see
/// [`memora_tests::free_port_with`]).
pub use memora_tests::free_port;

/// A child process with its output captured, killed on drop.
struct Proc {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(mut cmd: Command, what: &str) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let pipes: [Option<Box<dyn std::io::Read + Send>>; 2] = [
            child.stdout.take().map(|p| Box::new(p) as _),
            child.stderr.take().map(|p| Box::new(p) as _),
        ];
        for pipe in pipes.into_iter().flatten() {
            let sink = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&line);
                        s.push('\n');
                    }
                }
            });
        }
        Proc { child, output }
    }

    fn output(&self) -> String {
        self.output.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Polls `url` until it answers 200 (or the process exits).
    async fn wait_ready(&mut self, url: &str, what: &str) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(r) = http.get(url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{what} exited ({status}):\n{}", self.output());
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not answer {url} within {DEADLINE:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `memora serve` on the embedded in-memory backend with the demo data.
pub struct Server {
    proc: Proc,
    pub port: u16,
}

impl Server {
    pub async fn start() -> Server {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_memora"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MEMORA_") {
                cmd.env_remove(&k);
            }
        }
        cmd.arg("serve")
            .env("MEMORA_DEMO_PASSWORD", DEMO_PASSWORD)
            .env("MEMORA_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn");
        let mut proc = Proc::spawn(cmd, "memora serve");
        proc.wait_ready(&format!("http://127.0.0.1:{port}/healthz"), "memora serve")
            .await;
        Server { proc, port }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failing test shows what the server said.
        if std::thread::panicking() {
            eprintln!("memora serve output:\n{}", self.proc.output());
        }
    }
}

/// chromedriver plus one headless Chromium session.
pub struct Browser {
    pub client: Client,
    _driver: Proc,
    _profile: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Browser {
    pub async fn start(tools: &Tools) -> Browser {
        let port = free_port();
        let mut cmd = Command::new(&tools.chromedriver);
        cmd.arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1");
        let mut driver = Proc::spawn(cmd, "chromedriver");
        driver
            .wait_ready(&format!("http://127.0.0.1:{port}/status"), "chromedriver")
            .await;
        let profile =
            std::env::temp_dir().join(format!("memora-browser-{}-{port}", std::process::id()));
        let caps = json!({
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": [
                    "--headless=new",
                    // Tests run as root in CI containers, where Chromium's
                    // sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-extensions",
                    "--no-first-run",
                    "--hide-scrollbars",
                    "--lang=en-US",
                    "--force-device-scale-factor=1",
                    format!("--window-size={WIDTH},{HEIGHT}"),
                    format!("--user-data-dir={}", profile.display()),
                ],
            }
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!("a JSON object"),
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "WebDriver session with {} failed: {e}\n{}",
                    tools.chromium.display(),
                    driver.output()
                )
            });
        let browser = Browser {
            client,
            _driver: driver,
            _profile: TempDir(profile),
        };
        browser.viewport(WIDTH, HEIGHT).await;
        browser
    }

    /// Sizes the viewport (not the window) to `width` × `height`.
    pub async fn viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window size");
        let inner = self
            .client
            .execute(
                "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];",
                vec![],
            )
            .await
            .expect("window chrome");
        let dw = inner[0].as_u64().unwrap_or(0) as u32;
        let dh = inner[1].as_u64().unwrap_or(0) as u32;
        if dw > 0 || dh > 0 {
            self.client
                .set_window_size(width + dw, height + dh)
                .await
                .expect("window size");
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Waits until `css` matches an element.
    pub async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(el) => el,
            Err(e) => panic!(
                "no element {css} within {DEADLINE:?}: {e}\n{}",
                self.page_state().await
            ),
        }
    }

    /// The URL and the visible text of the page (for failure messages).
    pub async fn page_state(&self) -> String {
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let text = self
            .client
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        format!("page {url}:\n{text}")
    }

    /// Every element matching `css` now (no wait).
    pub async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        el.clear().await.expect("clear");
        el.send_keys(text).await.expect("type");
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    /// Polls `css`'s text until `ok` accepts it; returns it.
    pub async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        let mut last = String::new();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = el.text().await {
                    if ok(&t) {
                        return t;
                    }
                    last = t;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "{css} never showed {what} within {DEADLINE:?}; last text: {last:?}\n{}",
                    self.page_state().await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls a JavaScript expression until it returns `true`.
    pub async fn wait_js(&self, expr: &str, what: &str) {
        let deadline = Instant::now() + DEADLINE;
        let script = format!("return Boolean({expr});");
        loop {
            if let Ok(Value::Bool(true)) = self.client.execute(&script, vec![]).await {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "never true within {DEADLINE:?}: {what} ({expr})\n{}",
                    self.page_state().await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Signs in through the console's form and waits for the navigation.
    pub async fn sign_in(&self, base: &str, user: &str) {
        self.goto(&format!("{base}/")).await;
        self.fill("#login-usr", user).await;
        self.fill("#login-pwd", DEMO_PASSWORD).await;
        self.click("#login-submit").await;
        self.find("#nav a").await;
        self.wait_text("#role", "a role", |t| !t.is_empty()).await;
    }

    /// A PNG of the viewport, written to `target/…/console-screenshots/`, or
    /// to `docs/console/` when `MEMORA_UPDATE_SCREENSHOTS=1` (so a plain
    /// test run leaves the work tree clean).
    pub async fn screenshot(&self, name: &str) {
        // No placeholder leaked into the page (a null or undefined value
        // rendered as text).
        let text = self
            .client
            .execute("return document.body.innerText;", vec![])
            .await
            .expect("page text");
        let text = text.as_str().unwrap_or_default();
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            assert!(
                !matches!(word, "null" | "undefined" | "NaN" | "nullnull"),
                "{name}: {word:?} shown on the page:\n{text}"
            );
        }
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
        let dir = if std::env::var("MEMORA_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/console")
        } else {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
        };
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// A logged-in API client (cookie session + CSRF header), for set-up and
/// for checking what the server itself allows.
pub struct Api {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Api {
    pub async fn login(base: &str, user: &str) -> Api {
        Self::login_with(base, user, json!({})).await
    }

    /// [`Api::login`] with more login arguments (e.g. a device).
    pub async fn login_with(base: &str, user: &str, extra: Value) -> Api {
        let mut body = json!({"usr": user, "pwd": DEMO_PASSWORD});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{base}/api/method/login"))
            .json(&body)
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status(), 200, "login {user}");
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.split(';').next().filter(|c| c.starts_with("sid=")))
            .expect("sid cookie")
            .to_owned();
        let csrf = resp.headers()["x-frappe-csrf-token"]
            .to_str()
            .expect("csrf")
            .to_owned();
        Api {
            http,
            base: base.to_owned(),
            cookie,
            csrf,
        }
    }

    /// POSTs `memora.api.<method>`; returns the status and the body.
    pub async fn call(&self, method: &str, args: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/api/method/memora.api.{method}", self.base))
            .header("cookie", &self.cookie)
            .header("x-frappe-csrf-token", &self.csrf)
            .json(&args)
            .send()
            .await
            .expect("call");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `message` of a call that must succeed.
    pub async fn ok(&self, method: &str, args: Value) -> Value {
        let (status, body) = self.call(method, args).await;
        assert_eq!(status, 200, "{method}: {body}");
        body["message"].clone()
    }
}
