//! What deciding a message needs besides the message and the snapshot: the
//! configuration, the templates, the clock, the acknowledgement limiter, the agents' token
//! keys, DKIM verification and the raw-message store. Intake's unit of work and the agent
//! room both take it; the pipeline owns it.

use std::num::NonZeroU32;
use std::sync::Arc;

use anyhow::{Context, Result};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::agent::authres::DkimVerifier;
use crate::agent::token::Keyring;
use crate::clock::Clock;
use crate::config::Config;
use crate::outbound::templates::Templates;
use crate::store::rawstore::RawStore;

pub struct Services {
    cfg: Arc<Config>,
    templates: Arc<Templates>,
    clock: Arc<dyn Clock>,
    ack_limiter: DefaultKeyedRateLimiter<String>,
    /// The secrets of agents' reply tokens (kept in the database, made at first start).
    keyring: Keyring,
    /// Local DKIM verification of agents' replies, when configured.
    dkim: Option<DkimVerifier>,
    /// Where raw message bytes go (the store's segment files).
    raw: Arc<RawStore>,
    /// The knowledge base's search index, for the answer bot; `None`: the bot is off
    /// (imports, tests that do not ask for it).
    kb: Option<Arc<crate::kb::index::KbIndex>>,
    /// The category classifier as last loaded, with the newest correction it includes:
    /// reloaded only when a correction was added since.
    classifier: std::sync::Mutex<Option<(i64, Arc<crate::kb::classifier::Model>)>>,
}

impl Services {
    pub fn new(
        cfg: Arc<Config>,
        templates: Arc<Templates>,
        clock: Arc<dyn Clock>,
        keyring: Keyring,
        raw: Arc<RawStore>,
    ) -> Services {
        let per_hour =
            NonZeroU32::new(cfg.autoreply.max_per_sender_per_hour).unwrap_or(NonZeroU32::MIN);
        Services {
            cfg,
            templates,
            clock,
            ack_limiter: RateLimiter::keyed(Quota::per_hour(per_hour)),
            keyring,
            dkim: None,
            raw,
            kb: None,
            classifier: std::sync::Mutex::new(None),
        }
    }

    /// A pipeline for `store`: its token keyring is loaded (or made, at first start), and
    /// DKIM is verified through the system resolver when `[security]` asks for it.
    pub async fn open(
        cfg: Arc<Config>,
        templates: Arc<Templates>,
        clock: Arc<dyn Clock>,
        store: &crate::store::Store,
    ) -> Result<Services> {
        let mut tx = store.begin_write().await?;
        let keyring = crate::store::agent::load_or_create_keyring(&mut tx)
            .await
            .context("Loading the agent token keyring")?;
        tx.commit().await?;
        let dkim = if cfg.security.verify_dkim_locally && !cfg.security.dns_servers.is_empty() {
            Some(DkimVerifier::with_servers(&cfg.security.dns_servers))
        } else if cfg.security.verify_dkim_locally {
            match DkimVerifier::from_system_conf() {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(
                        "Local DKIM verification is off: no DNS resolver ({e}); agent replies need a trusted Authentication-Results header"
                    );
                    None
                }
            }
        } else {
            None
        };
        Ok(Services::new(cfg, templates, clock, keyring, Arc::clone(store.raw())).with_dkim(dkim))
    }

    /// Replaces the DKIM verifier (tests pin keys with an offline one).
    pub fn with_dkim(mut self, dkim: Option<DkimVerifier>) -> Services {
        self.dkim = dkim;
        self
    }

    /// Gives the answer bot its search index.
    pub fn with_kb(mut self, kb: Option<Arc<crate::kb::index::KbIndex>>) -> Services {
        self.kb = kb;
        self
    }

    /// The classifier trained by `#wrong` corrections; `None` while there are none.
    pub async fn classifier(
        &self,
        conn: &mut crate::store::Conn,
    ) -> Result<Option<Arc<crate::kb::classifier::Model>>> {
        let newest = crate::store::kb::newest_correction(conn).await?;
        if newest == 0 {
            return Ok(None);
        }
        if let Ok(cache) = self.classifier.lock()
            && let Some((at, model)) = cache.as_ref()
            && *at == newest
        {
            return Ok(Some(Arc::clone(model)));
        }
        let model = Arc::new(crate::store::kb::load_model(conn).await?);
        if let Ok(mut cache) = self.classifier.lock() {
            *cache = Some((newest, Arc::clone(&model)));
        }
        Ok(Some(model))
    }

    /// The search index, when the bot may answer.
    pub fn kb(&self) -> Option<&crate::kb::index::KbIndex> {
        self.kb.as_deref()
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn dkim(&self) -> Option<&DkimVerifier> {
        self.dkim.as_ref()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Where raw message bytes go.
    pub fn raw(&self) -> &RawStore {
        &self.raw
    }

    /// The configuration, shared (for workers that keep it).
    pub fn config_arc(&self) -> Arc<Config> {
        Arc::clone(&self.cfg)
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// The templates, shared (the outbox worker composes its notices with them).
    pub fn templates_arc(&self) -> Arc<Templates> {
        Arc::clone(&self.templates)
    }

    /// The in-memory per-sender acknowledgement limiter (the database count is the other
    /// half of the cap, and survives restarts).
    pub fn ack_allowed(&self, address: &str) -> bool {
        self.ack_limiter.check_key(&address.to_string()).is_ok()
    }
}
