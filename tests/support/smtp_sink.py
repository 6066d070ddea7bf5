#!/usr/bin/env python3
"""A real SMTP server for postdesk's integration tests.

Usage: smtp_sink.py PORT CAPTURE_DIR [--exit-on-stdin-eof] [--eml]
                    [--starttls CERT KEY | --tls CERT KEY]

Listens on 127.0.0.1:PORT (0 picks a free port) with aiosmtpd's SMTP protocol,
prints "READY <port>" on stdout once it accepts connections, and writes every
message it received with DATA to CAPTURE_DIR/NNNNNN.json, including those it
then rejected because of an injected fault:

    {"mail_from": "...", "rcpt_tos": ["..."], "helo": "...",
     "auth": null | {"login": "...", "password": "..."},
     "tls": false | true, "tls_version": null | "TLSv1.3",
     "reply_code": 250, "data_b64": "..."}

"tls" says whether the session that carried the message was encrypted when
DATA came, read from the connection itself (its transport's ssl_object), so it
is true after STARTTLS and on an implicit-TLS port, and false otherwise.

TLS (the certificate and key are PEM files; CERT may hold the whole chain):
  --starttls CERT KEY  plaintext port that offers STARTTLS (RFC 3207) and
                       requires it: every command but EHLO, HELO, NOOP, QUIT
                       and STARTTLS is refused with 530 before the upgrade.
  --tls CERT KEY       implicit TLS from the first byte (RFC 8314, "SMTPS").
Without either, the port is plaintext only and does not offer STARTTLS.

With --eml (the quick start's demo outbox) each message is written as
CAPTURE_DIR/NNNNNN.eml instead: the raw mail exactly as received, which any
mail client or `less` opens.

Files are written to a dot-prefixed temporary name and renamed, so a reader
never sees a half-written message. NNNNNN counts up from 000001 in arrival
order. reply_code 250 means accepted.

Fault injection (for SMTP retry tests, RFC 5321 section 4.2): every file
CAPTURE_DIR/fault-NNNNNN holds one line "STAGE CODE", where STAGE is RCPT or
DATA. The fault file with the lowest name is consumed (deleted) by the next
command of that stage, which is answered with CODE instead of success. A
fault that is not for the current stage waits its turn. Writers create the
file under a dot-prefixed name and rename it, so it is never read half-written.

AUTH PLAIN and LOGIN are offered without TLS and accept any credentials; the
last credentials of the session are recorded in "auth".

With --exit-on-stdin-eof the process exits when its stdin reaches end of
file, so a test process that dies without cleaning up (its end of the pipe
closes) does not leave the sink running.
"""

import asyncio
import base64
import json
import logging
import os
import ssl
import sys
import threading

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# Texts for injected failures, with RFC 3463 enhanced status codes.
FAULT_TEXT = {
    "4": "4.3.0 Injected transient failure (postdesk test sink)",
    "5": "5.7.1 Injected permanent failure (postdesk test sink)",
}


class DropLoginDataWarning(logging.Filter):
    """aiosmtpd warns about its own use of a deprecated attribute on every AUTH."""

    def filter(self, record):
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(DropLoginDataWarning())


def as_text(value):
    """aiosmtpd hands out bytes for AUTH data; tests want text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


class CaptureHandler:
    """aiosmtpd handler: consumes faults, writes accepted messages to files."""

    def __init__(self, capture_dir, eml=False):
        self.eml = eml
        self.capture_dir = capture_dir
        # Numbering goes on after what an earlier run left (a demo outbox is kept).
        taken = [
            int(name[:6])
            for name in os.listdir(capture_dir)
            if len(name) > 6 and name[:6].isdigit() and name[6] == "."
        ]
        self.count = max(taken, default=0)

    def take_fault(self, stage):
        """Returns the reply for the next fault if it is for `stage`, else None."""
        names = sorted(
            name for name in os.listdir(self.capture_dir) if name.startswith("fault-")
        )
        if not names:
            return None
        path = os.path.join(self.capture_dir, names[0])
        with open(path, encoding="ascii") as fault_file:
            fields = fault_file.read().split()
        if len(fields) != 2 or not fields[1].isdigit() or len(fields[1]) != 3:
            os.remove(path)
            return "451 4.3.0 Malformed fault file %s (postdesk test sink)" % names[0]
        fault_stage, code = fields
        if fault_stage.upper() != stage:
            return None
        os.remove(path)
        text = FAULT_TEXT.get(code[0], "Injected failure (postdesk test sink)")
        return "%s %s" % (code, text)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        fault = self.take_fault("RCPT")
        if fault is not None:
            return fault
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        fault = self.take_fault("DATA")
        reply = fault if fault is not None else "250 2.0.0 Message accepted"
        auth = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            auth = {
                "login": as_text(session.auth_data.login),
                "password": as_text(session.auth_data.password),
            }
        # After STARTTLS aiosmtpd swaps server.transport for the TLS one; on an
        # implicit-TLS port it is TLS from the start. Either way it knows its ssl_object.
        ssl_object = None
        if server.transport is not None:
            ssl_object = server.transport.get_extra_info("ssl_object")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "helo": session.host_name,
            "auth": auth,
            "tls": ssl_object is not None,
            "tls_version": ssl_object.version() if ssl_object is not None else None,
            "reply_code": int(reply[:3]),
            "data_b64": base64.b64encode(envelope.original_content).decode("ascii"),
        }
        self.count += 1
        name = ("%06d.eml" if self.eml else "%06d.json") % self.count
        tmp_path = os.path.join(self.capture_dir, "." + name + ".tmp")
        if self.eml:
            with open(tmp_path, "wb") as out:
                out.write(envelope.original_content)
                out.flush()
                os.fsync(out.fileno())
        else:
            with open(tmp_path, "w", encoding="utf-8") as out:
                json.dump(record, out)
                out.flush()
                os.fsync(out.fileno())
        os.rename(tmp_path, os.path.join(self.capture_dir, name))
        return reply


def accept_any(server, session, envelope, mechanism, auth_data):
    """Authenticator that accepts every login and keeps it for the record."""
    return AuthResult(success=True, auth_data=auth_data)


def exit_on_stdin_eof():
    """Ends the process once the parent closes our stdin (or dies)."""
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


def server_context(cert, key):
    """A server-side TLS context that asks for no client certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def serve(port, capture_dir, mode, context, eml=False):
    """mode: "plain", "starttls" or "tls"; context: the server TLS context or None."""
    loop = asyncio.get_running_loop()
    handler = CaptureHandler(capture_dir, eml)
    starttls = mode == "starttls"

    def protocol():
        return SMTP(
            handler,
            hostname="sink.postdesk.test",
            enable_SMTPUTF8=True,
            auth_require_tls=False,
            authenticator=accept_any,
            tls_context=context if starttls else None,
            require_starttls=starttls,
            loop=loop,
        )

    server = await loop.create_server(
        protocol,
        host="127.0.0.1",
        port=port,
        ssl=context if mode == "tls" else None,
    )
    bound_port = server.sockets[0].getsockname()[1]
    print("READY %d" % bound_port, flush=True)
    async with server:
        await server.serve_forever()


USAGE = (
    "usage: smtp_sink.py PORT CAPTURE_DIR [--exit-on-stdin-eof] [--eml] "
    "[--starttls CERT KEY | --tls CERT KEY]"
)


def main():
    args = sys.argv[1:]
    watch_stdin = "--exit-on-stdin-eof" in args
    eml = "--eml" in args
    args = [arg for arg in args if arg not in ("--exit-on-stdin-eof", "--eml")]
    mode, context = "plain", None
    for flag in ("--starttls", "--tls"):
        if flag not in args:
            continue
        at = args.index(flag)
        if mode != "plain" or len(args) < at + 3:
            print(USAGE, file=sys.stderr)
            sys.exit(2)
        cert, key = args[at + 1], args[at + 2]
        del args[at : at + 3]
        mode = flag[2:]
        context = server_context(cert, key)
    if len(args) != 2 or not args[0].isdigit():
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    port = int(args[0])
    capture_dir = args[1]
    if not os.path.isdir(capture_dir):
        print("smtp_sink: capture dir %s does not exist" % capture_dir, file=sys.stderr)
        sys.exit(2)
    if watch_stdin:
        threading.Thread(target=exit_on_stdin_eof, daemon=True).start()
    asyncio.run(serve(port, capture_dir, mode, context, eml))


if __name__ == "__main__":
    main()
