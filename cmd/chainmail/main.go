// Command chainmail is a milter-based inbound mail filter.
//
//	chainmail serve   [-c FILE] [--listen ADDR]     run the milter daemon
//	chainmail replay  [flags] PATH...               run the milter stages on .eml, mbox or Maildir mail, offline
//	chainmail config check [-c FILE]               validate and print the effective configuration
//	chainmail config default                       print the embedded default configuration
//	chainmail holdqueue serve [--socket PATH]       the root helper for the console's hold queue
//	chainmail version
//
// See README.md for the Postfix and sendmail set-up and the configuration
// reference.
package main

import (
	"fmt"
	"io"
	"os"

	"chainmail/checks/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes.
const (
	exitOK     = 0
	exitFiles  = 1 // some input could not be read (replay)
	exitUsage  = 2 // usage or configuration error
	exitServer = 3 // the server failed at run time
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "replay":
		return replay(args[1:], stdout, stderr)
	case "learn":
		return learn(args[1:], stdout, stderr)
	case "holdqueue":
		return holdQueueCmd(args[1:], stderr)
	case "config":
		if len(args) == 2 && args[1] == "default" {
			stdout.Write(config.DefaultYAML())
			return exitOK
		}
		if len(args) < 2 || args[1] != "check" {
			fmt.Fprintln(stderr, "usage: chainmail config check [-c FILE] | chainmail config default")
			return exitUsage
		}
		return configCheck(args[2:], stdout, stderr)
	case "man":
		// Not in the usage: the packaging writes chainmail(8) with it.
		writeManPage(stdout)
		return exitOK
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "chainmail", version)
		return exitOK
	case "help", "-h", "--help", "-help":
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "chainmail: unknown command %q\n", args[0])
		usage(stderr)
		return exitUsage
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  chainmail serve [-c FILE] [--listen ADDR]
  chainmail replay [-c FILE] [--zone FILE]... [--dns HOST:PORT] [--milter ADDR]
                   [--client-ip IP] [--client-name NAME] [--helo NAME] [--from ADDR] [--rcpt ADDR]... [--auth USER]
                   [--queue-id ID] [--json] PATH...
  chainmail config check [-c FILE]
  chainmail config default
  chainmail learn --good|--bad [-c FILE] FILE.eml...   (or --listen ADDR, --url URL; see README)
  chainmail holdqueue serve [--socket PATH] [--group NAME] [--config-dir DIR]
  chainmail version
`)
}
