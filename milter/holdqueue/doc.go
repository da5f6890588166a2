// Package holdqueue is Postfix's hold queue seen as chainmail's quarantine.
//
// chainmail quarantines a message with the milter quarantine action
// (SMFIR_QUARANTINE); Postfix implements it by accepting the message and
// putting it in its hold queue, where it stays until an administrator
// releases or deletes it. A Queue lists those messages, reads one, releases
// one for delivery or deletes one, by running Postfix's own commands:
//
//	List     postqueue [-c DIR] -j            (the JSON lines, queue_name "hold" kept)
//	Message  postcat [-c DIR] -bh -q ID       (header and body, no envelope records)
//	Release  postsuper [-c DIR] -H ID hold    (to the deferred queue), then
//	         postqueue [-c DIR] -i ID         (deliver it now, not at the next queue run)
//	Delete   postsuper [-c DIR] -d ID hold    (only from the hold queue)
//
// Release and Delete name the hold queue explicitly, so a queue id of a
// message that is not quarantined (incoming, active, deferred mail) is
// never touched: the result is ErrNotFound. postsuper exits 0 whether or
// not it found the message; the count it reports on its standard error
// ("Deleted: 1 message", "Released from hold: 0 messages") decides.
//
// A released message keeps its arrival time. postsuper(1) warns that mail
// kept on hold for a significant fraction of maximal_queue_lifetime or
// bounce_queue_lifetime (5 days by default), or longer, should be released
// with "postsuper -r" instead: released with -H, it may be returned to its
// sender as expired at the first failed delivery attempt. Quarantine that
// is meant to last longer needs those lifetimes raised, or an
// administrator's postsuper -r.
//
// Message uses postcat -q, which looks in every queue: a message released
// a moment ago can still be read until it is delivered. ErrNotFound from
// Message means it is in no queue at all.
//
// Queue ids are checked before they reach a command line (ValidID): a short
// Postfix id is upper-case hexadecimal (five digits of microseconds, then
// the inode number), a long one (enable_long_queue_ids = yes) is at least
// ten characters of the 52-letter alphabet 0-9 and the consonants B-Z b-z
// (the arrival time), a 'z' and the inode number in the same alphabet
// without 'z'. Anything else is ErrBadID, and no command runs.
//
// Every command runs under a time limit (the caller's context, and at most
// Timeout), and its standard error is part of any error returned. Message
// reads at most MaxMessage bytes; a larger message is ErrTooLarge rather
// than a silently truncated copy. The message comes back as Postfix queued
// it: header (with the Received field Postfix added on top) and body,
// lines ending in LF, since Postfix stores lines without their CR.
//
// # Privileges
//
// The commands run as the user chainmail runs as, unless the configuration
// names a wrapper: each of Config.Postqueue, Postsuper and Postcat is a
// command line split on spaces, so "sudo -n /usr/sbin/postsuper" works and
// the queue arguments are appended after it. What each needs:
//
//   - postqueue -j and -i: nobody special on a default install (postqueue is
//     set-gid postdrop; authorized_mailq_users and authorized_flush_users
//     default to static:anyone). With a non-default ConfigDir, a non-root
//     caller is only allowed when that directory is listed in
//     alternate_config_directories of the default main.cf.
//   - postcat -q: read access to the queue files, which belong to the
//     mail_owner (user postfix) in directories of mode 0700: root or user
//     postfix.
//   - postsuper: root, nothing else (it refuses any other real user id,
//     including postfix, and refuses to run set-uid; sudo is fine).
//
// A service that runs as its own user (say chainmail) can be given exactly
// these operations with sudo (1.9.10 or later for the regular expressions),
// for the default configuration directory:
//
//	chainmail ALL=(root) NOPASSWD: /usr/sbin/postsuper ^-[dH] ([0-9A-F]+|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]+) hold$
//	chainmail ALL=(postfix) NOPASSWD: /usr/sbin/postcat ^-bh -q ([0-9A-F]+|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]+)$
//
// with Config{Postsuper: "sudo -n /usr/sbin/postsuper", Postcat: "sudo -n
// -u postfix /usr/sbin/postcat"}. The patterns leave out "ALL", which
// postsuper takes as every message. sudo cannot work for a service with
// NoNewPrivileges (the packaged chainmail.service): use the helper.
//
// # Privilege separation
//
// The way Postfix itself is built: a small process runs as root and does
// the privileged part, the service talks to it over a local socket. Server
// is that process's part (chainmail holdqueue serve; the package's
// chainmail-holdqueue.socket and .service run it as root); a Queue with
// Config.Socket set is the client, with the same methods and errors. The
// helper's own Queue (its Postfix configuration directory and commands)
// is its setting alone: the client's other Config fields are not sent.
//
// The protocol is one request per connection. The client sends one line
// of at most MaxRequest bytes (LF included):
//
//	list
//	message ID
//	release ID
//	delete ID
//
// with a single space and nothing else (ParseRequest; the helper checks
// ID with ValidID whatever the client did). The helper answers one line
// of JSON, a Reply: {"held":[…]} for list, {"size":N} followed by exactly
// N bytes of the message for message, {} for release and delete, or
// {"error":CODE,"message":TEXT}, where CODE maps back to the package's
// errors (not_found ErrNotFound, bad_id ErrBadID, too_large ErrTooLarge,
// not_flushed ErrNotFlushed, bad_request ErrBadRequest, denied ErrDenied,
// busy ErrBusy; failed is any other failure, its text the command's
// error). The client's own MaxMessage bound holds too.
//
// The helper admits a peer by SO_PEERCRED: root, or a process whose
// primary group is the configured group, or a user listed in that group
// (AllowGroup); the socket's owner, group and mode are the first barrier.
// It serves at most MaxConns connections at once (more are answered busy),
// gives a client ReadTimeout to send its request and WriteTimeout to read
// the answer, and logs every request with the peer's uid and pid.
package holdqueue
