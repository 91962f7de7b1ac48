//! The Scheduler-Location keeper over the real binary (issue 21), against the fake gateway's
//! GraphQL and the fake bundler: a missing record is published (signed by the SU's wallet,
//! with the record's tags) and not again, one about to expire is renewed, a fresh one is left
//! alone, one that points elsewhere is replaced, and a restart while the publication waits
//! for a failing bundler publishes nothing twice and delivers it once the bundler recovers.

mod support;

use ao_su::ans104::{DataItem, b64, verify::verify};
use ao_su::wallet::{SigningSalt, Wallet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::fakes::{FakeBundler, FakeGateway, Mode, OwnedTx};
use support::{SuCommand, TestSu};

const URL: &str = "https://su-location.example";
const TTL_MS: u64 = 86_400_000;
const DEADLINE: Duration = Duration::from_secs(60);

/// A data dir holding the SU's wallet (so the test knows its address before it starts), the
/// fake gateway and the fake bundler.
struct Setup {
    dir: tempfile::TempDir,
    wallet: Wallet,
    gateway: FakeGateway,
    bundler: FakeBundler,
}

impl Setup {
    fn new(mode: Mode) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let jwk = Wallet::generate().unwrap();
        Wallet::write_new(&dir.path().join("wallet.json"), &jwk).unwrap();
        Self {
            wallet: Wallet::from_jwk(&jwk, SigningSalt::Digest).unwrap(),
            dir,
            gateway: FakeGateway::start(1_000),
            bundler: FakeBundler::start(mode),
        }
    }

    /// `su serve` with the keeper checking every second.
    fn start(&self) -> TestSu {
        SuCommand::new(self.dir.path())
            .env("SU_LOG_FORMAT", "text")
            .env("SU_URL", URL)
            .env("GATEWAY_URL", self.gateway.url())
            .env("UPLOAD_NODE_URL", self.bundler.url())
            .env("SU_LOCATION_CHECK_SECS", "1")
            .serve()
    }

    /// A record signed by the SU's wallet, on the gateway in a block `age` old (or unmined).
    fn add_record(&self, url: &str, ttl_ms: u64, age: Option<Duration>) -> String {
        let tags = ao_su::location::record::tags(url, ttl_ms);
        let (bytes, id) = self
            .wallet
            .sign(&self.wallet.draft(tags, Vec::new()))
            .unwrap();
        let block = age.map(|age| (900, (now() - age).as_secs()));
        self.gateway.add_owned(OwnedTx::of_item(&bytes, block));
        b64::encode(&id)
    }

    /// Every Scheduler-Location record the bundler accepted, in arrival order.
    fn published(&self) -> Vec<Vec<u8>> {
        self.bundler
            .received_items()
            .into_iter()
            .filter(|bytes| tag(bytes, "Type").as_deref() == Some("Scheduler-Location"))
            .collect()
    }

    /// Waits until the keeper has looked the record up `n` more times.
    fn wait_for_checks(&self, n: usize) {
        let target = self.gateway.owner_queries() + n;
        poll("the keeper's next checks", || {
            self.gateway.owner_queries() >= target
        });
    }

    /// Waits for the first publication and checks it; returns its bytes.
    fn wait_for_publication(&self) -> Vec<u8> {
        poll("a published record", || !self.published().is_empty());
        let bytes = self.published().remove(0);
        assert_is_our_record(&bytes, &self.wallet);
        bytes
    }
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

fn poll(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tag(bytes: &[u8], name: &str) -> Option<String> {
    let item = DataItem::parse(bytes).ok()?;
    item.tags
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.value.to_string())
}

fn id_of(bytes: &[u8]) -> String {
    b64::encode(&DataItem::parse(bytes).unwrap().id())
}

/// A record with exactly the announce tags for `URL` and the default TTL, validly signed by
/// the SU's wallet.
fn assert_is_our_record(bytes: &[u8], wallet: &Wallet) {
    let item = DataItem::parse(bytes).unwrap();
    assert_eq!(verify(&item), Ok(()));
    assert_eq!(
        item.owner_address(),
        wallet.address(),
        "signed by the SU's wallet"
    );
    let tags: Vec<(String, String)> = item
        .tags
        .iter()
        .map(|t| (t.name.to_string(), t.value.to_string()))
        .collect();
    assert_eq!(tags, ao_su::location::record::tags(URL, TTL_MS));
    assert!(item.data.is_empty());
}

/// The value of a metric line with exactly these labels (`name{labels} value`).
fn metric(su: &TestSu, series: &str) -> Option<f64> {
    let (_, body) = su.get("/metrics");
    body.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.split_whitespace().last()?.parse().ok())
}

fn state_is(su: &TestSu, state: &str) -> bool {
    metric(su, &format!("su_location_state{{state=\"{state}\"}}")) == Some(1.0)
}

fn logged(su: &TestSu, text: &str) -> Vec<String> {
    su.log()
        .into_iter()
        .filter(|line| line.contains(text))
        .collect()
}

/// The ids the SU logged as queued.
fn queued_ids(su: &TestSu) -> Vec<String> {
    logged(su, "Scheduler-Location record queued for upload")
        .iter()
        .filter_map(|line| {
            line.split("id=")
                .nth(1)?
                .split_whitespace()
                .next()
                .map(String::from)
        })
        .collect()
}

#[test]
fn a_missing_record_is_published_once() {
    let setup = Setup::new(Mode::Ok);
    let su = setup.start();
    let record = setup.wait_for_publication();
    assert_eq!(queued_ids(&su), [id_of(&record)]);
    assert!(!logged(&su, "state=missing").is_empty(), "{:?}", su.log());
    // The gateway does not show it yet: the delivered record counts, nothing is published
    // again, and the state becomes current.
    poll("state current", || state_is(&su, "current"));
    setup.wait_for_checks(3);
    assert_eq!(setup.published().len(), 1);
    // Once the gateway shows it in a block, it stays current and alone.
    setup
        .gateway
        .add_owned(OwnedTx::of_item(&record, Some((1_001, now().as_secs()))));
    setup.wait_for_checks(3);
    assert_eq!(setup.published().len(), 1);
    assert!(state_is(&su, "current"));
    assert_eq!(metric(&su, "su_location_publications_total"), Some(1.0));
    let expires = metric(&su, "su_location_expires_at_seconds").unwrap();
    let expected = (now().as_millis() as u64 + TTL_MS) as f64 / 1000.0;
    assert!(
        (expected - expires).abs() < 120.0,
        "expires at {expires}, expected {expected}"
    );
}

#[test]
fn a_record_about_to_expire_is_renewed() {
    let setup = Setup::new(Mode::Ok);
    // 80% of the TTL has passed since its block: less than a quarter remains.
    let old = setup.add_record(URL, TTL_MS, Some(Duration::from_millis(TTL_MS * 4 / 5)));
    let su = setup.start();
    let renewed = setup.wait_for_publication();
    assert_ne!(id_of(&renewed), old);
    assert!(!logged(&su, "state=expiring").is_empty(), "{:?}", su.log());
    poll("state current", || state_is(&su, "current"));
    setup.wait_for_checks(3);
    assert_eq!(setup.published().len(), 1);
}

#[test]
fn an_expired_record_is_replaced() {
    let setup = Setup::new(Mode::Ok);
    setup.add_record(URL, 60_000, Some(Duration::from_secs(61)));
    let su = setup.start();
    setup.wait_for_publication();
    assert!(!logged(&su, "state=expired").is_empty(), "{:?}", su.log());
}

#[test]
fn a_fresh_record_is_left_alone() {
    let setup = Setup::new(Mode::Ok);
    // A quarter of the TTL, and a minute more, remains; another record of the wallet with other
    // tags is not a location record.
    let age = Duration::from_millis(TTL_MS * 3 / 4) - Duration::from_secs(60);
    let fresh = setup.add_record(URL, TTL_MS, Some(age));
    let (message, _) = setup
        .wallet
        .sign(&setup.wallet.draft(
            vec![
                ("Data-Protocol".into(), "ao".into()),
                ("Type".into(), "Message".into()),
            ],
            Vec::new(),
        ))
        .unwrap();
    setup.gateway.add_owned(OwnedTx::of_item(&message, None));
    let su = setup.start();
    setup.wait_for_checks(3);
    assert!(state_is(&su, "current"));
    assert_eq!(setup.bundler.attempts(), 0);
    assert!(setup.published().is_empty());
    assert_eq!(
        metric(&su, "su_location_publications_total").unwrap_or(0.0),
        0.0
    );
    let line = logged(&su, "state=current");
    assert!(
        line.iter().any(|line| line.contains(&fresh)),
        "{:?}",
        su.log()
    );
}

#[test]
fn a_record_pointing_elsewhere_is_replaced() {
    let setup = Setup::new(Mode::Ok);
    setup.add_record(
        "https://another-su.example",
        TTL_MS,
        Some(Duration::from_secs(60)),
    );
    let su = setup.start();
    setup.wait_for_publication();
    assert!(!logged(&su, "state=elsewhere").is_empty(), "{:?}", su.log());
    poll("state current", || state_is(&su, "current"));
    setup.wait_for_checks(3);
    assert_eq!(setup.published().len(), 1);
}

#[test]
fn a_restart_while_pending_publishes_nothing_twice() {
    let setup = Setup::new(Mode::Fail);
    let mut su = setup.start();
    poll("a failed upload of the record", || {
        setup.bundler.attempts() >= 1
    });
    poll("state pending", || state_is(&su, "pending"));
    let queued = queued_ids(&su);
    assert_eq!(queued.len(), 1, "{:?}", su.log());
    su.kill();

    let su = setup.start();
    setup.wait_for_checks(3);
    assert!(state_is(&su, "pending"));
    assert!(
        queued_ids(&su).is_empty(),
        "published again after the restart: {:?}",
        su.log()
    );
    assert!(setup.published().is_empty());

    setup.bundler.set_mode(Mode::Ok);
    let record = setup.wait_for_publication();
    assert_eq!(id_of(&record), queued[0]);
    poll("state current", || state_is(&su, "current"));
    setup.wait_for_checks(3);
    assert_eq!(setup.published().len(), 1);
    assert!(queued_ids(&su).is_empty());
}
