package uribl

import (
	"context"
	"strings"
	"testing"

	"chainmail/checks"
	"chainmail/checks/dns/zoneserver"
)

// One list fails while another answers: the status is clean, and the
// reason says which list failed, as rbl's does (the two status summaries
// had drifted apart: uribl dropped the failed lists from its reason).
func TestStatusNamesFailedLists(t *testing.T) {
	c, srv := newCheck(t, lists(dbl, multi))
	srv.Fault("clean.example.multi.test", 0, zoneserver.ServFail())
	m := parse(t, "Subject: hi\r\nContent-Type: text/html\r\n\r\n<a href=\"http://clean.example/\">x</a>\r\n")
	r := c.Check(context.Background(), m, nil)
	if r.Status != checks.StatusClean || !strings.HasPrefix(r.Reason, "not listed (1 domains, 2 queries)") || !strings.Contains(r.Reason, "; failed: URIBL-multi") {
		t.Errorf("%s %q", r.Status, r.Reason)
	}
}
