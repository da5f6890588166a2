package html

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/checks/checktest"
)

// TestCorpusDisarm runs the check over the SpamAssassin public corpus
// sample: every disarmed message, checked again as delivered, has nothing
// left to disarm; its MIME structure is the one received; no part was
// unscannable. The figures are logged.
func TestCorpusDisarm(t *testing.T) {
	dir := checktest.Corpus(t, "spamassassin-public-corpus-sample")
	c, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var files, htmlMsgs, disarmed int
	kinds := map[string]int{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".md") || strings.HasSuffix(p, ".tsv") || strings.Contains(p, "LICENSE") {
			return nil
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files++
		m, err := checks.ReadMessage(bytes.NewReader(raw), checks.NewSpool(0, ""))
		if err != nil {
			return nil
		}
		r := c.Check(context.Background(), m, nil)
		if r.Status == StatusUnscannable {
			t.Errorf("%s: unscannable: %s", p, r.Reason)
		}
		if r.Facts["parts"].(int) > 0 {
			htmlMsgs++
		}
		if r.NewBody == nil {
			return nil
		}
		disarmed++
		for _, k := range r.Facts["disarmed"].([]string) {
			kinds[k]++
		}
		m2 := &checks.Message{Header: m.Header, Body: r.NewBody}
		r2 := c.Check(context.Background(), m2, nil)
		if r2.NewBody != nil || len(r2.Facts["disarmed"].([]string)) > 0 {
			t.Errorf("%s: delivered message still has %v", p, r2.Facts["disarmed"])
		}
		if a, b := shape(m), shape(m2); a != b {
			t.Errorf("%s: MIME structure changed:\n%s\n%s", p, a, b)
		}
		return nil
	})
	t.Logf("%d messages, %d with HTML, %d disarmed: %v", files, htmlMsgs, disarmed, kinds)
	if disarmed == 0 {
		t.Error("nothing disarmed in the corpus")
	}
}

// shape lists every entity's path, type and encoding.
func shape(m *checks.Message) string {
	src, size := attachments.Message(m.RawHeader(), m.Body)
	var b strings.Builder
	for _, e := range attachments.Walk(src, size, attachments.WalkOptions{}).Root.Leaves() {
		b.WriteString(e.Path + " " + e.MediaType + " " + e.Encoding + " " + e.Params["charset"] + "\n")
	}
	return b.String()
}
