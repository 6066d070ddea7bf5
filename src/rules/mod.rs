//! Pure triage decisions: business calendars, SLA timers and team routing. No I/O, no
//! database, no clock: every function takes the instant it should judge (`now`).

pub mod calendar;
pub mod routing;
pub mod sla;
