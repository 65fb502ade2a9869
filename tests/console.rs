//! End to end in a real browser: headless Chromium driven over WebDriver (chromedriver) on the
//! console `agentos-host serve` embeds. The timeline updates live when an event is posted from
//! outside; receipts show verified, checked by the page itself with WebCrypto, and a receipt
//! altered in the journal shows as failing; an approver loads their key file in the page, signs
//! the approval there, the quorum is met and the change applies, and the timeline shows it.
//! Screenshots of each page land in `target/console-screenshots/`. Every world ends with replay
//! + verify (the tampered one with verify naming the altered receipt).

use crate::common::*;
use crate::serve::{Server, counter_approved_by, fetching_world, get, post, with_timer_grant};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the page gets to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(30);

/// Chromium and chromedriver, installed by `.ci/install-browser` if missing (once per run).
fn ensure_browser() {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
            return Ok(());
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/install-browser");
        let status = std::process::Command::new("bash")
            .arg(script)
            .status()
            .map_err(|e| e.to_string())?;
        match status.success() {
            true => Ok(()),
            false => Err(format!("{status}")),
        }
    });
    if let Err(error) = installed {
        panic!("the browser tests need Debian's `chromium` and `chromium-driver`; installing them failed ({error})");
    }
}

/// chromedriver on a free loopback port and a headless Chromium session through it.
struct Browser {
    driver: std::process::Child,
    client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        ensure_browser();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1400,1000", format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(error) if started.elapsed() < PATIENCE => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("no WebDriver session through chromedriver: {error}"),
            }
        };
        Browser {
            driver,
            client,
            _profile: profile,
        }
    }

    async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The text of the first element matching `css` once `ready` holds for it.
    async fn text_when(&self, css: &str, ready: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < PATIENCE {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                if ready(&text) {
                    return text;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("`{css}` never became what the test waits for; last seen: {last:?}");
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Save what the page shows as `target/console-screenshots/<name>.png`.
    async fn screenshot(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `post` from async code.
async fn post_event(url: String, body: serde_json::Value) -> serde_json::Value {
    tokio::task::spawn_blocking(move || {
        let (status, answer) = post(&url, &body, &[]);
        assert_eq!(status, 201, "{answer}");
        answer
    })
    .await
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_timeline_updates_live_and_receipts_verify_in_the_browser() {
    let (base, _hits) = serve_text("a page served on loopback");
    let (_scratch, dir) = fetching_world();
    let server = Server::start(&[&dir], &[]);
    let events = server.at("/v1/worlds/world/events?wait=step");
    runtime().block_on(async {
        post_event(events.clone(), json!({"agent": "hello", "wave": format!("fetch(\"{base}/first\")")})).await;
        let browser = Browser::start().await;
        browser.open(&server.at("/")).await;
        browser.text_when("[data-world=world]", |t| t.contains("entries")).await;
        browser.screenshot("worlds").await;

        browser.open(&server.at("/#/w/world/timeline")).await;
        browser.text_when("#live-text", |t| t == "live").await;
        let before = browser.count("#timeline tr").await;
        assert!(before > 0, "the timeline shows the journal");
        // Posted from outside, the event and its step appear without a reload.
        post_event(events.clone(), json!({"agent": "hello", "wave": format!("fetch(\"{base}/second\")")})).await;
        let newest = browser
            .text_when("#timeline tr[data-kind=ingress]", |t| t.contains("/second"))
            .await;
        assert!(newest.contains("hello"), "{newest}");
        browser
            .text_when("#timeline tr[data-kind=step-committed]", |t| t.contains("hello"))
            .await;
        assert!(browser.count("#timeline tr").await > before);
        browser.screenshot("timeline").await;
        // Filtered to receipts only.
        browser.click("#filter-kind option[value=effect-receipt]").await;
        let visible: i64 = serde_json::from_value(
            browser
                .client
                .execute(
                    "return [...document.querySelectorAll('#timeline tr')].filter(r => !r.hidden && r.dataset.kind !== 'effect-receipt').length",
                    vec![],
                )
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(visible, 0, "only receipts stay visible");

        // Every receipt checks in the page; an inclusion proof is recomputed there.
        browser.open(&server.at("/#/w/world/receipts")).await;
        browser.text_when("#receipts tr td.check", |t| t.contains("verified")).await;
        let checks = browser.client.find_all(Locator::Css("#receipts td.check")).await.unwrap();
        assert!(checks.len() >= 2, "two fetches and their log lines");
        for check in checks {
            let text = check.text().await.unwrap();
            assert!(text.contains("✓ verified"), "{text}");
        }
        browser.click("#receipts tr button").await;
        let proof = browser.text_when("#receipts tr td:last-child", |t| !t.contains("checking")).await;
        assert!(proof.contains("included"), "{proof}");
        // Anchored: with the key the operator gave pinned the same receipts check; with another
        // key pinned (a server passing off its own world as this one) none does.
        let (_, world) = tokio::task::spawn_blocking({
            let url = server.at("/v1/worlds/world");
            move || get(&url, None)
        })
        .await
        .unwrap();
        let operators_key = world["genesis_public_key"].as_str().unwrap().to_string();
        for (key, expected) in [(operators_key.as_str(), "✓ verified"), (&"ab".repeat(32)[..], "✗")] {
            let input = browser.client.find(Locator::Css("#pinned-key")).await.unwrap();
            input.clear().await.unwrap();
            input.send_keys(key).await.unwrap();
            browser.click("#pin").await;
            browser
                .text_when("#receipts tr td.check", |t| t.contains(expected))
                .await;
            if expected.starts_with('✓') {
                browser.screenshot("receipts").await;
            }
        }
        browser.close().await;
    });
    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    replay_and_verify(&dir);
}

#[test]
fn a_receipt_altered_in_the_journal_shows_as_failing_in_the_browser() {
    use agentos_journal::entry::EntryBody;
    let (base, _hits) = serve_text("a page served on loopback");
    let (_scratch, dir) = fetching_world();
    ok(&["send", s(&dir), "hello", &format!("fetch(\"{base}/page\")")]);
    // Someone with the files (the host key too) changes what a receipt says it fetched; the
    // receipt's own signature stays as it was, every checkpoint is re-signed.
    let mut entries = read_entries(&dir);
    let altered = entries
        .iter_mut()
        .find_map(|entry| match &mut entry.body {
            EntryBody::EffectReceipt(r) if r.receipt.body.effect == "http" => {
                r.receipt.body.subject = "GET http://127.0.0.1/elsewhere".into();
                Some(entry.seq)
            }
            _ => None,
        })
        .expect("an http receipt");
    let key = agentos_journal::receipts::HostKey::load_or_create(&dir.join(".agentos/host.key")).unwrap();
    forge_journal_with_key(&dir, entries, &key);
    let refused = fails(&["run", s(&dir)], 2);
    assert!(refused.contains("history was replaced"), "{refused}");

    // This host remembers what it signed and refuses the rewritten journal; another machine
    // (an auditor's, serving the copy it received) has no such memory.
    let elsewhere = tempfile::tempdir().unwrap();
    let server = Server::start_with(&[&dir], &[], &[("XDG_STATE_HOME", elsewhere.path())]);
    let (status, _) = get(&server.at("/v1/worlds/world/receipts"), None);
    assert_eq!(status, 200);
    runtime().block_on(async {
        let browser = Browser::start().await;
        browser.open(&server.at("/#/w/world/receipts")).await;
        let failing = browser
            .text_when(&format!("#receipts tr[data-seq=\"{altered}\"] td.check"), |t| {
                !t.contains("checking")
            })
            .await;
        assert!(failing.contains("✗ signature fails"), "{failing}");
        // The others still check.
        let others = browser
            .client
            .find_all(Locator::Css(&format!(
                "#receipts tr:not([data-seq=\"{altered}\"]) td.check"
            )))
            .await
            .unwrap();
        assert!(!others.is_empty());
        for check in others {
            let text = check.text().await.unwrap();
            assert!(text.contains("✓ verified"), "{text}");
        }
        browser.screenshot("receipts-tampered").await;
        browser.close().await;
    });
    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    verify_fails_with(&dir, &format!("#{altered}"));
}

#[test]
fn an_approver_signs_in_the_browser_with_their_key_file_and_the_change_applies() {
    let keys = tempfile::tempdir().unwrap();
    let with_keys = |args: &[&str]| {
        let mut command = host();
        command.env("AGENTOS_KEYS_DIR", keys.path());
        ok_with(command, args)
    };
    let ada: serde_json::Value = serde_json::from_str(&with_keys(&["keys", "new", "ada", "--json"])).unwrap();
    with_keys(&["keys", "new", "bob"]);
    let (scratch, dir) = counter_approved_by(ada["public_key"].as_str().unwrap());
    let proposed = with_timer_grant(scratch.path(), &dir);
    let out = with_keys(&[
        "propose",
        s(&dir),
        "--from",
        s(&proposed),
        "--key",
        "bob",
        "-d",
        "let the counter set timers",
        "--json",
    ]);
    let proposal = serde_json::from_str::<serde_json::Value>(&out).unwrap()["proposal"].to_string();

    let server = Server::start(&[&dir], &[]);
    runtime().block_on(async {
        let browser = Browser::start().await;
        browser.open(&server.at("/#/w/world/proposals")).await;
        browser
            .text_when(&format!("tr[data-proposal=\"{proposal}\"]"), |t| t.contains("open"))
            .await;
        browser
            .open(&server.at(&format!("/#/w/world/proposals/{proposal}")))
            .await;
        browser.text_when("#quorum", |t| t.contains("0 of 1")).await;
        // The author is named with the key that signed, not by the name alone.
        let bob_key = with_keys(&["keys", "show", "bob", "--json"]);
        let bob_key: serde_json::Value = serde_json::from_str(&bob_key).unwrap();
        let prefix: String = bob_key["public_key"].as_str().unwrap().chars().take(16).collect();
        browser
            .text_when("#author", |t| t.contains("bob") && t.contains(&prefix))
            .await;
        // world.toml before and after: the grant is an added line.
        browser
            .text_when("#manifest-diff", |t| {
                t.lines().any(|l| l.starts_with('+') && l.contains("clock"))
            })
            .await;
        // A shadow run from the page, journaled and shown.
        browser.click("#shadow").await;
        browser
            .text_when("#messages", |t| {
                t.contains("shadow run journaled") && t.contains("clean")
            })
            .await;
        // Bob's key is not an approver's: the page says so and signs nothing.
        let file = browser.client.find(Locator::Css("#key-file")).await.unwrap();
        file.send_keys(&keys.path().join("bob.key").display().to_string())
            .await
            .unwrap();
        browser
            .text_when("#key-state", |t| t.contains("is not an approver"))
            .await;
        assert_eq!(
            browser
                .client
                .find(Locator::Css("#approve"))
                .await
                .unwrap()
                .attr("disabled")
                .await
                .unwrap()
                .as_deref(),
            Some("true")
        );
        // Ada's key is.
        let file = browser.client.find(Locator::Css("#key-file")).await.unwrap();
        file.send_keys(&keys.path().join("ada.key").display().to_string())
            .await
            .unwrap();
        browser.text_when("#key-state", |t| t.contains("key: ada")).await;
        browser.screenshot("proposal").await;
        browser.click("#approve").await;
        browser.text_when("#messages", |t| t.contains("ready to apply")).await;
        browser.text_when("#quorum", |t| t.contains("1 of 1")).await;
        browser.click("#apply").await;
        browser.text_when("#messages", |t| t.contains("applied")).await;
        browser.text_when("#proposal-status", |t| t == "applied").await;
        browser.screenshot("proposal-applied").await;
        browser.open(&server.at("/#/w/world/timeline")).await;
        browser
            .text_when("#timeline tr[data-kind=manifest-applied]", |t| t.contains(&proposal))
            .await;
        browser.close().await;
    });
    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "verdict"), 1);
    assert_eq!(count_kind(&log, "shadow-report"), 1);
    assert_eq!(count_kind(&log, "manifest-applied"), 1);
    replay_and_verify(&dir);
}
