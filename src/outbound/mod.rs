//! Outbound mail: `templates` (handlebars, embedded defaults, overridable), `compose`
//! (template → RFC 5322 message with our headers) and `worker` (the outbox, sent over SMTP
//! with lettre). Only this module speaks SMTP.

pub mod samples;
pub mod templates;
pub mod worker;
