package attachments

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/checks/checktest"
)

func loadMS(t *testing.T, name string) *RuleSet {
	t.Helper()
	rs, err := LoadRules(filepath.Join(checktest.Corpus(t, "mailscanner-default-rules"), name))
	if err != nil {
		t.Fatalf("MailScanner's %s does not load: %v", name, err)
	}
	return rs
}

// MailScanner's own default rule files load unchanged, and decide as
// MailScanner does: first match wins, no match allows, the Perl
// backreference rule works.
func TestMailScannerDefaultFilenameRules(t *testing.T) {
	for _, file := range []string{"filename.rules.conf", "archives.filename.rules.conf"} {
		rs := loadMS(t, file)
		if len(rs.Rules) < 60 {
			t.Errorf("%s: %d rules", file, len(rs.Rules))
		}
		check := func(name string, want ActionKind, wantLog string) {
			t.Helper()
			r := rs.MatchName(name)
			got, log := Allow, ""
			if r != nil {
				got, log = r.Action, r.LogText
			}
			if got != want || (wantLog != "" && log != wantLog) {
				t.Errorf("%s: %q → %v %q, want %v %q", file, name, got, log, want, wantLog)
			}
		}
		check("invoice.exe", Deny, "Windows/DOS Executable")
		check("INVOICE.EXE", Deny, "Windows/DOS Executable")
		check("invoice.pdf.exe", Deny, "Windows/DOS Executable")
		check("photo.jpg", Allow, "")
		check("report.pdf", Allow, "")    // no rule matches: allowed
		check("backup.tar.gz", Allow, "") // \.t?gz$
		check("data.zip.zip", Allow, "")  // \.zip$ comes first
		check("notes.abc.abc", Allow, "") // (\.[a-z0-9]{3})\1$
		check("notes.ABC.abc", Allow, "") // case-insensitive backreference
		check("notes.abc.abd", Deny, "Found possible filename hiding")
		check("minutes.wed.doc", Allow, "") // day of the week
		check("invoice.doc.pdf", Deny, "Found possible filename hiding")
		check("invoice.doc  .pdf", Deny, "Found possible filename hiding")
		check("a"+strings.Repeat("b", 160)+".pdf", Deny, "Very long filename, possible OE attack")
		check("x{00020D04-0000-0000-C000-000000000046}.txt", Allow, "") // \.txt$ … no: CLSID comes later
		check("x{00020D04-0000-0000-C000-000000000046}", Deny, "Filename trying to hide its real type")
		check("happy99.exe", Deny, `"Happy" virus`)
		check("a           b", Deny, "Filename contains lots of white space")
		check("script.vbs", Deny, "Possible Microsoft Visual Basic script attack")
		check("shortcut.lnk", Deny, "Possible Eudora *.lnk security hole attack")
	}
	// A rename rule, and the case of the replacement text.
	rs := loadMS(t, "filename.rules.conf")
	r := rs.MatchName("form.fdf")
	if r == nil || r.Action != Rename || r.LogText != "Dangerous Adobe Acrobat data-file" {
		t.Fatalf("form.fdf: %+v", r)
	}
	if got := r.RenamedName("form.fdf", "__FILENAME__.disarmed"); got != "form.fdf.disarmed" {
		t.Errorf("renamed %q", got)
	}
	rt, err := ParseRules("t", strings.NewReader("rename to .PPT\t\\.pps$\tRenamed\tRenamed\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.Rules[0].RenamedName("show.pps", ""); got != "show.PPT" {
		t.Errorf("rename to: %q", got)
	}
}

func TestMailScannerDefaultFiletypeRules(t *testing.T) {
	for _, file := range []string{"filetype.rules.conf", "archives.filetype.rules.conf"} {
		rs := loadMS(t, file)
		check := func(desc string, want ActionKind, wantLog string) {
			t.Helper()
			r := rs.MatchType(desc)
			got, log := Allow, ""
			if r != nil {
				got, log = r.Action, r.LogText
			}
			if got != want || log != wantLog {
				t.Errorf("%s: %q → %v %q, want %v %q", file, desc, got, log, want, wantLog)
			}
		}
		check("PE32 executable (GUI) Intel 80386, for MS Windows", Deny, "No executables")
		check("ELF 64-bit LSB executable, x86-64, version 1 (SYSV)", Deny, "No executables")
		check("ELF 64-bit LSB shared object, x86-64", Deny, "No executables")
		check("PE32 executable (GUI) Intel 80386 self-extracting, for MS Windows, Zip archive", Deny, "No self-extracting archives")
		check("ASCII text", Allow, "")
		check("Zip archive data, at least v2.0 to extract", Allow, "")
		check("POSIX shell script, ASCII text executable", Allow, "") // \bscript, cut at the comma
		check("PDF document, version 1.4", Allow, "")
		check("MS-DOS executable", Deny, "No executables")
	}
	// The MIME pass is separate and only uses rules with a MIME regex.
	rs, err := ParseRules("t", strings.NewReader("deny\t-\tx-dosexec\tNo DOS executables\tNo DOS programs allowed\nallow\ttext\t-\t-\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := rs.MatchMIME("application/x-dosexec; charset=binary"); r == nil || r.LogText != "No DOS executables" {
		t.Errorf("MIME rule: %+v", r)
	}
	if r := rs.MatchType("PE32 executable"); r != nil {
		t.Errorf("a '-' regex must not match descriptions: %+v", r)
	}
	if r := rs.MatchType("ASCII text"); r == nil || r.Action != Allow {
		t.Errorf("text: %+v", r)
	}
}

func TestRuleParseErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"deny\t\\.exe$\tonly three\n", "t:1: fewer than 4"},
		{"# c\n\nfrobnicate\t\\.exe$\tx\ty\n", "t:3: unknown action"},
		{"deny\t(?=x)\\.exe$\tx\ty\n", `t:1: regex "(?=x)\\.exe$": the Perl construct "(?=" has no RE2 equivalent`},
		{"deny\t(a+)\\1\tx\ty\n", "t:1: regex \"(a+)\\\\1\": backreference in a pattern that is not fixed-width"},
		{"deny\t[\tx\ty\n", "t:1: regex \"[\""},
		{"deny\ta++\tx\ty\n", "possessive"},
	}
	for _, c := range cases {
		_, err := ParseRules("t", strings.NewReader(c.in))
		var re *RuleError
		if err == nil || !errors.As(err, &re) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
	// What does load.
	rs, err := ParseRules("t", strings.NewReader(
		"Deny+Delete\t/\\.scr$/\tScreen saver\t-\n"+
			"alice@example.com, bob@example.com\t\\.mp3$\tMusic\tMusic\n"+
			"deny\t*.bad\tbad\tbad\n"+
			"deny\t\\Qa.b\\E$\tq\tq\n"+
			"deny\tx\\Z\tz\tz\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := rs.Rules[0]; r.Action != DenyDelete || r.UserText != "" || !r.re.match("SAVER.SCR") {
		t.Errorf("deny+delete: %+v", r)
	}
	if r := rs.Rules[1]; r.Action != Redirect || len(r.Addresses) != 2 {
		t.Errorf("addresses: %+v", r)
	}
	if !rs.Rules[2].re.match("file.bad") {
		t.Error("leading * not read as .*")
	}
	if !rs.Rules[3].re.match("xa.b") || rs.Rules[3].re.match("xaxb") {
		t.Error(`\Q…\E`)
	}
	if !rs.Rules[4].re.match("ax") {
		t.Error(`\Z`)
	}
}

func TestBackreferenceMatch(t *testing.T) {
	p, err := compilePerl(`(\.[a-z0-9]{3})\1$`)
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{
		"a.zip.zip": true, "a.ZIP.zip": true, "a.zip.rar": false, ".tar.tar.tar": true,
		"x.tar.tarx": false, "": false, "a.b.c": false, "é.doc.doc": true,
	} {
		if got := p.match(s); got != want {
			t.Errorf("%q: %v, want %v", s, got, want)
		}
	}
	p, err = compilePerl(`^(ab)x\1`)
	if err != nil {
		t.Fatal(err)
	}
	if !p.match("abxab") || p.match("zabxab") {
		t.Error("anchored backreference")
	}
}
