package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// manCommand is one subcommand in the manual page: its synopsis, what it
// does, and its flags as its own -h prints them.
type manCommand struct {
	name, synopsis, text string
	help                 func(stderr io.Writer) // runs the command with -h
}

var manCommands = []manCommand{
	{"serve", "chainmail serve [-c FILE] [--listen ADDR]",
		"Run the milter daemon. It loads the configuration (FILE laid over the embedded default), opens the milter socket and, when metrics.listen is set, the HTTP listener for /metrics, /healthz and the feedback endpoint. SIGHUP reloads the configuration (a bad one is refused and the running one kept) and reopens the log files; SIGTERM or SIGINT lets messages in progress finish, then stops. Under systemd (Type=notify) it reports READY=1, RELOADING=1 and STOPPING=1 over $NOTIFY_SOCKET.",
		func(w io.Writer) { serve([]string{"-h"}, w) }},
	{"replay", "chainmail replay [flags] PATH...",
		"Run the milter stages on .eml files, mbox files or Maildir folders, offline, and print the verdict of each message; with --milter, send them to a running milter instead.",
		func(w io.Writer) { replay([]string{"-h"}, io.Discard, w) }},
	{"learn", "chainmail learn --spam|--ham [-c FILE] PATH...",
		"Train the content classifier and the sender reputation with messages reported as spam or as wanted mail. When a running chainmail holds the state file, the reports go to its feedback endpoint.",
		func(w io.Writer) { learn([]string{"-h"}, io.Discard, w) }},
	{"config check", "chainmail config check [-c FILE]",
		"Validate the configuration, build every check without opening the state store, and print the effective settings. Exit status 2 when it is not valid.",
		func(w io.Writer) { configCheck([]string{"-h"}, io.Discard, w) }},
	{"config default", "chainmail config default",
		"Print the embedded default configuration with its comments, the starting point of a configuration file.", nil},
	{"holdqueue serve", "chainmail holdqueue serve [--socket PATH] [--group NAME] [--config-dir DIR]",
		"Run the hold queue helper, as root: it answers serve's console (console.postfix.socket) on a unix socket, listing, reading, releasing and deleting messages in Postfix's hold queue with postqueue, postcat and postsuper, which need root. A request names an operation (list, message, release, delete) and a queue id, nothing else; the helper checks the id, and accepts only root and the members of its group (SO_PEERCRED). Under systemd (chainmail-holdqueue.socket) it takes the socket systemd passes; otherwise it creates --socket.",
		func(w io.Writer) { holdQueueCmd([]string{"serve", "-h"}, w) }},
	{"version", "chainmail version", "Print the version.", nil},
}

// manFlag is one flag as flag.PrintDefaults prints it.
type manFlag struct{ name, text string }

// parseFlagHelp reads flag.PrintDefaults output: "  -name ARG" and, on
// the next line after "    \t", the text (a one-letter flag without an
// argument has it after a tab on the same line).
func parseFlagHelp(s string) []manFlag {
	var out []manFlag
	for _, line := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(line, "  -"):
			name, text, _ := strings.Cut(strings.TrimPrefix(line, "  "), "\t")
			out = append(out, manFlag{name: name, text: text})
		case strings.HasPrefix(line, "    \t") && len(out) > 0:
			f := &out[len(out)-1]
			f.text = strings.TrimSpace(f.text + " " + strings.TrimPrefix(line, "    \t"))
		}
	}
	return out
}

// roff escapes text for a roff line: backslashes, hyphens (minus signs in
// option names), a leading dot or quote that would start a request, and
// characters beyond ASCII (as \[uXXXX]).
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, `\[u%04X]`, r)
		}
	}
	return b.String()
}

// writeManPage writes chainmail(8) in man(7) roff, with each command's
// flags taken from its own -h output, so the page follows the code.
func writeManPage(w io.Writer) {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p(`.TH CHAINMAIL 8 "" "chainmail %s" "System Administration"`, roff(version))
	p(".SH NAME")
	p(`chainmail \- milter\-based inbound mail filter`)
	p(".SH SYNOPSIS")
	for i, c := range manCommands {
		if i > 0 {
			p(".br")
		}
		p(".B %s", roff(c.synopsis))
	}
	p(".SH DESCRIPTION")
	p("%s", roff("chainmail checks mail for an MTA (Postfix, sendmail) over the milter protocol: SPF, DKIM, DMARC, DNS blocklists, URI blocklists, a statistical classifier, sender reputation, attachments and active content, HTML, antivirus (clamd) and SpamAssassin (spamd), each a check of one chain whose results rules and thresholds turn into accept, tag, quarantine, reject or tempfail."))
	p(".PP")
	p("%s", roff("The configuration is YAML laid over the embedded default: a key set in the file replaces the default, a key left out keeps it. chainmail config default prints the default with its comments."))
	p(".SH COMMANDS")
	for _, c := range manCommands {
		p(".SS %s", roff(c.name))
		p("%s", roff(c.text))
		if c.help == nil {
			continue
		}
		var help bytes.Buffer
		c.help(&help)
		for _, f := range parseFlagHelp(help.String()) {
			name, arg, _ := strings.Cut(f.name, " ")
			p(".TP")
			if arg != "" {
				p(`.BI "%s " %s`, roff(name), roff(arg))
			} else {
				p(".B %s", roff(name))
			}
			p("%s", roff(f.text))
		}
	}
	p(".SH SIGNALS")
	p(".TP\n.B SIGHUP")
	p("%s", roff("Reload the configuration and reopen the file log sinks (after logrotate moved them away). A configuration that does not load is refused and the running one kept. The listen address and the milter socket settings change only with a restart."))
	p(".TP\n.BR SIGTERM \", \" SIGINT")
	p("%s", roff("Stop accepting connections, let messages in progress finish (milter.timeout plus 5 seconds at most), flush the state store and exit."))
	p(".SH EXIT STATUS")
	p(".TP\n.B 0\nSuccess.")
	p(".TP\n.B 1\n%s", roff("replay: some input could not be read."))
	p(".TP\n.B 2\n%s", roff("Usage or configuration error."))
	p(".TP\n.B 3\n%s", roff("The server failed at run time."))
	p(".SH ENVIRONMENT")
	p(".TP\n.B STATE_DIRECTORY\n%s", roff("Where the state store (state.db) lives when state.path is empty; systemd sets it for StateDirectory=."))
	p(".TP\n.B NOTIFY_SOCKET\n%s", roff("systemd's notification socket (sd_notify(3)); serve reports its state there."))
	p(".SH FILES")
	p(".TP\n.I /etc/chainmail/chainmail.yaml\n%s", roff("The configuration of the packaged service."))
	p(".TP\n.I /run/chainmail/chainmail.sock\n%s", roff("The milter socket of the packaged service, mode 0660 in group chainmail, which user postfix is added to."))
	p(".TP\n.I /var/lib/chainmail/state.db\n%s", roff("The bbolt state store: bayes tokens, quotas, greylisting, reputation history."))
	p(".SH SEE ALSO")
	p(".BR postconf (5),")
	p(".BR systemd.service (5),")
	p(".BR sd_notify (3),")
	p(".BR logrotate (8)")
	p(".PP")
	p("%s", roff("README.md of the chainmail sources: set-up, the configuration reference and every check."))
	io.WriteString(w, b.String())
}
