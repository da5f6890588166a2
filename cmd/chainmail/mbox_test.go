package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"chainmail/checks"
	"chainmail/checks/checktest"
)

// mboxSeparator is the first line of a message exported from an mbox
// file (RFC 4155): "From " sender, then a date.
var mboxSeparator = regexp.MustCompile(`^From \S+ +\S`)

// mboxCorpusFiles lists the files of the shared corpus whose first line
// is an mbox separator.
func mboxCorpusFiles(t *testing.T) []string {
	t.Helper()
	root := checktest.CorpusRoot()
	if root == "" {
		checktest.Corpus(t, "spamassassin-public-corpus-sample") // skips loudly
	}
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		head := make([]byte, 200)
		n, _ := f.Read(head)
		line, _, _ := bytes.Cut(head[:n], []byte("\n"))
		if mboxSeparator.Match(line) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReplayMboxFromLine: every corpus file that starts with an mbox
// "From " line is read by replay with its header fields (before: with no
// header field at all, the "From " line ending the header block).
func TestReplayMboxFromLine(t *testing.T) {
	files := mboxCorpusFiles(t)
	// 283 files at the time of writing; the count only guards against the
	// walk finding nothing.
	if len(files) < 250 {
		t.Fatalf("only %d corpus files start with an mbox From line", len(files))
	}
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := checks.ReadMessage(bytes.NewReader(skipMboxFrom(raw)), checks.NewSpool(0, ""))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if len(m.Header) == 0 || (m.Get("From") == "" && m.Get("Subject") == "" && m.Get("Received") == "") {
			t.Errorf("%s: read without a From, Subject or Received field (%d fields)", p, len(m.Header))
		}
		// The separator is gone and nothing else of the file.
		first, _, _ := bytes.Cut(raw, []byte("\n"))
		if got := int64(len(m.RawHeader())) + m.Body.Size(); got < int64(len(raw)-len(first)-1) {
			t.Errorf("%s: %d bytes read of %d", p, got, len(raw)-len(first)-1)
		}
	}
	t.Logf("%d corpus files start with an mbox From line", len(files))
}

// TestSkipMboxFromOnlyFirstLine: only a first line starting with "From "
// is dropped; ">From " quoting in the body stays as sent.
func TestSkipMboxFromOnlyFirstLine(t *testing.T) {
	msg := "From a@example.com Thu Aug 22 10:00:00 2002\r\nFrom: a@example.com\r\nSubject: hi\r\n\r\n>From here on\r\nFrom there\r\n"
	got := string(skipMboxFrom([]byte(msg)))
	if want := msg[strings.Index(msg, "\n")+1:]; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, s := range []string{"From: a@example.com\r\n\r\nx", ">From a@example.com Thu\r\nFrom: a\r\n\r\n", ""} {
		if got := string(skipMboxFrom([]byte(s))); got != s {
			t.Errorf("%q changed to %q", s, got)
		}
	}
}

// TestReplayMboxFromEndToEnd runs replay itself on corpus files that start
// with an mbox line: the delivery line carries the subject and the
// envelope sender the header gives.
func TestReplayMboxFromEndToEnd(t *testing.T) {
	files := mboxCorpusFiles(t)
	if len(files) > 5 {
		files = files[:5]
	}
	for _, p := range files {
		raw, _ := os.ReadFile(p)
		m, _ := checks.ReadMessage(bytes.NewReader(skipMboxFrom(raw)), checks.NewSpool(0, ""))
		subject := m.Subject()
		code, out, errOut := runCmd(t, "replay", "--zone", emptyZone(t), "--json", p)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", p, code, errOut)
		}
		var r replayResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		joined := strings.Join(r.Log, "\n")
		if !strings.Contains(joined, "with subject "+subject) || subject == "" {
			t.Errorf("%s: subject %q not in the log:\n%s", p, subject, joined)
		}
	}
}
