package main

// rspamd's functional test cases for SPF, DKIM and DMARC, replayed through
// "chainmail replay --json" (issue 3, "Proof").
//
// The corpus (../shared/corpus/rspamd-functional, see its SOURCE.md) is
// read in place: cases.json names the message, the envelope rspamd was
// given (IP, From, Helo) and the symbols rspamd must (not) produce; the
// fake DNS answers of the rspamd configuration are in JSON. For every
// fake-DNS set the test writes an RFC 1035 zone file into t.TempDir() and
// serves it with zoneserver, the loader behind "replay --zone". Zone files
// cannot say "this query times out", so the server is started here, the
// JSON's timeouts become zoneserver Drop faults on it, and replay is pointed
// at it with --dns.
//
// Every rspamd assertion about an R_SPF_*, R_DKIM_* or DMARC_* symbol is
// mapped onto chainmail's symbol (same names; see rspamdSymbols) and the
// (case, check) pair agrees when all its assertions hold. Disagreements
// must be listed in rspamdExceptions with their reason; a listed case
// that starts to agree fails the test too, so the list stays exact.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	mdns "github.com/miekg/dns"

	"chainmail/checks"
	"chainmail/checks/checktest"
	"chainmail/checks/dns/dnstest"
	"chainmail/checks/dns/zoneserver"
)

// rspamdCase is one entry of cases.json.
type rspamdCase struct {
	Suite   string            `json:"suite"`
	Config  string            `json:"config"`
	Case    string            `json:"case"`
	Message string            `json:"message"`
	Params  map[string]string `json:"params"`
	Expect  [][]string        `json:"expect"`
}

// rspamdFakeRecord is one fake DNS answer of an rspamd configuration:
// replies, or an rcode of "norec" (NOERROR, no data), "nxdomain" or
// "timeout".
type rspamdFakeRecord struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Replies []string `json:"replies"`
	Rcode   string   `json:"rcode"`
}

// rspamdSymbol is what an rspamd symbol means in chainmail: the check,
// the RFC status, and the chainmail symbol that says it.
type rspamdSymbol struct {
	check, status, symbol string
}

// rspamdSymbols maps rspamd's SPF, DKIM and DMARC symbols (SOURCE.md,
// "rspamd symbol -> RFC result") onto chainmail's.
var rspamdSymbols = map[string]rspamdSymbol{
	"R_SPF_ALLOW":    {"spf", "pass", "R_SPF_ALLOW"},
	"R_SPF_FAIL":     {"spf", "fail", "R_SPF_FAIL"},
	"R_SPF_SOFTFAIL": {"spf", "softfail", "R_SPF_SOFTFAIL"},
	"R_SPF_NEUTRAL":  {"spf", "neutral", "R_SPF_NEUTRAL"},
	"R_SPF_NA":       {"spf", "none", "R_SPF_NA"},
	"R_SPF_DNSFAIL":  {"spf", "temperror", "R_SPF_DNSFAIL"},
	"R_SPF_PERMFAIL": {"spf", "permerror", "R_SPF_PERMFAIL"},
	// rspamd reports a pass through "+all" under its own symbol; in
	// RFC 7208 terms (§5.1, §4.6.2) it is a pass, which is what
	// chainmail reports.
	"R_SPF_PLUSALL": {"spf", "pass", "R_SPF_ALLOW"},

	"R_DKIM_ALLOW":    {"dkim", "pass", "R_DKIM_ALLOW"},
	"R_DKIM_REJECT":   {"dkim", "fail", "R_DKIM_REJECT"},
	"R_DKIM_TEMPFAIL": {"dkim", "temperror", "R_DKIM_TEMPFAIL"},
	"R_DKIM_PERMFAIL": {"dkim", "permerror", "R_DKIM_PERMFAIL"},
	"R_DKIM_NA":       {"dkim", "none", "R_DKIM_NA"},

	"DMARC_POLICY_ALLOW":      {"dmarc", "pass", "DMARC_POLICY_ALLOW"},
	"DMARC_POLICY_REJECT":     {"dmarc", "fail", "DMARC_POLICY_REJECT"},
	"DMARC_POLICY_QUARANTINE": {"dmarc", "fail", "DMARC_POLICY_QUARANTINE"},
	"DMARC_POLICY_SOFTFAIL":   {"dmarc", "fail", "DMARC_POLICY_SOFTFAIL"},
	"DMARC_NA":                {"dmarc", "none", "DMARC_NA"},
	"DMARC_DNSFAIL":           {"dmarc", "temperror", "DMARC_DNSFAIL"},
	"DMARC_BAD_POLICY":        {"dmarc", "permerror", "DMARC_BAD_POLICY"},
}

// rspamdChecks are the checks compared, in table order.
var rspamdChecks = []string{"spf", "dkim", "dmarc"}

// rspamdFloor is the agreement measured when the test was written, per
// check (of 36 SPF, 16 DKIM and 19 DMARC (case, check) pairs): fewer
// agreeing pairs is a regression.
var rspamdFloor = map[string]int{"spf": 33, "dkim": 16, "dmarc": 19}

// rspamdExceptions lists every (check, case) on which chainmail and
// rspamd disagree, keyed "check/case name", with the reason.
var rspamdExceptions = map[string]string{
	// fewreq.org.org.za has 30 "a:" mechanisms, the last one matching.
	"spf/SPF ALLOW DNS REQUESTS AT LIMIT": "RFC 7208 §4.6.4: more than 10 mechanisms and modifiers that query DNS " +
		"is permerror; rspamd's own limit (max_dns_requests) is 30, and the case tests that limit",
	// rspamd's configuration for the suite has spf { external_relay =
	// [192.168.1.1] }: it takes the address from the Received field the
	// relay wrote (37.48.67.26), not the connecting client.
	"spf/SPF EXTERNAL RELAY": "rspamd-specific option (spf.external_relay): chainmail checks the SMTP client's address " +
		"(RFC 7208 §2.4, §4.1), which replay takes from the topmost Received field, the trusted relay 192.168.1.1; " +
		"chainmail has no setting that skips a trusted relay, so the fixture cannot be expressed",
	// fail3.org.org.za: "v=spf1 ip4:8.8.8.8 include:total.barf -all",
	// total.barf is NXDOMAIN, the client is 37.48.67.26.
	"spf/SPF FAIL UNRESOLVEABLE INCLUDE": "RFC 7208 §5.2: an include: whose target has no SPF record (\"none\") " +
		"makes check_host() return permerror; rspamd skips the unresolvable include and reaches -all (fail)",
}

// rspamdVerdict is the comparison of one (case, check) pair.
type rspamdVerdict struct {
	check, name string
	agree       bool
	status      string   // chainmail's status for the check
	reason      string   // chainmail's reason
	symbols     []string // chainmail's symbols of the check
	why         []string // assertions that failed
}

func TestRspamdFunctional(t *testing.T) {
	dir := checktest.Corpus(t, "rspamd-functional")
	var all []rspamdCase
	readJSON(t, filepath.Join(dir, "cases.json"), &all)

	// The DNS sets: the 001_merged suites run with merged-local.conf's
	// fake records, 116_dkim with plugins.conf's (via dkim.conf).
	servers := map[string]string{}
	for _, set := range []string{"fake-dns-merged-local.conf.json", "fake-dns-plugins.conf.json"} {
		var recs []rspamdFakeRecord
		readJSON(t, filepath.Join(dir, set), &recs)
		zone, faults := rspamdZone(t, recs)
		p := filepath.Join(t.TempDir(), strings.TrimSuffix(set, ".json")+".zone")
		if err := os.WriteFile(p, []byte(zone), 0o644); err != nil {
			t.Fatal(err)
		}
		s := dnstest.Start(t, p)
		for _, f := range faults {
			s.Fault(f.name, f.qtype, zoneserver.Drop())
		}
		servers[set] = s.Addr()
	}
	dnsFor := func(c rspamdCase) string {
		if strings.HasPrefix(c.Suite, "116_dkim") {
			return servers["fake-dns-plugins.conf.json"]
		}
		return servers["fake-dns-merged-local.conf.json"]
	}

	// A short DNS timeout without retries: the fake timeouts cost that
	// much each, real answers come from 127.0.0.1 in microseconds.
	cfg := filepath.Join(t.TempDir(), "rspamd.yaml")
	if err := os.WriteFile(cfg, []byte("dns:\n  timeout: 400ms\n  retries: -1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		verdicts []rspamdVerdict
		cases    int
	)
	t.Run("cases", func(t *testing.T) {
		for _, c := range all {
			byCheck := rspamdAssertions(c)
			if len(byCheck) == 0 {
				continue
			}
			cases++
			args := []string{"replay", "-c", cfg, "--dns", dnsFor(c), "--json"}
			args = append(args, rspamdEnvelope(c)...)
			args = append(args, filepath.Join(dir, filepath.FromSlash(c.Message)))
			t.Run(c.Case, func(t *testing.T) {
				t.Parallel()
				code, out, errOut := runCmd(t, args...)
				if code != exitOK {
					t.Fatalf("replay %q: exit %d: %s", args, code, errOut)
				}
				var r replayResult
				if err := json.Unmarshal([]byte(out), &r); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
				var vs []rspamdVerdict
				for _, check := range rspamdChecks {
					if as, ok := byCheck[check]; ok {
						vs = append(vs, rspamdCompare(c.Case, check, as, &r))
					}
				}
				mu.Lock()
				verdicts = append(verdicts, vs...)
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		return
	}
	sort.Slice(verdicts, func(i, j int) bool {
		if verdicts[i].check != verdicts[j].check {
			return checkOrder(verdicts[i].check) < checkOrder(verdicts[j].check)
		}
		return verdicts[i].name < verdicts[j].name
	})

	// The table.
	total := map[string]int{}
	agreed := map[string]int{}
	var b strings.Builder
	fmt.Fprintf(&b, "rspamd functional cases: %d with SPF/DKIM/DMARC assertions\n", cases)
	fmt.Fprintf(&b, "%-6s %6s %6s %9s\n", "check", "cases", "agree", "disagree")
	for _, v := range verdicts {
		total[v.check]++
		if v.agree {
			agreed[v.check]++
		}
	}
	for _, ch := range rspamdChecks {
		fmt.Fprintf(&b, "%-6s %6d %6d %9d\n", ch, total[ch], agreed[ch], total[ch]-agreed[ch])
	}
	seen := map[string]bool{}
	for _, v := range verdicts {
		key := v.check + "/" + v.name
		seen[key] = true
		reason, listed := rspamdExceptions[key]
		switch {
		case !v.agree && listed:
			fmt.Fprintf(&b, "  disagree %s: %s\n      chainmail: %s %v (%s)\n      because: %s\n", key, strings.Join(v.why, "; "), v.status, v.symbols, v.reason, reason)
		case !v.agree:
			fmt.Fprintf(&b, "  DISAGREE %s: %s\n      chainmail: %s %v (%s)\n      not a listed exception\n", key, strings.Join(v.why, "; "), v.status, v.symbols, v.reason)
			t.Errorf("%s: chainmail disagrees with rspamd and the case is not in rspamdExceptions: %s (chainmail: %s %v)",
				key, strings.Join(v.why, "; "), v.status, v.symbols)
		case listed:
			t.Errorf("%s: chainmail now agrees with rspamd (%s %v): remove it from rspamdExceptions and raise rspamdFloor", key, v.status, v.symbols)
		}
	}
	for key := range rspamdExceptions {
		if !seen[key] {
			t.Errorf("rspamdExceptions lists %q, which is no case of the corpus", key)
		}
	}
	t.Logf("\n%s", b.String())
	for _, ch := range rspamdChecks {
		if agreed[ch] < rspamdFloor[ch] {
			t.Errorf("%s: %d of %d cases agree with rspamd, below the floor of %d", ch, agreed[ch], total[ch], rspamdFloor[ch])
		}
	}
}

func checkOrder(check string) int {
	for i, c := range rspamdChecks {
		if c == check {
			return i
		}
	}
	return len(rspamdChecks)
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// rspamdAssertions groups the case's assertions about SPF, DKIM and DMARC
// symbols by check; the others (ARC, RBL, …) are not ours to compare.
func rspamdAssertions(c rspamdCase) map[string][][]string {
	out := map[string][][]string{}
	for _, e := range c.Expect {
		if len(e) < 2 {
			continue
		}
		if m, ok := rspamdSymbols[e[1]]; ok {
			out[m.check] = append(out[m.check], e)
		}
	}
	return out
}

// rspamdEnvelope turns the case's params into replay flags. rspamd takes
// IP, From (the SMTP MAIL FROM; "<>" is the null reverse-path) and Helo
// as request headers; other params (Settings, Rewrite-Mime-From) select
// rspamd rules or rewrite the From after the checks and change nothing
// here. Without IP rspamd checks no SPF, and chainmail has no client
// address either: of these messages only external_relay.eml carries a
// Received field with one, and its case is about exactly that. Without
// From, replay takes MAIL FROM from Return-Path or From; that only
// happens in cases asserting nothing about SPF. Recipients play no part
// in SPF, DKIM or DMARC; replay takes them from To/Cc.
func rspamdEnvelope(c rspamdCase) []string {
	var args []string
	if ip := c.Params["IP"]; ip != "" {
		args = append(args, "--client-ip", ip)
	}
	if from, ok := c.Params["From"]; ok {
		args = append(args, "--from", strings.TrimSuffix(strings.TrimPrefix(from, "<"), ">"))
	}
	if helo := c.Params["Helo"]; helo != "" {
		args = append(args, "--helo", helo)
	}
	return args
}

// rspamdCompare checks one case's assertions about one check against
// replay's answer.
func rspamdCompare(name, check string, assertions [][]string, r *replayResult) rspamdVerdict {
	v := rspamdVerdict{check: check, name: name, agree: true}
	for _, res := range r.Results {
		if res.Check == check {
			v.status, v.reason = res.Status, res.Reason
		}
	}
	syms := map[string]checks.Symbol{}
	for _, s := range r.Symbols {
		if m, ok := symbolCheck(s.Name); ok && m == check {
			syms[s.Name] = s
			v.symbols = append(v.symbols, s.Name)
		}
	}
	sort.Strings(v.symbols)
	fail := func(format string, a ...any) {
		v.agree = false
		v.why = append(v.why, fmt.Sprintf(format, a...))
	}
	for _, e := range assertions {
		kind, rs := e[0], e[1]
		m := rspamdSymbols[rs]
		s, have := syms[m.symbol]
		switch kind {
		case "Expect Symbol":
			if !have {
				fail("rspamd expects %s (%s %s)", rs, m.check, m.status)
			}
		case "Do Not Expect Symbol":
			if have {
				fail("rspamd expects no %s", rs)
			}
		case "Expect Symbol With Option":
			// The option is the domain DMARC evaluated: our symbol's
			// detail.
			switch {
			case !have:
				fail("rspamd expects %s (%s %s)", rs, m.check, m.status)
			case len(e) > 2 && s.Detail != e[2]:
				fail("rspamd expects %s with option %q, chainmail's detail is %q", rs, e[2], s.Detail)
			}
		case "Expect Symbol With Score And Exact Options":
			// The options are rspamd's text of the matching mechanism
			// ("+ip4:…"), which chainmail does not produce; the symbol
			// and its score are compared.
			var want float64
			fmt.Sscan(e[2], &want)
			switch {
			case !have:
				fail("rspamd expects %s (%s %s)", rs, m.check, m.status)
			case math.Abs(s.Score-want) > 1e-9:
				fail("rspamd expects %s with score %s, chainmail's is %.2f", rs, e[2], s.Score)
			}
		default:
			fail("assertion %q not understood", kind)
		}
	}
	return v
}

// symbolCheck tells which check a chainmail symbol belongs to.
func symbolCheck(sym string) (string, bool) {
	switch {
	case strings.HasPrefix(sym, "R_SPF_"):
		return "spf", true
	case strings.HasPrefix(sym, "R_DKIM_"), strings.HasPrefix(sym, "DKIM_"):
		return "dkim", true
	case strings.HasPrefix(sym, "DMARC_"):
		return "dmarc", true
	}
	return "", false
}

// rspamdFault is a query the test server must leave unanswered.
type rspamdFault struct {
	name  string
	qtype uint16
}

// rspamdZone writes fake records as zone-file text. Replies become
// records; "nxdomain" is the absence of the name; "norec" (NOERROR, no
// data) needs the name to exist, so a name with no record at all gets a
// placeholder of a private-use type (RFC 6895 §3.1) that nothing queries;
// "timeout" is returned as a fault for the server.
func rspamdZone(t *testing.T, recs []rspamdFakeRecord) (string, []rspamdFault) {
	t.Helper()
	types := map[string]uint16{"txt": mdns.TypeTXT, "a": mdns.TypeA, "aaaa": mdns.TypeAAAA, "mx": mdns.TypeMX, "ptr": mdns.TypePTR}
	var b strings.Builder
	b.WriteString("; generated by rspamd_test.go from rspamd's fake DNS records\n$TTL 300\n")
	hasData := map[string]bool{}
	noData := map[string]bool{}
	var faults []rspamdFault
	for _, r := range recs {
		qtype, ok := types[r.Type]
		if !ok {
			t.Fatalf("fake record %s: type %q not handled", r.Name, r.Type)
		}
		owner := mdns.Fqdn(strings.ToLower(r.Name))
		switch r.Rcode {
		case "":
		case "norec":
			noData[owner] = true
			continue
		case "nxdomain":
			continue
		case "timeout":
			faults = append(faults, rspamdFault{owner, qtype})
			continue
		default:
			t.Fatalf("fake record %s: rcode %q not handled", r.Name, r.Rcode)
		}
		for _, rep := range r.Replies {
			var data string
			switch qtype {
			case mdns.TypeTXT:
				data = zoneTXT(rep)
			case mdns.TypeMX:
				f := strings.Fields(rep)
				if len(f) != 2 {
					t.Fatalf("fake record %s: MX %q", r.Name, rep)
				}
				data = f[0] + " " + mdns.Fqdn(f[1])
			case mdns.TypePTR:
				data = mdns.Fqdn(rep)
			default:
				data = rep
			}
			fmt.Fprintf(&b, "%s IN %s %s\n", owner, strings.ToUpper(r.Type), data)
			hasData[owner] = true
		}
	}
	var placeholders []string
	for owner := range noData {
		if !hasData[owner] {
			placeholders = append(placeholders, owner)
		}
	}
	sort.Strings(placeholders)
	for _, owner := range placeholders {
		fmt.Fprintf(&b, "%s IN TYPE65280 \\# 0\n", owner)
	}
	return b.String(), faults
}

// zoneTXT quotes a TXT value as zone-file character-strings of at most
// 255 octets each (RFC 1035 §3.3.14; SPF and DKIM concatenate them,
// RFC 7208 §3.3, RFC 6376 §3.6.2.2).
func zoneTXT(s string) string {
	if s == "" {
		return `""`
	}
	var parts []string
	for len(s) > 0 {
		n := min(len(s), 255)
		var q strings.Builder
		q.WriteByte('"')
		for i := 0; i < n; i++ {
			c := s[i]
			switch {
			case c == '"' || c == '\\':
				q.WriteByte('\\')
				q.WriteByte(c)
			case c < 0x20 || c > 0x7e:
				fmt.Fprintf(&q, "\\%03d", c)
			default:
				q.WriteByte(c)
			}
		}
		q.WriteByte('"')
		parts = append(parts, q.String())
		s = s[n:]
	}
	return strings.Join(parts, " ")
}
