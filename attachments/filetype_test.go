package attachments

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/checks/checktest"
)

// label turns a detected type into the short names rspamd's gargantua.eml
// uses in its X-Real-Type headers.
func label(t Type) string {
	switch {
	case strings.HasPrefix(t.Description, "ELF"):
		return "elf"
	case t.MIME == "application/vnd.microsoft.portable-executable" || t.MIME == "application/x-dosexec":
		return "exe"
	case t.MIME == "application/x-java-applet":
		return "class"
	case t.MIME == "text/plain":
		return "txt"
	case t.MIME == "application/x-ole-storage":
		return "ole"
	}
	switch t.Ext {
	case "jpeg":
		return "jpg"
	case "tif":
		return "tiff"
	case "htm":
		return "html"
	case "heif":
		return "heic"
	case "xml", "rss":
		return "xml"
	}
	return t.Ext
}

// gargantua.eml: 59 attachments, each labelled with its real type, all
// declared application/octet-stream. Detection must agree on most, and
// every executable must be seen as one.
func TestGargantuaFiletypes(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(checktest.Corpus(t, "rspamd-functional"), "messages", "gargantua.eml"))
	if err != nil {
		t.Fatal(err)
	}
	tree := walkBytes(raw)
	agree, total := 0, 0
	var differ []string
	for _, e := range tree.Root.Leaves() {
		real := strings.Fields(e.Header.Get("X-Real-Type"))
		if len(real) == 0 {
			continue
		}
		total++
		head, _ := io.ReadAll(io.LimitReader(e.Open(), SniffSize))
		ty := Sniff(head)
		want := real[0]
		got := label(ty)
		ok := got == want ||
			(want == "html-with-svg" && got == "html") ||
			(want == "msi" && (got == "msi" || got == "ole")) ||
			(want == "vsd" && got == "ole") || (want == "msg" && got == "msg") ||
			(want == "bat" && ty.Family == FamilyScript) ||
			(want == "ps" && got == "ps") || (want == "pkg" && got == "xar") ||
			(want == "dmg" && ty.Family == FamilyArchive)
		if ok {
			agree++
		} else {
			differ = append(differ, want+"→"+got+" ("+ty.Description+")")
		}
		if (want == "exe" || want == "elf") && ty.Family != FamilyExecutable {
			t.Errorf("%s detected as %q", want, ty.Description)
		}
	}
	t.Logf("gargantua.eml: %d of %d attachment types agree with X-Real-Type", agree, total)
	for _, d := range differ {
		t.Logf("differs: %s", d)
	}
	if total != 59 {
		t.Errorf("%d labelled parts, want 59", total)
	}
	if agree < 50 {
		t.Errorf("only %d/%d agree", agree, total)
	}
}

func TestSniffDescriptions(t *testing.T) {
	pe := make([]byte, 0x200)
	copy(pe, "MZ")
	pe[0x3c] = 0x80
	copy(pe[0x80:], "PE\x00\x00\x4c\x01")
	pe[0x80+24], pe[0x80+25] = 0x0b, 0x01 // PE32
	pe[0x80+24+68] = 2                    // GUI
	cases := []struct {
		in   []byte
		want string
		fam  Family
	}{
		{pe, "PE32 executable (GUI) Intel 80386, for MS Windows", FamilyExecutable},
		{append(append([]byte{}, pe...), append(make([]byte, 0x400), "PK\x03\x04"...)...), "PE32 executable (GUI) Intel 80386 self-extracting, for MS Windows, Zip archive", FamilyExecutable},
		{[]byte("MZ\x90\x00"), "MS-DOS executable", FamilyExecutable},
		{[]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"), "ELF 64-bit LSB executable, x86-64, version 1 (SYSV)", FamilyExecutable},
		{[]byte("#!/bin/sh\necho hi\n"), "POSIX shell script, ASCII text executable", FamilyScript},
		{[]byte("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER]"), "Windows Registry text (Win2K or above)", FamilyScript},
		{[]byte("@echo off\r\ndel c:\\x\r\n"), "DOS batch file, ASCII text", FamilyScript},
		{[]byte("Hello, world.\n"), "ASCII text", FamilyText},
		{[]byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), "PDF document, version 1.7", FamilyPDF},
	}
	for _, c := range cases {
		got := Sniff(c.in)
		if got.Description != c.want || got.Family != c.fam {
			t.Errorf("%q: %q %s, want %q %s", c.in[:min(len(c.in), 12)], got.Description, got.Family, c.want, c.fam)
		}
	}
	if m := Mismatch("photo.jpg", "image/jpeg", Sniff(pe)); !strings.Contains(m, "name says .jpg, content is executable") {
		t.Errorf("mismatch: %q", m)
	}
	if m := Mismatch("photo.png", "image/png", Type{Family: FamilyImage}); m != "" {
		t.Errorf("image named png: %q", m)
	}
	if m := Mismatch("data.bin", "image/gif", Sniff(pe)); !strings.Contains(m, "declared image/gif") {
		t.Errorf("declared: %q", m)
	}
}
