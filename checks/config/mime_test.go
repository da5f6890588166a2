package config_test

import (
	"context"
	"strings"
	"testing"

	"chainmail/checks"
	"chainmail/checks/gtube"
	"chainmail/checks/uribl"
)

// TestSharedMIMELimits: the attachment check's max_mime_parts bounds the
// gtube and uribl walks too: one limit for every walk over MIME parts.
func TestSharedMIMELimits(t *testing.T) {
	f := parse(t, "hostname: x\nchecks:\n  - name: gtube\n  - name: uribl\n    options:\n      lists: []\n  - name: attachment\n    options:\n      max_mime_parts: 10\n")
	e := build(t, f)
	var raw strings.Builder
	raw.WriteString("From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
	for range 20 {
		raw.WriteString("--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n")
	}
	raw.WriteString("--b--\r\n")
	m := message(t, "a@example.com", raw.String())
	seen := 0
	for _, s := range e.Chain.Steps {
		r := s.Check.Check(context.Background(), m, checks.Results{})
		switch s.Check.(type) {
		case *gtube.Check:
			seen++
			if r.Status != gtube.StatusUnscannable || !strings.Contains(r.Reason, "more than 10 MIME parts") {
				t.Errorf("gtube: %s %q, want unscannable past 10 parts", r.Status, r.Reason)
			}
		case *uribl.Check:
			seen++
			if !strings.Contains(r.Reason, "more than 10 MIME parts") {
				t.Errorf("uribl: %s %q, want the 10-part limit reported", r.Status, r.Reason)
			}
		}
	}
	if seen != 2 {
		t.Fatalf("%d of 2 checks found in the chain", seen)
	}
}
