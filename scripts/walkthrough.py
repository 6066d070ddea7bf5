#!/usr/bin/env python3
"""A first conversation on the quick start's demo, step by step.

Run scripts/quickstart.sh in one terminal, then this in another:

    scripts/walkthrough.py

1. A customer, Carol, writes to support@example.com: the mail is appended to the demo
   Dovecot's INBOX (as a mail server would deliver it) and postdesk opens a ticket.
2. postdesk acknowledges it: the acknowledgement appears in demo/outbox as an .eml file.
3. Agent alice gets a notification (another .eml), with a Reply-To token address.
4. Alice replies from her "mail client" with text and `#priority high`. Her reply
   carries an Authentication-Results header of the demo's receiving server
   (authserv-id demo.postdesk.invalid, which demo/postdesk.toml trusts), as your own
   receiving server would add after checking DKIM/DMARC. Carol gets the answer.
5. `postdesk ticket show` tells the story.

Only the Python standard library is used. Knobs: DEMO_DIR (default ./demo),
DEMO_IMAP_PORT (10143), POSTDESK_BIN (default target/release/postdesk), and
WALKTHROUGH_TIMEOUT (seconds to wait for each step, default 30).
"""

import email
import email.policy
import imaplib
import os
import subprocess
import sys
import time
from email.utils import formatdate, make_msgid

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.environ.get("DEMO_DIR", os.path.join(TOP, "demo"))
IMAP_PORT = int(os.environ.get("DEMO_IMAP_PORT", "10143"))
BIN = os.environ.get("POSTDESK_BIN", os.path.join(TOP, "target", "release", "postdesk"))
TIMEOUT = float(os.environ.get("WALKTHROUGH_TIMEOUT", "30"))
OUTBOX = os.path.join(DEMO, "outbox")
CONFIG = os.path.join(DEMO, "postdesk.toml")
CUSTOMER = "carol@customer.example"
AGENT = "alice@example.com"


def fail(why):
    print("walkthrough: error: " + why, file=sys.stderr)
    print(
        "walkthrough: is scripts/quickstart.sh running? Its servers log to %s/smtp.log.out "
        "and %s/mail/dovecot.log" % (DEMO, DEMO),
        file=sys.stderr,
    )
    sys.exit(1)


def step(n, text):
    print("\n=== %d. %s" % (n, text))


def append(raw):
    try:
        imap = imaplib.IMAP4("127.0.0.1", IMAP_PORT)
        imap.login("support", "secret")
        imap.append("INBOX", None, imaplib.Time2Internaldate(time.time()), raw)
        imap.logout()
    except (OSError, imaplib.IMAP4.error) as e:
        fail("cannot deliver to the demo Dovecot on 127.0.0.1:%d: %s" % (IMAP_PORT, e))


def outbox_files():
    if not os.path.isdir(OUTBOX):
        fail("%s does not exist" % OUTBOX)
    return sorted(n for n in os.listdir(OUTBOX) if n.endswith(".eml"))


def wait_for_mail(seen, to, what, contains=None):
    """The first new .eml in the outbox addressed to `to` (and holding `contains`)."""
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        for name in outbox_files():
            if name in seen:
                continue
            with open(os.path.join(OUTBOX, name), "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            rcpts = [a.addr_spec.lower() for h in ("To", "Cc") for a in (msg[h].addresses if msg[h] else ())]
            body = msg.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            if to in rcpts and (contains is None or contains in text):
                seen.add(name)
                print("  %s -> demo/outbox/%s" % (what, name))
                print("  Subject: %s" % msg["Subject"])
                for line in text.strip().splitlines()[:8]:
                    print("  | " + line)
                return msg, text
        time.sleep(0.3)
    fail("no %s for %s arrived in %s within %.0f s" % (what, to, OUTBOX, TIMEOUT))


def main():
    if not os.path.isfile(CONFIG):
        fail("%s does not exist; run scripts/quickstart.sh first" % CONFIG)
    seen = set(outbox_files())
    tag = make_msgid(domain="customer.example")

    step(1, "Carol writes to support@example.com; postdesk opens a ticket")
    customer_mail = (
        "From: Carol Customer <%s>\r\nTo: support@example.com\r\n"
        "Subject: My order 1234 has not arrived\r\nMessage-ID: %s\r\nDate: %s\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Hello, I ordered a lamp two weeks ago (order 1234) and it has not arrived.\r\n"
        "Can you tell me where it is?\r\n\r\nCarol\r\n"
    ) % (CUSTOMER, tag, formatdate())
    append(customer_mail.encode())
    print("  delivered to the INBOX of the demo Dovecot")

    step(2, "postdesk acknowledges it")
    ack, _ = wait_for_mail(seen, CUSTOMER, "acknowledgement")
    ticket = ack["X-Postdesk-Ticket"]
    print("  ticket #%s" % ticket)

    step(3, "agent alice is notified")
    note, _ = wait_for_mail(seen, AGENT, "notification")
    reply_to = note["Reply-To"].addresses[0].addr_spec
    print("  Reply-To: %s (a token address: replying to it acts on ticket #%s)" % (reply_to, ticket))

    step(4, "alice replies with text and #priority high; Carol gets the answer")
    parent = note["Message-ID"]
    reply = (
        "Authentication-Results: demo.postdesk.invalid; dkim=pass header.d=example.com; "
        "dmarc=pass header.from=example.com\r\n"
        "From: Alice <%s>\r\nTo: %s\r\nSubject: Re: %s\r\nMessage-ID: %s\r\n"
        "In-Reply-To: %s\r\nReferences: %s\r\nDate: %s\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "#priority high\r\n\r\nHi Carol,\r\n\r\nyour lamp left our warehouse this morning; "
        "the tracking number follows in a separate mail.\r\n\r\nBest,\r\nAlice\r\n"
    ) % (AGENT, reply_to, note["Subject"], make_msgid(domain="example.com"), parent, parent, formatdate())
    print("  (the Authentication-Results line is what your receiving server adds; see README)")
    append(reply.encode())
    wait_for_mail(seen, CUSTOMER, "answer to Carol", contains="left our warehouse")
    wait_for_mail(seen, AGENT, "receipt to alice", contains="priority")

    step(5, "postdesk ticket show %s" % ticket)
    out = subprocess.run(
        [BIN, "--config", CONFIG, "ticket", "show", ticket],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        fail("ticket show failed: %s" % out.stderr.strip())
    print(out.stdout)
    print("walkthrough: done. Every mail postdesk sent is an .eml file in %s." % OUTBOX)


if __name__ == "__main__":
    main()
