package spamassassin

import (
	"math"
	"strings"
	"testing"
)

// FuzzParseReport: any answer is parsed or refused with an error, never a
// panic; a parsed one has finite scores and rule names SpamAssassin could
// have written.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(withLen(sampleReport, sampleBody)))
	f.Add([]byte("SPAMD/1.0 76 Bad header line: (EOF)\r\n"))
	f.Add([]byte("SPAMD/1.1 0 EX_OK\r\nSpam: False ; 0.0 / 5.0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := ParseReport(b)
		if err != nil {
			return
		}
		for _, v := range []float64{rep.Score, rep.Required} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("score %v", v)
			}
		}
		for _, r := range rep.Rules {
			if !ruleName(r.Name) || math.IsNaN(r.Score) || math.IsInf(r.Score, 0) || strings.ContainsAny(r.Description, "\r\n") {
				t.Fatalf("rule %+v", r)
			}
		}
	})
}
