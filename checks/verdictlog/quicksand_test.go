package verdictlog

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"chainmail/checks/checktest"
)

// quicksandRows reads the quicksand rows of patterns.tsv: the regular
// expressions Libraesva's parsers match QuickSand's lines with.
func quicksandRows(t *testing.T) []*regexp.Regexp {
	t.Helper()
	dir := os.Getenv("CHAINMAIL_SIEM")
	if dir == "" {
		dir = filepath.Join(checktest.RepoRoot(), "..", "shared", "siem")
	}
	f, err := os.Open(filepath.Join(dir, "patterns.tsv"))
	if err != nil {
		t.Skipf("!!! SKIPPING SIEM TEST: %v (set CHAINMAIL_SIEM to the directory of patterns.tsv) !!!", err)
	}
	defer f.Close()
	var out []*regexp.Regexp
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) == 3 && cols[0] == "quicksand" {
			re := regexp.MustCompile(cols[1])
			if !re.MatchString(cols[2]) {
				t.Fatalf("patterns.tsv: the example %q does not match its own regex", cols[2])
			}
			out = append(out, re)
		}
	}
	if len(out) < 10 {
		t.Fatalf("patterns.tsv: %d quicksand rows, want the 14 of Libraesva's parsers", len(out))
	}
	return out
}

// Each QuickSand line is worded exactly, and the vendor's parsers read it:
// the row meant for it matches the whole line, with the file, archive and
// queue ID in its groups.
func TestQuickSandLines(t *testing.T) {
	rows := quicksandRows(t)
	top := QuickSand{File: "invoice.docm", Category: "suspicious"}
	in := QuickSand{File: "macro.xls", Archive: "docs.zip", Category: "suspicious"}
	cases := []struct {
		line   string
		row    string // the row's regex, or a piece of it only it has
		groups []string
	}{
		{top.Disarmed("4R1mw10gJMzJsbC").Line, "QuickSand disarmed file (.*?) ?in", []string{"invoice.docm", "4R1mw10gJMzJsbC"}},
		{in.Disarmed("4R1mw10gJMzJsbC").Line, "disarmed file (.*?) from archive", []string{"macro.xls", "docs.zip", "4R1mw10gJMzJsbC"}},
		{top.Removed("Q1", RemovedSuspicious).Line, "QuickSand removed file (.*?) in ([0-9A-Za-z.]*) because it’s suspicious", []string{"invoice.docm", "Q1"}},
		{in.Removed("Q1", RemovedSuspicious).Line, "QuickSand removed file (.*?) from archive (.*?) in ([0-9A-Za-z.]*) because it’s suspicious", []string{"macro.xls", "docs.zip", "Q1"}},
		{top.Removed("Q1", RemovedCannotDisarm).Line, "because it’s suspicious and cannot be disarmed", []string{"invoice.docm", "Q1"}},
		{in.Removed("Q1", RemovedCannotDisarm).Line, "because it cannot be disarmed", []string{"macro.xls", "docs.zip", "Q1"}},
		{QuickSand{File: "secret.zip"}.Removed("Q1", RemovedEncrypted).Line, "because it’s encrypted", []string{"secret.zip", "Q1"}},
		{QuickSand{File: "payroll.zip"}.Authorized("Q1", true).Line, "authorized encrypted archive", []string{"payroll.zip", "Q1"}},
		{QuickSand{File: "big.docx"}.Ignored("Q1", 80<<20).Line, "too big for analysis", []string{"big.docx", "80MB", "Q1"}},
		{QuickSand{File: "report.docx"}.Clean("Q1").Line, "found no active content", []string{"report.docx", "Q1"}},
		{in.ArchiveRemoved("Q1").Line, "removed archive", []string{"Q1"}},
		{top.Blocked("Q1").Line, "blocked message", []string{"Q1"}},
	}
	for _, c := range cases {
		var re *regexp.Regexp
		for _, r := range rows {
			if r.String() == c.row {
				re = r
				break
			}
			if strings.Contains(r.String(), c.row) {
				re = r
			}
		}
		if re == nil {
			t.Fatalf("no quicksand row has %q", c.row)
		}
		m := re.FindStringSubmatch(c.line)
		if m == nil || m[0] != c.line {
			t.Errorf("%q: not matched whole by %s", c.line, re)
			continue
		}
		if strings.Join(m[1:], "|") != strings.Join(c.groups, "|") {
			t.Errorf("%q: groups %q, want %q", c.line, m[1:], c.groups)
		}
	}
	if got := (QuickSand{File: "a b.pdf"}).Removed("", RemovedTooBig).Line; got != "QuickSand removed file a b.pdf in NOQUEUE because it’s too big for analysis" {
		t.Errorf("too big: %q", got)
	}
	if got := (QuickSand{File: "x.doc"}).Authorized("Q1", false).Line; got != "QuickSand authorized encrypted file x.doc in Q1" {
		t.Errorf("encrypted document: %q", got)
	}
	for n, want := range map[int64]string{900: "900B", 2048: "2KB", 80 << 20: "80MB", 3<<20 + 600<<10: "4MB"} {
		if got := quicksandSize(n); got != want {
			t.Errorf("size %d: %q, want %q", n, got, want)
		}
	}
	if Family("quicksand") != "attachment" {
		t.Errorf("quicksand is in family %q, want attachment", Family("quicksand"))
	}
}
