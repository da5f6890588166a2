// Package mtatest runs real MTAs on loopback in front of a milter, for
// end-to-end tests of chainmail (or of any milter) through the genuine
// SMTP → MTA → milter → MTA → SMTP path.
//
// Three pieces work together:
//
//   - An SMTP sink written in Go on 127.0.0.1:0. Every MTA instance relays
//     everything it accepts there, and Delivered returns what arrived
//     (envelope and raw message), so a test sees exactly what the milter let
//     through and what it changed.
//   - The MTA instance itself (StartPostfix, StartSendmail), private to the
//     test: its own configuration, queue and log in a t.TempDir, its SMTP
//     server on a free 127.0.0.1 port, stopped in t.Cleanup. Several
//     instances can run in one test binary, also in parallel.
//   - SMTPClient, a line-based client that returns every reply (code,
//     enhanced code, text), speaks XCLIENT and carries several messages over
//     one session.
//
// # Postfix
//
// StartPostfix writes main.cf and a minimal master.cf (no chroot, smtpd on
// 127.0.0.1:PORT, a postlog service) into DIR/conf, with queue_directory
// DIR/spool, data_directory DIR/data and maillog_file DIR/maillog (written by
// postlogd, so no syslog daemon is needed), and runs `postfix -c DIR/conf
// start`. Nothing in /etc/postfix is changed (postfix-script only reads the
// default main.cf and postfix-files there): postfix(1) and the daemons accept
// a non-default -c as root, and the harness never calls the set-gid tools
// (postqueue, postdrop) that would demand alternate_config_directories;
// HoldQueue reads the queue directory instead. The configuration files are
// backdated by a minute, because Postfix re-reads a file modified within the
// last second until it is older, which would add about two seconds to every
// start.
//
// The instance relays all mail (relay_domains = static:ALL) through
// transport_maps to smtp:[127.0.0.1]:SINKPORT with DNS disabled,
// smtpd_peername_lookup = no (the client name is "unknown" unless XCLIENT
// sets NAME) and TLS off; smtpd_authorized_xclient_hosts = 127.0.0.0/8 lets
// tests present any client address (192.0.2.x, 203.0.113.x) with XCLIENT.
// The milter settings are smtpd_milters = PostfixOptions.Milter,
// milter_protocol = 6, milter_default_action, a 2 s milter_connect_timeout and
// milter_mail_macros including {client_addr} {client_name} {daemon_name} (see
// DESIGN.md, "Milter facts"); queue ids are long ones. When unshare(1) works,
// postfix is started in a private mount namespace whose /etc/resolv.conf
// points at 127.0.0.1, so even a restriction added through
// PostfixOptions.Main that wants DNS cannot send a query off the machine.
// Start-up takes a few hundred milliseconds.
//
// # sendmail
//
// Debian's sendmail-bin conflicts with postfix, so it is not installed:
// .ci/install-sendmail DIR unpacks sendmail-bin, sendmail-cf, m4 and two
// libraries into DIR with `apt-get download` and `dpkg -x` (dropping the
// set-gid bit, which would make the loader ignore LD_LIBRARY_PATH), and
// StartSendmail uses DIR (SendmailOptions.Root or $CHAINMAIL_SENDMAIL_ROOT).
// It builds sendmail.cf with m4 from a generated .mc: INPUT_MAIL_FILTER with
// F=T, SMART_HOST esmtp:[127.0.0.1] on the sink's port, promiscuous relay, no
// DNS canonification, private queue, pid and status files below /tmp (with
// DontBlameSendmail=TrustStickyBit), load-average limits out of the way, and
// the same MAIL macros as the Postfix instances plus i at end of message. It
// runs `sendmail -bD` as PID 1 of fresh PID, mount and UTS namespaces: the
// host name is mx.chainmail.test (sendmail stalls for a minute per lookup
// when its name has no domain), /etc/hosts, /etc/nsswitch.conf and
// /etc/resolv.conf are private files, and /dev is a private copy whose
// /dev/log is a socket the harness reads, which is what Sendmail.Log returns.
// Stopping kills the namespace, and every process in it. sendmail has no
// XCLIENT: its milter always sees the client as 127.0.0.1.
//
// # Requirements
//
// Root, Debian's postfix package, unshare and mount from util-linux, and for
// sendmail the unpacked root. When something is missing the test is skipped
// with a loud "!!! SKIPPING" message, or fails when the CI environment
// variable is set.
package mtatest
