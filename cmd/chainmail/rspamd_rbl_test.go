package main

// rspamd's functional test cases for RBL, SURBL/URIBL and phishing,
// replayed through "chainmail replay --json" (issue 4, "Proof").
//
// The suites are 300_rbl, 340_surbl and 114_phishing of cases.json in
// ../shared/corpus/rspamd-functional (read in place). The fake DNS of
// merged-local.conf is served as in rspamd_test.go. rspamd's rbl { },
// surbl { } and emails { } rules (configs/merged-override.conf and
// merged-local.conf) are written as rbl and uribl lists in rblConfig, one
// chainmail list per rspamd rule (and one per symbol prefix where an
// rspamd rule has several), with the symbols rspamd names; every list is
// on for every case, where rspamd enables a few per case. The suites'
// url_suspect cases (400_url_suspect) are about URL shapes, not lists,
// and are out of scope.
//
// A case agrees when all its assertions hold. Options are compared in
// chainmail's words: rspamd's "from" (the client) is chainmail's
// "client", a selector's key (selector, sel_from, sel_helo) is the
// lookup it stands for (helo, env_from), and rspamd shows the address of
// a numeric URL reversed ("4.3.2.1:url" for http://1.2.3.4/), chainmail
// as written. Every disagreement is listed in rblExceptions with its
// reason, and a listed case that starts to agree fails the test, so the
// list and the floor stay exact.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"chainmail/checks/checktest"
	"chainmail/checks/dns/dnstest"
	"chainmail/checks/dns/zoneserver"
	"chainmail/checks/dnsbl"
)

// rblSuites are the suites compared.
var rblSuites = []string{"001_merged/300_rbl.robot", "001_merged/340_surbl.robot", "001_merged/114_phishing.robot"}

// rblConfig is rspamd's configuration of the suites in chainmail's terms.
//
// The strict phishing maps (configs/maps/strict.phishing and
// stricter.phishing) are not in the corpus; the cases say which site each
// holds (phishing2.eml shows www.myspace.com, phishing3.eml www.bank.com).
// rspamd's URIBL_BLOCKED (bit 1 of test3.uribl) is 127.0.0.1, an error
// answer in chainmail (URIBL_MULTI_FAIL), never a listing.
const rblConfig = `dns:
  timeout: 400ms
  retries: -1
checks:
  - name: rbl
    options:
      skip_authenticated: false
      health: {probe_interval: 0s}
      lists:
        - {name: FAKE_RBL, zone: fake.rbl, lookup: [client], symbol: FAKE_RBL_FAKE_RBL_UNKNOWN, unknown: true,
           codes: [{symbol: FAKE_RBL_CODE_2, match: 127.0.0.2}, {symbol: FAKE_RBL_CODE_3, match: 127.0.0.3}]}
        - {name: FAKE_RECEIVED_RBL, zone: fake.rbl, lookup: [received], symbol: FAKE_RECEIVED_RBL_FAKE_RBL_UNKNOWN, unknown: true,
           codes: [{symbol: FAKE_RECEIVED_RBL_CODE_2, match: 127.0.0.2}, {symbol: FAKE_RECEIVED_RBL_CODE_3, match: 127.0.0.3}]}
        - {name: FAKE_WL, zone: fake.wl, lookup: [client, received], allow: true, overrides: true, symbol: FAKE_WL_RBL_UNKNOWN, unknown: true,
           codes: [{symbol: FAKE_WL_RBL_CODE_2, match: 127.0.0.2}, {symbol: FAKE_WL_RBL_CODE_3, match: 127.0.0.3}]}
        - {name: RBL_SELECTOR_SINGLE, zone: test9.uribl, lookup: [helo], symbol: RBL_SELECTOR_SINGLE}
        - {name: RBL_SELECTOR_MULTIPLE, zone: test9.uribl, lookup: [env_from, helo], symbol: RBL_SELECTOR_MULTIPLE}
  - name: uribl
    options:
      health: {probe_interval: 0s}
      exclude: [rspamd-test.com]
      phishing:
        enabled: true
        strict:
          - {symbol: STRICT_PHISHING, score: 4, domains: [myspace.com]}
          - {symbol: STRICTER_PHISHING, score: 4, domains: [bank.com]}
      lists:
        # surbl { rules { … } }
        - {name: RSPAMD_URIBL, zone: test.uribl, hash: blake2b, lookup: [domains], sources: [link, text, subject, email], symbol: RSPAMD_URIBL}
        - {name: DBL, zone: test2.uribl, lookup: [domains], sources: [link, text, subject, email],
           codes: [{symbol: DBL_SPAM, match: 127.0.1.2}, {symbol: DBL_PHISH, match: 127.0.1.4}]}
        - {name: URIBL_MULTI, zone: test3.uribl, sources: [link, text, subject, email],
           codes: [{symbol: URIBL_BLACK, bits: 2}, {symbol: URIBL_GREY, bits: 4}, {symbol: URIBL_RED, bits: 8}]}
        - {name: SPAMHAUS_ZEN_URIBL, zone: test4.uribl, lookup: [ips, resolved_ips], sources: [link, text, subject, email],
           codes: [{symbol: URIBL_SBL, match: 127.0.0.2}, {symbol: URIBL_SBL_CSS, match: 127.0.0.3},
                   {symbol: URIBL_XBL, match: 127.0.0.4-127.0.0.7}, {symbol: URIBL_PBL, match: 127.0.0.10-127.0.0.11},
                   {symbol: URIBL_DROP, match: 127.0.0.9}]}
        - {name: RSPAMD_URIBL_IMAGES, zone: test.uribl, hash: blake2b, lookup: [domains], sources: [image], symbol: RSPAMD_URIBL_IMAGES}
        - {name: BAD_SUBDOMAIN, zone: test7.uribl, lookup: [domains], sources: [link, text, subject], symbol: BAD_SUBDOMAIN}
        # emails { rules { … } } (replyto = true)
        - {name: RSPAMD_EMAILBL_FULL, zone: test5.uribl, lookup: [email_addresses], sources: [email, reply_to], symbol: RSPAMD_EMAILBL_FULL}
        - {name: RSPAMD_EMAILBL_DOMAINONLY, zone: test6.uribl, lookup: [domains], sources: [email, reply_to], symbol: RSPAMD_EMAILBL_DOMAINONLY}
        # rbl { rbls { … } } on URLs and addresses
        - {name: RSPAMD_EMAILBL, zone: test8.uribl, lookup: [domains], sources: [email], symbol: RSPAMD_EMAILBL}
        - {name: URIBL_NUMERIC, zone: test9.uribl, lookup: [ips], sources: [link, text], symbol: URIBL_NUMERIC}
        - {name: URIBL_NUMERIC_IMAGES, zone: test9.uribl, lookup: [ips], sources: [link, text, image], symbol: URIBL_NUMERIC_IMAGES}
        - {name: URIBL_NUMERIC_CONTENT, zone: test9.uribl, lookup: [ips], sources: [link, text], symbol: URIBL_NUMERIC_CONTENT}
        - {name: URIBL_NONNUMERIC_VANILLA, zone: test10.uribl, lookup: [domains], sources: [link, text], symbol: URIBL_NONNUMERIC_VANILLA}
        - {name: URIBL_NONNUMERIC_EVERYTHING, zone: test10.uribl, lookup: [domains], sources: [link, text, image], symbol: URIBL_NONNUMERIC_EVERYTHING}
        - {name: URIBL_NUMERIC_EVERYTHING, zone: test9.uribl, lookup: [ips], sources: [link, text, image], symbol: URIBL_NUMERIC_EVERYTHING}
        - {name: URIBL_NOCONTENT, zone: test9.uribl, sources: [link, text], symbol: URIBL_NOCONTENT}
        - {name: URIBL_WITHCONTENT, zone: test9.uribl, sources: [link, text], symbol: URIBL_WITHCONTENT}
`

// rblFloor is the agreement measured when the test was written, per
// suite; fewer agreeing cases is a regression. Every case short of the
// total is in rblExceptions, with the reason.
var rblFloor = map[string]int{"300_rbl": 11, "340_surbl": 21, "114_phishing": 9}

const (
	whyCompose = "rspamd's url_compose_map (configs/maps/url_compose_map*.list, not in the corpus) keeps more labels " +
		"than the registrable domain for chosen domains; chainmail looks up the registrable domain (public suffix list), " +
		"so the listed subdomain is never asked"
	whyContent = "rspamd's content_urls are URLs found inside attachments (the PDF of the message); reading attachment " +
		"content is the attachments check's work, uribl reads text/plain and text/html parts only"
)

// rblExceptions lists every case on which chainmail disagrees with
// rspamd, keyed "suite/case name", with the reason.
var rblExceptions = map[string]string{
	"300_rbl/EMAILBL Compose Map 1":           whyCompose,
	"300_rbl/EMAILBL Compose Map 2":           whyCompose,
	"300_rbl/EMAILBL Compose Map 3":           whyCompose,
	"340_surbl/SURBL url compose map 1":       whyCompose,
	"340_surbl/SURBL url compose map 2":       whyCompose,
	"340_surbl/SURBL url compose map 3":       whyCompose,
	"300_rbl/CONTENT URLS":                    whyContent,
	"300_rbl/NUMERIC URLS WITH CONTENT":       whyContent,
	"300_rbl/NUMERIC URLS WITH EVERYTHING":    whyContent,
	"300_rbl/NONNUMERIC URLS WITH EVERYTHING": whyContent,
}

// rblVerdict is the comparison of one case.
type rblVerdict struct {
	suite, name string
	agree       bool
	assertions  int
	failed      int
	why         []string
}

func TestRspamdRBL(t *testing.T) {
	dir := checktest.Corpus(t, "rspamd-functional")
	var all []rspamdCase
	readJSON(t, filepath.Join(dir, "cases.json"), &all)

	var recs []rspamdFakeRecord
	readJSON(t, filepath.Join(dir, "fake-dns-merged-local.conf.json"), &recs)
	zone, faults := rspamdZone(t, recs)
	zp := filepath.Join(t.TempDir(), "merged-local.zone")
	if err := os.WriteFile(zp, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := dnstest.Start(t, zp)
	for _, f := range faults {
		srv.Fault(f.name, f.qtype, zoneserver.Drop())
	}
	cfg := filepath.Join(t.TempDir(), "rspamd-rbl.yaml")
	if err := os.WriteFile(cfg, []byte(rblConfig), 0o644); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		verdicts []rblVerdict
	)
	t.Run("cases", func(t *testing.T) {
		for _, c := range all {
			if !slices.Contains(rblSuites, c.Suite) {
				continue
			}
			suite := strings.TrimSuffix(strings.TrimPrefix(c.Suite, "001_merged/"), ".robot")
			args := []string{"replay", "-c", cfg, "--dns", srv.Addr(), "--json"}
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
				v := rblCompare(suite, c, &r)
				mu.Lock()
				verdicts = append(verdicts, v)
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		return
	}
	sort.Slice(verdicts, func(i, j int) bool {
		if verdicts[i].suite != verdicts[j].suite {
			return verdicts[i].suite < verdicts[j].suite
		}
		return verdicts[i].name < verdicts[j].name
	})
	total, agreed, asserts, assertsOK := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	var b strings.Builder
	seen := map[string]bool{}
	for _, v := range verdicts {
		total[v.suite]++
		asserts[v.suite] += v.assertions
		assertsOK[v.suite] += v.assertions - v.failed
		if v.agree {
			agreed[v.suite]++
		}
		key := v.suite + "/" + v.name
		seen[key] = true
		reason, listed := rblExceptions[key]
		switch {
		case !v.agree && listed:
			fmt.Fprintf(&b, "  disagree %s: %s\n      because: %s\n", key, strings.Join(v.why, "; "), reason)
		case !v.agree:
			fmt.Fprintf(&b, "  DISAGREE %s: %s\n", key, strings.Join(v.why, "; "))
			t.Errorf("%s: chainmail disagrees with rspamd and the case is not in rblExceptions: %s", key, strings.Join(v.why, "; "))
		case listed:
			t.Errorf("%s: chainmail now agrees with rspamd: remove it from rblExceptions and raise rblFloor", key)
		}
	}
	for key := range rblExceptions {
		if !seen[key] {
			t.Errorf("rblExceptions lists %q, which is no case of the corpus", key)
		}
	}
	var head strings.Builder
	fmt.Fprintf(&head, "rspamd functional RBL/URIBL/phishing cases through replay\n%-14s %6s %6s %11s\n", "suite", "cases", "agree", "assertions")
	var sum, sumOK, sumA, sumAOK int
	for _, s := range []string{"300_rbl", "340_surbl", "114_phishing"} {
		fmt.Fprintf(&head, "%-14s %6d %6d %5d/%-5d\n", s, total[s], agreed[s], assertsOK[s], asserts[s])
		sum, sumOK, sumA, sumAOK = sum+total[s], sumOK+agreed[s], sumA+asserts[s], sumAOK+assertsOK[s]
	}
	fmt.Fprintf(&head, "%-14s %6d %6d %5d/%-5d\n", "all", sum, sumOK, sumAOK, sumA)
	t.Logf("\n%s%s", head.String(), b.String())
	for s, floor := range rblFloor {
		if agreed[s] < floor {
			t.Errorf("%s: %d of %d cases agree with rspamd, below the floor of %d", s, agreed[s], total[s], floor)
		}
	}
}

// rblOption turns an rspamd symbol option into chainmail's words.
func rblOption(opt string) string {
	parts := strings.Split(opt, ":")
	if len(parts) < 2 {
		return opt
	}
	src := parts[len(parts)-1]
	switch src {
	case "from":
		src = "client"
	case "selector", "sel_helo":
		src = "helo"
	case "sel_from":
		src = "env_from"
	}
	parts[len(parts)-1] = src
	// A numeric URL's address, reversed by rspamd.
	if len(parts) == 2 && src == "url" {
		if a, err := netip.ParseAddr(parts[0]); err == nil && a.Is4() {
			r := dnsbl.ReverseIP(a)
			parts[0] = r
		}
	}
	return strings.Join(parts, ":")
}

// rblCompare checks a case's assertions against replay's symbols.
func rblCompare(suite string, c rspamdCase, r *replayResult) rblVerdict {
	v := rblVerdict{suite: suite, name: c.Case, agree: true}
	opts := map[string][]string{}
	for _, s := range r.Symbols {
		opts[s.Name] = nil
		if s.Detail != "" {
			opts[s.Name] = strings.Split(s.Detail, ",")
		}
	}
	fail := func(format string, a ...any) {
		v.agree = false
		v.failed++
		v.why = append(v.why, fmt.Sprintf(format, a...))
	}
	for _, e := range c.Expect {
		if len(e) < 2 {
			continue
		}
		v.assertions++
		kind, sym := e[0], e[1]
		have, ok := opts[sym]
		var want []string
		for _, o := range e[2:] {
			want = append(want, rblOption(o))
		}
		switch kind {
		case "Expect Symbol":
			if !ok {
				fail("rspamd expects %s", sym)
			}
		case "Do Not Expect Symbol":
			if ok {
				fail("rspamd expects no %s (chainmail: %v)", sym, have)
			}
		case "Expect Symbol With Exact Options":
			a, b := slices.Clone(have), slices.Clone(want)
			sort.Strings(a)
			sort.Strings(b)
			if !ok || !slices.Equal(a, b) {
				fail("rspamd expects %s with exactly %v (chainmail: %v, present %v)", sym, want, have, ok)
			}
		case "Expect Symbol With Option":
			if !ok || !slices.Contains(have, want[0]) {
				fail("rspamd expects %s with %s (chainmail: %v, present %v)", sym, want[0], have, ok)
			}
		case "Do Not Expect Symbol With Option":
			if ok && slices.Contains(have, want[0]) {
				fail("rspamd expects %s without %s (chainmail: %v)", sym, want[0], have)
			}
		default:
			fail("assertion %q not understood", kind)
		}
	}
	return v
}
