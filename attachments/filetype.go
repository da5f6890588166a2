package attachments

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"
)

// Family is a coarse class of file types, for telling whether a name or a
// declared type lies about the content.
type Family string

// Families.
const (
	FamilyExecutable Family = "executable"
	FamilyScript     Family = "script"
	FamilyArchive    Family = "archive"
	FamilyOffice     Family = "office"
	FamilyPDF        Family = "pdf"
	FamilyImage      Family = "image"
	FamilyAudio      Family = "audio"
	FamilyVideo      Family = "video"
	FamilyText       Family = "text"
	FamilyData       Family = "data"
)

// Type is what a file's content is.
type Type struct {
	// MIME is the detected media type, e.g. "application/x-dosexec".
	MIME string
	// Description is a file(1)-like description, e.g. "PE32 executable
	// (GUI) Intel 80386, for MS Windows". Filetype rules match it (cut at
	// the first comma, as MailScanner does, so the words that matter come
	// first).
	Description string
	Family      Family
	// Ext is the usual extension for the type, without the dot.
	Ext string
	// SelfExtracting: an executable carrying an archive or installer.
	SelfExtracting bool
}

// SniffSize is how many leading bytes Sniff wants (an ISO 9660 volume
// descriptor sits at 32 KiB).
const SniffSize = 64 << 10

// Sniff detects the type of a file from its first bytes (up to SniffSize).
func Sniff(head []byte) Type {
	if t, ok := sniffOwn(head); ok {
		return t
	}
	m := mimetype.Detect(head)
	mt := m.String()
	if odf := odfMIME(head); odf != "" {
		if l := mimetype.Lookup(odf); l != nil {
			m, mt = l, odf
		}
	}
	base := mt
	if i := strings.IndexByte(base, ';'); i >= 0 {
		base = base[:i]
	}
	t := Type{MIME: base, Ext: strings.TrimPrefix(m.Extension(), ".")}
	if d, ok := describeMIME[base]; ok {
		t.Description, t.Family = d.desc, d.family
	} else {
		switch {
		case strings.HasPrefix(base, "image/"):
			t.Description, t.Family = strings.ToUpper(t.Ext)+" image data", FamilyImage
		case strings.HasPrefix(base, "audio/"):
			t.Description, t.Family = "Audio file ("+base+")", FamilyAudio
		case strings.HasPrefix(base, "video/"):
			t.Description, t.Family = "Video file ("+base+")", FamilyVideo
		case strings.HasPrefix(base, "text/"):
			t.Description, t.Family = textDescription(head, "text"), FamilyText
		case base == "application/octet-stream":
			t.Description, t.Family, t.Ext = "data", FamilyData, ""
		default:
			t.Description, t.Family = base+" data", FamilyData
		}
	}
	switch base {
	case "text/plain":
		t.Description = textDescription(head, "text")
	case "text/html", "application/xhtml+xml":
		t.Description = "HTML document, " + textDescription(head, "text")
	case "application/pdf":
		t.Description = "PDF document" + pdfVersion(head)
	}
	if base == "text/plain" && looksLikeBatch(head) {
		t.Description, t.Family, t.Ext, t.MIME = "DOS batch file, "+textDescription(head, "text"), FamilyScript, "bat", "text/x-msdos-batch"
	}
	return t
}

type desc struct {
	desc   string
	family Family
}

var describeMIME = map[string]desc{
	"application/zip":                         {"Zip archive data, at least v2.0 to extract", FamilyArchive},
	"application/java-archive":                {"Java archive data (JAR)", FamilyExecutable},
	"application/vnd.android.package-archive": {"Android package (APK)", FamilyExecutable},
	"application/gzip":                        {"gzip compressed data", FamilyArchive},
	"application/x-bzip2":                     {"bzip2 compressed data", FamilyArchive},
	"application/x-xz":                        {"XZ compressed data", FamilyArchive},
	"application/zstd":                        {"Zstandard compressed data", FamilyArchive},
	"application/lzip":                        {"lzip compressed data", FamilyArchive},
	"application/x-7z-compressed":             {"7-zip archive data", FamilyArchive},
	"application/vnd.rar":                     {"RAR archive data", FamilyArchive},
	"application/x-tar":                       {"POSIX tar archive", FamilyArchive},
	"application/x-xar":                       {"xar archive", FamilyArchive},
	"application/x-cpio":                      {"cpio archive", FamilyArchive},
	"application/x-archive":                   {"current ar archive", FamilyArchive},
	"application/vnd.debian.binary-package":   {"Debian binary package", FamilyArchive},
	"application/x-rpm":                       {"RPM package", FamilyArchive},
	"application/vnd.ms-cab-compressed":       {"Microsoft Cabinet archive data", FamilyArchive},
	"application/x-installshield":             {"InstallShield Cabinet archive data", FamilyArchive},
	"application/zlib":                        {"zlib compressed data", FamilyArchive},
	"application/x-chrome-extension":          {"Google Chrome extension", FamilyExecutable},
	"application/pdf":                         {"PDF document", FamilyPDF},
	"application/vnd.fdf":                     {"FDF document", FamilyPDF},
	"application/postscript":                  {"PostScript document text", FamilyText},
	"text/rtf":                                {"Rich Text Format data, version 1", FamilyOffice},
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   {"Microsoft Word 2007+", FamilyOffice},
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         {"Microsoft Excel 2007+", FamilyOffice},
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": {"Microsoft PowerPoint 2007+", FamilyOffice},
	"application/vnd.ms-visio.drawing.main+xml":                                 {"Microsoft Visio 2013+", FamilyOffice},
	"application/epub+zip":                            {"EPUB document", FamilyOffice},
	"application/vnd.oasis.opendocument.text":         {"OpenDocument Text", FamilyOffice},
	"application/vnd.oasis.opendocument.spreadsheet":  {"OpenDocument Spreadsheet", FamilyOffice},
	"application/vnd.oasis.opendocument.presentation": {"OpenDocument Presentation", FamilyOffice},
	"application/vnd.oasis.opendocument.graphics":     {"OpenDocument Drawing", FamilyOffice},
	"application/x-ole-storage":                       {"Composite Document File V2 Document", FamilyOffice},
	"application/msword":                              {"Composite Document File V2 Document, Microsoft Word", FamilyOffice},
	"application/vnd.ms-excel":                        {"Composite Document File V2 Document, Microsoft Excel", FamilyOffice},
	"application/vnd.ms-powerpoint":                   {"Composite Document File V2 Document, Microsoft PowerPoint", FamilyOffice},
	"application/vnd.ms-outlook":                      {"CDFV2 Microsoft Outlook Message", FamilyOffice},
	"application/vnd.ms-publisher":                    {"Composite Document File V2 Document, Microsoft Publisher", FamilyOffice},
	"application/x-ms-installer":                      {"MSI Installer Composite Document File V2 Document", FamilyExecutable},
	"application/onenote":                             {"Microsoft OneNote", FamilyOffice},
	"application/x-msaccess":                          {"Microsoft Access Database", FamilyOffice},
	"application/vnd.ms-htmlhelp":                     {"MS Windows HtmlHelp Data", FamilyExecutable},
	"application/x-shockwave-flash":                   {"Macromedia Flash data", FamilyExecutable},
	"application/x-java-applet":                       {"compiled Java class data", FamilyExecutable},
	"application/x-ms-shortcut":                       {"MS Windows shortcut", FamilyExecutable},
	"application/vnd.microsoft.portable-executable":   {"PE32 executable, for MS Windows", FamilyExecutable},
	"application/x-mach-binary":                       {"Mach-O executable", FamilyExecutable},
	"application/x-elf":                               {"ELF executable", FamilyExecutable},
	"application/x-executable":                        {"ELF executable", FamilyExecutable},
	"application/x-sharedlib":                         {"ELF shared object", FamilyExecutable},
	"application/x-object":                            {"ELF relocatable", FamilyExecutable},
	"application/x-coredump":                          {"ELF core file", FamilyData},
	"application/wasm":                                {"WebAssembly (wasm) binary module", FamilyExecutable},
	"application/x-bytecode.python":                   {"python compiled byte-compiled", FamilyExecutable},
	"text/x-shellscript":                              {"POSIX shell script, ASCII text executable", FamilyScript},
	"text/x-python":                                   {"Python script, ASCII text executable", FamilyScript},
	"text/x-perl":                                     {"Perl script text executable", FamilyScript},
	"text/x-php":                                      {"PHP script, ASCII text", FamilyScript},
	"text/x-ruby":                                     {"Ruby script, ASCII text", FamilyScript},
	"text/x-lua":                                      {"Lua script, ASCII text", FamilyScript},
	"text/x-tcl":                                      {"Tcl script, ASCII text", FamilyScript},
	"text/javascript":                                 {"JavaScript source, ASCII text", FamilyScript},
	"text/html":                                       {"HTML document", FamilyText},
	"application/xhtml+xml":                           {"HTML document", FamilyText},
	"text/xml":                                        {"XML document text", FamilyText},
	"application/json":                                {"JSON text data", FamilyText},
	"text/csv":                                        {"CSV text", FamilyText},
	"text/tab-separated-values":                       {"TSV text", FamilyText},
	"text/vcard":                                      {"vCard visiting card text", FamilyText},
	"text/calendar":                                   {"vCalendar calendar file text", FamilyText},
	"image/svg+xml":                                   {"SVG Scalable Vector Graphics image", FamilyImage},
	"image/png":                                       {"PNG image data", FamilyImage},
	"image/jpeg":                                      {"JPEG image data", FamilyImage},
	"image/gif":                                       {"GIF image data", FamilyImage},
	"image/bmp":                                       {"PC bitmap", FamilyImage},
	"image/tiff":                                      {"TIFF image data", FamilyImage},
	"image/x-icon":                                    {"MS Windows icon resource", FamilyImage},
	"image/vnd.adobe.photoshop":                       {"Adobe Photoshop Image", FamilyImage},
	"image/heic":                                      {"ISO Media, HEIF Image HEVC Main or Main Still Picture Profile", FamilyImage},
	"image/vnd.djvu":                                  {"DjVu image or single page document", FamilyImage},
	"image/vnd.dwg":                                   {"DWG AutoDesk AutoCAD drawing", FamilyImage},
	"message/rfc822":                                  {"RFC 822 mail text", FamilyText},
}

// odfMIME reads the media type an OpenDocument file stores uncompressed in
// its first zip entry, "mimetype" (mimetype's own guess can be off).
func odfMIME(b []byte) string {
	if len(b) < 38 || !bytes.HasPrefix(b, []byte("PK\x03\x04")) || string(b[30:38]) != "mimetype" {
		return ""
	}
	n := int(binary.LittleEndian.Uint32(b[18:]))
	if binary.LittleEndian.Uint16(b[8:]) != 0 || n <= 0 || n > 100 || 38+int(binary.LittleEndian.Uint16(b[28:]))+n > len(b) {
		return ""
	}
	start := 30 + int(binary.LittleEndian.Uint16(b[26:])) + int(binary.LittleEndian.Uint16(b[28:]))
	if start+n > len(b) {
		return ""
	}
	return string(b[start : start+n])
}

// sniffOwn recognises what mimetype does not describe finely enough for
// the rules: Windows and DOS executables (with self-extractors), ELF and
// Mach-O details, registry files, scripts with #!, and a few archives.
func sniffOwn(b []byte) (Type, bool) {
	switch {
	case len(b) >= 2 && b[0] == 'M' && b[1] == 'Z':
		return sniffMZ(b), true
	case len(b) >= 20 && bytes.HasPrefix(b, []byte("\x7fELF")):
		return sniffELF(b), true
	case bytes.HasPrefix(b, []byte("REGEDIT4")):
		return Type{MIME: "text/x-ms-regedit", Description: "Windows Registry text (Win95 or above)", Family: FamilyScript, Ext: "reg"}, true
	case bytes.HasPrefix(b, []byte("Windows Registry Editor Version 5.00")):
		return Type{MIME: "text/x-ms-regedit", Description: "Windows Registry text (Win2K or above)", Family: FamilyScript, Ext: "reg"}, true
	case bytes.HasPrefix(b, []byte("\xff\xfeW\x00i\x00n\x00d\x00o\x00w\x00s\x00 \x00R\x00e\x00g\x00i\x00s\x00t\x00r\x00y\x00")):
		return Type{MIME: "text/x-ms-regedit", Description: "Windows Registry little-endian text (Win2K or above)", Family: FamilyScript, Ext: "reg"}, true
	case bytes.HasPrefix(b, []byte("regf")):
		return Type{MIME: "application/x-ms-registry", Description: "MS Windows registry file, NT/2000 or above", Family: FamilyScript, Ext: "dat"}, true
	case bytes.HasPrefix(b, []byte("#!")):
		return sniffShebang(b), true
	case len(b) >= 2 && b[0] == 0x60 && b[1] == 0xea:
		return Type{MIME: "application/x-arj", Description: "ARJ archive data", Family: FamilyArchive, Ext: "arj"}, true
	case len(b) >= 14 && bytes.Equal(b[7:14], []byte("**ACE**")):
		return Type{MIME: "application/x-ace-compressed", Description: "ACE archive data", Family: FamilyArchive, Ext: "ace"}, true
	case len(b) >= 24 && bytes.HasPrefix(b, []byte("ZOO ")) && binary.LittleEndian.Uint32(b[20:]) == 0xfdc4a7dc:
		return Type{MIME: "application/x-zoo", Description: "Zoo archive data", Family: FamilyArchive, Ext: "zoo"}, true
	case IsOLE(b):
		if t, ok := oleType(b); ok {
			return t, true
		}
		return Type{MIME: "application/x-ole-storage", Description: "Composite Document File V2 Document", Family: FamilyOffice, Ext: "ole"}, true
	case len(b) >= 262 && bytes.Equal(b[257:262], []byte("ustar")):
		return Type{MIME: "application/x-tar", Description: "POSIX tar archive", Family: FamilyArchive, Ext: "tar"}, true
	case bytes.HasPrefix(b, []byte("\x04\x22\x4d\x18")) || bytes.HasPrefix(b, []byte("\x02\x21\x4c\x18")) || bytes.HasPrefix(b, []byte("mozLz40\x00")):
		return Type{MIME: "application/x-lz4", Description: "LZ4 compressed data", Family: FamilyArchive, Ext: "lz4"}, true
	case len(b) >= 0x8006 && bytes.Equal(b[0x8001:0x8006], []byte("CD001")):
		return Type{MIME: "application/x-iso9660-image", Description: "ISO 9660 CD-ROM filesystem data", Family: FamilyArchive, Ext: "iso"}, true
	case len(b) >= 4 && b[0] == 0x0a && b[1] <= 5 && b[2] == 1 && (b[3] == 1 || b[3] == 2 || b[3] == 4 || b[3] == 8):
		return Type{MIME: "image/x-pcx", Description: "PCX ver. image data", Family: FamilyImage, Ext: "pcx"}, true
	case bytes.HasPrefix(b, []byte("ITSF\x03\x00\x00\x00")):
		return Type{MIME: "application/vnd.ms-htmlhelp", Description: "MS Windows HtmlHelp Data", Family: FamilyExecutable, Ext: "chm"}, true
	}
	return Type{}, false
}

var peMachines = map[uint16]string{
	0x14c: "Intel 80386", 0x8664: "x86-64", 0x1c0: "ARM", 0x1c4: "ARMv7 Thumb", 0xaa64: "Aarch64", 0x200: "Intel Itanium",
}

var peSubsystems = map[uint16]string{
	1: "native", 2: "GUI", 3: "console", 9: "Windows CE GUI", 10: "EFI application", 11: "EFI boot service driver", 12: "EFI runtime driver",
}

// sniffMZ describes a DOS/Windows executable from its headers.
func sniffMZ(b []byte) Type {
	t := Type{MIME: "application/x-dosexec", Description: "MS-DOS executable", Family: FamilyExecutable, Ext: "exe"}
	if len(b) < 0x40 {
		return t
	}
	off := int(binary.LittleEndian.Uint32(b[0x3c:]))
	if off <= 0 || off+24 > len(b) || !bytes.Equal(b[off:off+4], []byte("PE\x00\x00")) {
		return t
	}
	machine := binary.LittleEndian.Uint16(b[off+4:])
	chars := binary.LittleEndian.Uint16(b[off+22:])
	opt := off + 24
	kind := "PE32"
	sub := ""
	clr := false
	if opt+70 <= len(b) {
		switch binary.LittleEndian.Uint16(b[opt:]) {
		case 0x20b:
			kind = "PE32+"
		}
		if s, ok := peSubsystems[binary.LittleEndian.Uint16(b[opt+68:])]; ok {
			sub = s
		}
		// Data directory 14 (CLR runtime header) marks a .NET assembly.
		dd := opt + 96
		if kind == "PE32+" {
			dd = opt + 112
		}
		if dd+15*8 <= len(b) && binary.LittleEndian.Uint32(b[dd+14*8:]) != 0 {
			clr = true
		}
	}
	var d strings.Builder
	d.WriteString(kind + " executable")
	if chars&0x2000 != 0 {
		d.WriteString(" (DLL)")
	}
	if sub != "" {
		d.WriteString(" (" + sub + ")")
	}
	if m, ok := peMachines[machine]; ok {
		d.WriteString(" " + m)
	}
	if clr {
		d.WriteString(" Mono/.Net assembly")
	}
	if sfx := selfExtractor(b); sfx != "" {
		// The words MailScanner's rules look for go before the first
		// comma; "archive" after it, or "allow archive" would win.
		d.WriteString(" self-extracting, for MS Windows, " + sfx)
		t.SelfExtracting = true
	} else {
		d.WriteString(", for MS Windows")
	}
	t.MIME = "application/vnd.microsoft.portable-executable"
	t.Description = d.String()
	if chars&0x2000 != 0 {
		t.Ext = "dll"
	}
	return t
}

// selfExtractor looks for the marks of an archive or installer payload
// after the headers of an executable.
func selfExtractor(b []byte) string {
	if len(b) <= 0x400 {
		return ""
	}
	tail := b[0x400:]
	for _, m := range []struct{ sig, name string }{
		{"NullsoftInst", "Nullsoft Installer archive"},
		{"Inno Setup Setup Data", "Inno Setup installer"},
		{"WinZip Self-Extractor", "WinZip self-extractor"},
		{"Rar!\x1a\x07", "RAR archive"},
		{"7z\xbc\xaf\x27\x1c", "7-zip archive"},
		{"MSCF\x00\x00\x00\x00", "Microsoft Cabinet archive"},
		{"PK\x03\x04", "Zip archive"},
	} {
		if bytes.Contains(tail, []byte(m.sig)) {
			return m.name
		}
	}
	return ""
}

var elfMachines = map[uint16]string{
	3: "Intel 80386", 0x3e: "x86-64", 0x28: "ARM", 0xb7: "ARM aarch64", 8: "MIPS", 0x14: "PowerPC", 0x15: "64-bit PowerPC", 0xf3: "UCB RISC-V", 2: "SPARC", 0x2b: "SPARC V9",
}

func sniffELF(b []byte) Type {
	t := Type{MIME: "application/x-executable", Family: FamilyExecutable}
	bits := "32-bit"
	if b[4] == 2 {
		bits = "64-bit"
	}
	var bo binary.ByteOrder = binary.LittleEndian
	endian := "LSB"
	if b[5] == 2 {
		bo, endian = binary.BigEndian, "MSB"
	}
	kind := "executable"
	switch bo.Uint16(b[16:]) {
	case 1:
		kind, t.MIME = "relocatable", "application/x-object"
	case 3:
		kind, t.MIME = "shared object", "application/x-sharedlib"
	case 4:
		kind, t.MIME, t.Family = "core file", "application/x-coredump", FamilyData
	}
	d := fmt.Sprintf("ELF %s %s %s", bits, endian, kind)
	if m, ok := elfMachines[bo.Uint16(b[18:])]; ok {
		d += ", " + m
	}
	t.Description = d + ", version 1 (SYSV)"
	return t
}

func sniffShebang(b []byte) Type {
	line := b
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	interp := strings.TrimSpace(string(line[2:]))
	f := strings.Fields(interp)
	prog := ""
	if len(f) > 0 {
		prog = f[0][strings.LastIndexByte(f[0], '/')+1:]
		if prog == "env" && len(f) > 1 {
			prog = f[1]
		}
	}
	t := Type{MIME: "text/x-script", Family: FamilyScript}
	switch {
	case prog == "sh" || prog == "dash":
		t.Description, t.MIME, t.Ext = "POSIX shell script, ASCII text executable", "text/x-shellscript", "sh"
	case prog == "bash":
		t.Description, t.MIME, t.Ext = "Bourne-Again shell script, ASCII text executable", "text/x-shellscript", "sh"
	case strings.HasPrefix(prog, "python"):
		t.Description, t.MIME, t.Ext = "Python script, ASCII text executable", "text/x-python", "py"
	case strings.HasPrefix(prog, "perl"):
		t.Description, t.MIME, t.Ext = "Perl script text executable", "text/x-perl", "pl"
	case strings.HasPrefix(prog, "ruby"):
		t.Description, t.MIME, t.Ext = "Ruby script, ASCII text executable", "text/x-ruby", "rb"
	case strings.HasPrefix(prog, "php"):
		t.Description, t.MIME, t.Ext = "PHP script, ASCII text executable", "text/x-php", "php"
	default:
		t.Description = "a " + truncateString(interp, 60) + " script, ASCII text executable"
	}
	return t
}

// looksLikeBatch reports a DOS batch file.
func looksLikeBatch(b []byte) bool {
	s := strings.ToLower(string(b[:min(len(b), 512)]))
	s = strings.TrimLeft(s, " \t\r\n")
	return strings.HasPrefix(s, "@echo off") || strings.HasPrefix(s, "@echo on") ||
		strings.HasPrefix(s, "echo off") || strings.HasPrefix(s, "@rem") || strings.HasPrefix(s, "rem ") ||
		strings.Contains(s, "\n@echo off") || strings.Contains(s, "\ngoto ") && strings.Contains(s, "\n:")
}

// textDescription says what kind of text b is, as file(1) does.
func textDescription(b []byte, what string) string {
	if bytes.HasPrefix(b, []byte("\xff\xfe")) {
		return "Unicode text, UTF-16, little-endian " + what
	}
	if bytes.HasPrefix(b, []byte("\xfe\xff")) {
		return "Unicode text, UTF-16, big-endian " + what
	}
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	switch {
	case ascii:
		return "ASCII " + what
	case utf8.Valid(trimPartialRune(b)):
		return "UTF-8 Unicode " + what
	}
	return "ISO-8859 " + what
}

// trimPartialRune drops a UTF-8 sequence cut off at the end of b.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= 3 && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			break
		}
	}
	return b
}

func pdfVersion(b []byte) string {
	if len(b) >= 8 && bytes.HasPrefix(b, []byte("%PDF-")) {
		v := b[5:8]
		if v[0] >= '0' && v[0] <= '9' && v[1] == '.' && v[2] >= '0' && v[2] <= '9' {
			return ", version " + string(v)
		}
	}
	return ""
}

// extFamilies maps an extension to the family its content should have.
// Only extensions whose family is clear are listed: a mismatch is reported
// when the content is of a more dangerous family than the name claims.
var extFamilies = map[string][]Family{
	"jpg": {FamilyImage}, "jpeg": {FamilyImage}, "png": {FamilyImage}, "gif": {FamilyImage}, "bmp": {FamilyImage},
	"tif": {FamilyImage}, "tiff": {FamilyImage}, "ico": {FamilyImage}, "webp": {FamilyImage}, "heic": {FamilyImage},
	"pdf": {FamilyPDF},
	"txt": {FamilyText, FamilyData, FamilyScript}, "csv": {FamilyText, FamilyData}, "log": {FamilyText, FamilyData, FamilyScript},
	"htm": {FamilyText}, "html": {FamilyText},
	"doc": {FamilyOffice}, "xls": {FamilyOffice}, "ppt": {FamilyOffice}, "rtf": {FamilyOffice, FamilyText},
	"docx": {FamilyOffice}, "xlsx": {FamilyOffice}, "pptx": {FamilyOffice},
	"docm": {FamilyOffice}, "xlsm": {FamilyOffice}, "pptm": {FamilyOffice}, "xlsb": {FamilyOffice},
	"odt": {FamilyOffice}, "ods": {FamilyOffice}, "odp": {FamilyOffice},
	"zip": {FamilyArchive, FamilyOffice, FamilyExecutable}, "gz": {FamilyArchive}, "tgz": {FamilyArchive},
	"bz2": {FamilyArchive}, "xz": {FamilyArchive}, "7z": {FamilyArchive}, "rar": {FamilyArchive}, "tar": {FamilyArchive},
	"mp3": {FamilyAudio}, "wav": {FamilyAudio}, "ogg": {FamilyAudio, FamilyVideo},
	"mp4": {FamilyVideo, FamilyAudio}, "avi": {FamilyVideo}, "mov": {FamilyVideo}, "mkv": {FamilyVideo},
}

// declaredFamilies maps a declared Content-Type to the families its
// content may have; types not listed say nothing.
func declaredFamilies(mediaType string) []Family {
	switch {
	case strings.HasPrefix(mediaType, "image/") && mediaType != "image/svg+xml":
		return []Family{FamilyImage}
	case strings.HasPrefix(mediaType, "audio/"):
		return []Family{FamilyAudio, FamilyVideo}
	case strings.HasPrefix(mediaType, "video/"):
		return []Family{FamilyVideo, FamilyAudio}
	case mediaType == "application/pdf":
		return []Family{FamilyPDF}
	case mediaType == "text/plain":
		return []Family{FamilyText, FamilyData, FamilyScript}
	}
	return nil
}

// dangerous families are the ones a lying name or type hides.
func (f Family) dangerous() bool {
	switch f {
	case FamilyExecutable, FamilyScript, FamilyOffice, FamilyArchive:
		return true
	}
	return false
}

// Mismatch says whether the content type t is more dangerous than the
// name (its extension) or the declared media type claims, and how; "" when
// they agree or say nothing.
func Mismatch(name, declared string, t Type) string {
	if !t.Family.dangerous() {
		return ""
	}
	if ext := Extension(name); ext != "" {
		if fams, ok := extFamilies[ext]; ok && !hasFamily(fams, t.Family) {
			// An encrypted OOXML document is an OLE file with an OOXML name.
			return fmt.Sprintf("name says .%s, content is %s (%s)", ext, t.Family, firstField(t.Description))
		}
	}
	if fams := declaredFamilies(declared); fams != nil && !hasFamily(fams, t.Family) {
		return fmt.Sprintf("declared %s, content is %s (%s)", declared, t.Family, firstField(t.Description))
	}
	return ""
}

func hasFamily(fs []Family, f Family) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

func firstField(d string) string {
	if i := strings.IndexByte(d, ','); i >= 0 {
		return d[:i]
	}
	return d
}
