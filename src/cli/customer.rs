//! `postdesk customer import|show|list`: customer profiles from the command line.
//!
//! `import FILE.csv` reads a header row (required) and one customer per line: `email`
//! (required), `name`, `tier`, `company`, `plan`, `language`, `phone` (international form, normalised); any other column becomes a
//! custom attribute. Every bad line is reported with its line number and why; then nothing
//! is imported, so a fixed file can simply be imported again (`--skip-bad` imports the
//! good lines anyway). The file is written in one transaction: all or nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{term_line, term_text};
use crate::clock::{Clock, SystemClock, db_time};
use crate::store::profiles::{self, ImportRow};
use crate::store::{Store, StoreError};

#[derive(Debug, clap::Subcommand)]
pub enum CustomerCommand {
    /// Create or update customers from a CSV file with a header row.
    Import {
        /// The CSV file: a header row (email required), one customer per line.
        file: PathBuf,
        /// Import the good lines even when some are bad (the bad ones are listed).
        #[arg(long)]
        skip_bad: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one customer's profile.
    Show {
        /// The customer's address (any case), or an address they gave on a chat channel.
        email: String,
        /// Print the profile as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List customers by address.
    List {
        /// Only customers of this tier.
        #[arg(long)]
        tier: Option<String>,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Rows written per statement batch, between progress bar updates.
const CHUNK: usize = 500;
/// Files with more lines than this get a progress bar (on a terminal).
const PROGRESS_FROM: usize = 2000;

/// What reading an import file gave.
#[derive(Debug, Default, PartialEq)]
pub struct ReadCsv {
    pub rows: Vec<ImportRow>,
    /// One sentence per skipped line: `line 7: email "bob@" is not an address`.
    pub problems: Vec<String>,
}

/// Reads a customer CSV. A header without an `email` column, or no header at all, is an
/// error; a bad line is a problem, reported with its line number.
pub fn read_csv(mut input: impl std::io::Read) -> Result<ReadCsv> {
    let mut data = Vec::new();
    input.read_to_end(&mut data)?;
    // The csv crate's own line count skips blank lines, and a record's position is where
    // the reader began, before the blank lines it skipped. Count the newlines up to the
    // record's first byte instead, so the number is the line an editor shows.
    let line_at = |pos: Option<&csv::Position>| {
        pos.map_or(0, |p| {
            let start = usize::try_from(p.byte())
                .unwrap_or(usize::MAX)
                .min(data.len());
            let blank = data
                .get(start..)
                .unwrap_or_default()
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            data.get(..start + blank)
                .map_or(0, |d| d.iter().filter(|b| **b == b'\n').count())
                + 1
        })
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data.as_slice());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| anyhow::anyhow!("line 1: the header row cannot be read: {e}"))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_lowercase())
        .collect();
    if headers.iter().all(|h| h.is_empty()) {
        bail!("line 1: a header row is required (email, name, tier, company, plan, language, ...)");
    }
    if !headers.iter().any(|h| h == "email") {
        bail!("line 1: the header row has no email column");
    }
    let mut out = ReadCsv::default();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = line_at(e.position());
                out.problems
                    .push(format!("line {line}: cannot be read: {e}"));
                continue;
            }
        };
        let line = line_at(record.position());
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != headers.len() {
            out.problems.push(format!(
                "line {line}: {} fields, but the header has {}",
                record.len(),
                headers.len()
            ));
            continue;
        }
        match read_row(&headers, &record) {
            Ok(row) => out.rows.push(row),
            Err(why) => out.problems.push(format!("line {line}: {why}")),
        }
    }
    Ok(out)
}

fn read_row(headers: &[String], record: &csv::StringRecord) -> Result<ImportRow, String> {
    let mut row = ImportRow::default();
    let mut attributes = BTreeMap::new();
    for (h, value) in headers.iter().zip(record.iter()) {
        let v = (!value.is_empty()).then(|| value.to_string());
        match h.as_str() {
            "email" => {
                row.email =
                    address(value).ok_or_else(|| format!("email {value:?} is not an address"))?;
            }
            "name" => row.name = v,
            "company" => row.company = v,
            "plan" => row.plan = v,
            "tier" => {
                row.tier = match v {
                    Some(t) => Some(crate::profile::tier_name(&t).ok_or_else(|| {
                        format!("tier {t:?} is not a tier name (letters, digits, _ or -)")
                    })?),
                    None => None,
                }
            }
            "phone" => {
                row.phone = match v {
                    Some(p) => Some(crate::profile::phone_number(&p).ok_or_else(|| {
                        format!(
                            "phone {p:?} is not an international number (like +49 151 12345678)"
                        )
                    })?),
                    None => None,
                }
            }
            "language" => {
                row.language = match v {
                    Some(l) => Some(crate::profile::language_code(&l).ok_or_else(|| {
                        format!("language {l:?} is not a language code (like de or pt-BR)")
                    })?),
                    None => None,
                }
            }
            "" => {}
            other => {
                if let Some(v) = v {
                    attributes.insert(other.to_string(), v);
                }
            }
        }
    }
    row.attributes = attributes;
    Ok(row)
}

/// A plain `local@domain.tld`, lower-cased as the store keeps addresses.
fn address(value: &str) -> Option<String> {
    let a = crate::domain::address::normalize_address(value);
    let (local, domain) = a.rsplit_once('@')?;
    let ok = !local.is_empty()
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && a.chars().all(|c| c.is_ascii_graphic());
    ok.then_some(a)
}

pub async fn execute(config: &Path, cmd: &CustomerCommand) -> Result<bool> {
    let cfg = super::load_config_for_admin(config)?;
    match cmd {
        CustomerCommand::Import {
            file,
            skip_bad,
            json,
        } => {
            let f =
                std::fs::File::open(file).with_context(|| format!("Opening {}", file.display()))?;
            let read = read_csv(std::io::BufReader::new(f))
                .with_context(|| format!("Reading {}", file.display()))?;
            if !read.problems.is_empty() && !*skip_bad {
                let summary = format!(
                    "Nothing imported: {} bad line(s). Fix them and import again, or pass \
                     --skip-bad to import the {} good one(s).",
                    read.problems.len(),
                    read.rows.len()
                );
                if *json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({
                            "created": 0,
                            "updated": 0,
                            "skipped": read.problems.len(),
                            "imported": false,
                            "problems": read.problems,
                        }))?
                    );
                } else {
                    for p in &read.problems {
                        eprintln!("{}", term_line(p));
                    }
                    eprintln!("{summary}");
                }
                return Ok(false);
            }
            let store = Store::open(&cfg.database_path).await?;
            let bar = if read.rows.len() > PROGRESS_FROM
                && !json
                && std::io::IsTerminal::is_terminal(&std::io::stderr())
            {
                let bar = indicatif::ProgressBar::new(read.rows.len() as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} customers")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar
            } else {
                indicatif::ProgressBar::hidden()
            };
            let now = db_time(SystemClock.now());
            let mut tx = store.begin_write().await?;
            let mut counts = profiles::ImportCounts::default();
            for chunk in read.rows.chunks(CHUNK) {
                let c = profiles::import_customers(&mut tx, chunk, &now).await?;
                counts.created += c.created;
                counts.updated += c.updated;
                bar.inc(chunk.len() as u64);
            }
            tx.commit().await?;
            bar.finish_and_clear();
            store.close().await;
            let skipped = read.problems.len();
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "created": counts.created,
                        "updated": counts.updated,
                        "skipped": skipped,
                        "imported": true,
                        "problems": read.problems,
                    }))?
                );
            } else {
                for p in &read.problems {
                    eprintln!("{}", term_line(p));
                }
                println!(
                    "{} created, {} updated, {skipped} skipped.",
                    counts.created, counts.updated
                );
            }
            Ok(skipped == 0)
        }
        CustomerCommand::Show { email, json } => {
            let store = Store::open_existing(&cfg.database_path).await?;
            let mut conn = store.pool().acquire().await?;
            let p = match profiles::customer_profile(&mut conn, email).await {
                Ok(p) => p,
                Err(StoreError::NotFound(what)) => {
                    eprintln!("error: {} is not known", term_line(&what));
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&p)?);
                return Ok(true);
            }
            let opt = |v: &Option<String>| v.as_deref().map_or("-".to_string(), term_line);
            println!("Customer {}: {}", p.id, term_line(&p.email));
            println!("Name:          {}", opt(&p.name));
            println!("Addresses:     {}", term_line(&p.addresses.join(", ")));
            println!(
                "Language:      {}{}",
                opt(&p.language),
                p.language_source
                    .as_deref()
                    .map_or(String::new(), |s| format!(" ({s})"))
            );
            println!("Tier:          {}", term_line(&p.tier));
            println!("Company:       {}", opt(&p.company));
            println!("Plan:          {}", opt(&p.plan));
            println!("Phone:         {}", opt(&p.phone));
            for (k, v) in &p.attributes {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                println!("  {}: {}", term_line(k), term_line(&v));
            }
            println!("Tickets:       {}", p.tickets);
            println!("Complaints:    {}", p.complaints);
            println!("First contact: {}", opt(&p.first_contact));
            println!("Last contact:  {}", opt(&p.last_contact));
            println!("Channels:      {}", term_line(&p.channels.join(", ")));
            println!(
                "Satisfaction:  {}",
                p.satisfaction
                    .map_or("not rated".to_string(), |s| format!("{s:.1}"))
            );
            if p.notes.is_empty() {
                println!("No notes.");
            } else {
                println!("Notes:");
                for n in &p.notes {
                    let ticket = n.ticket_id.map_or(String::new(), |t| format!(", #{t}"));
                    println!(
                        "  {} ({}{ticket}): {}",
                        n.created_at.get(..16).unwrap_or_default(),
                        term_line(&n.agent),
                        term_text(&n.text)
                    );
                }
            }
            Ok(true)
        }
        CustomerCommand::List { tier, json } => {
            let store = Store::open_existing(&cfg.database_path).await?;
            let mut conn = store.pool().acquire().await?;
            let list = profiles::customer_list(&mut conn, tier.as_deref()).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("No customers.");
            } else {
                println!(
                    "{:>6}  {:<32}  {:<10}  {:>7}  {:<20}  NAME",
                    "ID", "EMAIL", "TIER", "TICKETS", "COMPANY"
                );
                for c in &list {
                    println!(
                        "{:>6}  {:<32}  {:<10}  {:>7}  {:<20}  {}",
                        c.id,
                        term_line(&c.email),
                        term_line(&c.tier),
                        c.tickets,
                        term_line(c.company.as_deref().unwrap_or("-")),
                        term_line(c.name.as_deref().unwrap_or("-"))
                    );
                }
            }
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_gives_known_columns_attributes_and_reasons_for_bad_lines() {
        let text = "Email,Name,Tier,Company,Language,Account Manager\n\
                    ann@customer.org,Ann,VIP,ACME,de,Zoe\n\
                    bob@,Bob,,,,\n\
                    \n\
                    cid@customer.org,Cid,gold plus,,,\n\
                    dan@customer.org,Dan\n\
                    eve@customer.org,Eve,,,english,\n\
                    Fay@Customer.ORG,,,,,\n";
        let r = read_csv(text.as_bytes()).unwrap();
        assert_eq!(
            r.problems,
            [
                "line 3: email \"bob@\" is not an address",
                "line 5: tier \"gold plus\" is not a tier name (letters, digits, _ or -)",
                "line 6: 2 fields, but the header has 6",
                "line 7: language \"english\" is not a language code (like de or pt-BR)",
            ]
        );
        assert_eq!(r.rows.len(), 2);
        let ann = &r.rows[0];
        assert_eq!(ann.email, "ann@customer.org");
        assert_eq!(ann.tier.as_deref(), Some("vip"));
        assert_eq!(ann.language.as_deref(), Some("de"));
        assert_eq!(ann.company.as_deref(), Some("ACME"));
        assert_eq!(
            ann.attributes.get("account manager").map(String::as_str),
            Some("Zoe")
        );
        assert_eq!(r.rows[1].email, "fay@customer.org");
        assert_eq!(r.rows[1].name, None, "an empty cell changes nothing");
    }

    #[test]
    fn the_header_row_is_required_and_needs_an_email_column() {
        let err = read_csv("name,tier\nAnn,vip\n".as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: the header row has no email column"
        );
        let err = read_csv("ann@customer.org,Ann\n".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("no email column"), "{err}");
        assert!(read_csv("".as_bytes()).is_err());
    }
}
