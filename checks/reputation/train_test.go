package reputation

import (
	"strings"
	"testing"

	"chainmail/checks"
)

// The same message stored differently (another relay's Received, CRLF
// or LF, an mbox's trailing empty line) has one MessageID; another
// message has another.
func TestMessageIDIgnoresTheWay(t *testing.T) {
	id := func(raw string) string {
		t.Helper()
		m, err := checks.ReadMessage(strings.NewReader(raw), checks.NewSpool(0, ""))
		if err != nil {
			t.Fatal(err)
		}
		s, err := MessageID(m)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := id("Received: from a by b\r\nFrom: x@shop.test\r\nSubject: deals\r\n\r\nbuy now\r\n")
	b := id("Return-Path: <x@shop.test>\nReceived: from c by d\nFrom: x@shop.test\nSubject:  deals\n\nbuy now\n\n")
	c := id("From: x@shop.test\r\nSubject: deals\r\n\r\nbuy later\r\n")
	if a != b {
		t.Errorf("one message, two ids: %s %s", a, b)
	}
	if a == c {
		t.Errorf("two messages, one id")
	}
}
