package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testMbox = "From alice@example.com Thu Aug 22 10:00:00 2002\n" +
	"From: alice@example.com\nTo: bob@example.org\nSubject: first\n\n" +
	">From here on, quoted\n>>From twice\nFrom the desk of nobody, not a separator\n\n" +
	"From bob@example.org Fri Aug 23 11:30:05 2002\n" +
	"From: bob@example.org\nTo: alice@example.com\nSubject: second\n\nhi\n\n" +
	"From MAILER-DAEMON Mon Sep  2 08:01:02 2002\n" +
	"From: carol@example.net\nTo: bob@example.org\nSubject: third\n\nbye\n"

// TestSplitMbox: an mbox is split on its separator lines only, each
// message loses its separator and one level of ">From " quoting.
func TestSplitMbox(t *testing.T) {
	got := splitMbox([]byte(testMbox))
	want := []string{
		"From: alice@example.com\nTo: bob@example.org\nSubject: first\n\nFrom here on, quoted\n>From twice\nFrom the desk of nobody, not a separator\n",
		"From: bob@example.org\nTo: alice@example.com\nSubject: second\n\nhi\n",
		"From: carol@example.net\nTo: bob@example.org\nSubject: third\n\nbye\n",
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("message %d:\n got %q\nwant %q", i+1, got[i], want[i])
		}
	}
}

// TestReplayMboxAndMaildir: replay reads every message of an mbox file
// and of a Maildir folder's cur/ and new/ (before: an mbox was one
// message, and a Maildir's files, which have no .eml suffix, none).
func TestReplayMboxAndMaildir(t *testing.T) {
	dir := t.TempDir()
	mbox := filepath.Join(dir, "inbox.mbox")
	md := filepath.Join(dir, "Maildir")
	files := map[string]string{
		mbox: testMbox,
		filepath.Join(md, "cur", "1700000000.1.host:2,S"): "From: d@example.com\r\nSubject: fourth\r\n\r\nx\r\n",
		filepath.Join(md, "new", "1700000001.2.host"):     "From: e@example.com\r\nSubject: fifth\r\n\r\nx\r\n",
		filepath.Join(md, "tmp", "1700000002.3.host"):     "From: f@example.com\r\nSubject: being delivered\r\n\r\nx\r\n",
	}
	for p, body := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(args []string, want map[string]string) {
		t.Helper()
		code, out, errOut := runCmd(t, append([]string{"replay", "--zone", emptyZone(t), "--json"}, args...)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		got := map[string]string{}
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var r replayResult
			if err := dec.Decode(&r); err != nil {
				t.Fatal(err)
			}
			got[r.File] = strings.Join(r.Log, "\n")
		}
		if len(got) != len(want) {
			t.Errorf("%v: %d messages, want %d:\n%s", args, len(got), len(want), out)
		}
		for file, subject := range want {
			if !strings.Contains(got[file], "with subject "+subject) {
				t.Errorf("%v: %s: no line with subject %q: %q", args, file, subject, got[file])
			}
		}
	}
	check([]string{mbox}, map[string]string{mbox + "#1": "first", mbox + "#2": "second", mbox + "#3": "third"})
	check([]string{md}, map[string]string{
		filepath.Join(md, "cur", "1700000000.1.host:2,S"): "fourth",
		filepath.Join(md, "new", "1700000001.2.host"):     "fifth",
	})
	// A directory holding both.
	code, out, _ := runCmd(t, "replay", "--zone", emptyZone(t), "--json", dir)
	if code != exitOK || strings.Count(out, "\n") != 5 || strings.Contains(out, "being delivered") {
		t.Errorf("directory: exit %d, want 5 messages:\n%s", code, out)
	}
}

// FuzzSplitMbox: any input splits without a panic, into no more
// messages than it has "From " lines, no longer than the input together.
func FuzzSplitMbox(f *testing.F) {
	f.Add([]byte(testMbox))
	f.Add([]byte("From x\n"))
	f.Add([]byte("From a@b Mon Jan  1 00:00 2000\r\n\r\nFrom a@b Mon Jan  1 00:00 2000\r\n>From \r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !bytes.HasPrefix(raw, []byte("From ")) {
			return
		}
		msgs := splitMbox(raw)
		total := 0
		for _, m := range msgs {
			total += len(m)
		}
		if froms := 1 + bytes.Count(raw, []byte("\nFrom ")); len(msgs) > froms {
			t.Fatalf("%d messages from %d From lines", len(msgs), froms)
		}
		if total > len(raw) {
			t.Fatalf("%d bytes out of %d", total, len(raw))
		}
	})
}
