package antivirus

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/checktest"
)

// TestClamdBareCR: a message whose line ends are bare CRs reaches clamd
// so that clamd sees its parts, as the other checks do: EICAR in it is
// found. The message is given as a milter has it (the MTA split no line:
// one header field holds it all) and as replay reads the file. Before:
// clean.
func TestClamdBareCR(t *testing.T) {
	ts := checktest.TestStrings(t)
	sock := checktest.StartClamd(t, ts["eicar.com"])
	chk, err := New(Config{Address: "unix:" + sock, Timeout: checks.Duration(20 * time.Second), StreamMaxLength: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	plain := mail("eicar.com", ts["eicar.com"])
	raw, _ := io.ReadAll(plain.Reader())
	cr := bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r"))
	s := checks.NewSpool(0, "")
	defer s.Close()
	m, err := checks.ReadMessage(bytes.NewReader(cr), s)
	if err != nil {
		t.Fatal(err)
	}
	m.Envelope = plain.Envelope
	if len(m.Header) != 1 {
		t.Fatalf("%d header fields, want the whole message in one", len(m.Header))
	}
	r := chk.Check(context.Background(), m, nil)
	if r.Status != checks.StatusInfected || !strings.Contains(r.Reason, "Chainmail.Test.EICAR") {
		t.Errorf("bare CR: %s %q %v", r.Status, r.Reason, r.Err)
	}
}
