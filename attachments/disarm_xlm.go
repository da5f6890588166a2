package attachments

import (
	"encoding/binary"
	"strings"
	"unicode/utf16"
)

// neutraliseXLM turns the Excel 4 macro sheets of a BIFF5 or BIFF8
// workbook (.xls .xlt) into worksheets, in place, in a copy of data.
// Every change keeps the length of the record it touches, so no offset
// (BOUNDSHEET lbPlyPos, stream and sector sizes) moves:
//
//   - the BOUNDSHEET record of each macro sheet gets the sheet type 0
//     (worksheet) instead of 1 (macro sheet); its visibility stays;
//   - the BOF record that opens the macro sheet's substream, found at the
//     lbPlyPos of its BOUNDSHEET, gets the type 0x0010 (worksheet) instead
//     of 0x0040 (macro sheet), so the workbook stays consistent;
//   - the defined names Excel runs by themselves (the built-in Auto_Open,
//     Auto_Close, Auto_Activate, Auto_Deactivate, and any name spelled
//     Auto_Open... or Auto_Close... and the like) lose the built-in flag and
//     the function, command and VB-procedure flags and get a name of the
//     same length that is no auto-run name and no other name of the
//     workbook.
//
// Why this removes the danger and not only the detection: Excel runs
// Excel 4 formulas as macros only on a macro sheet (command functions
// such as EXEC, CALL, REGISTER are refused in worksheet formulas), and it
// starts a macro by itself only through an Auto_Open-like name. After the
// change the formulas are ordinary worksheet cells and nothing starts
// them. Encrypted workbooks (FILEPASS) are refused before this is reached:
// their records cannot be read.
func neutraliseXLM(o *OLE, data []byte) ([]byte, []string, error) {
	i := o.Find("Workbook")
	if i < 0 {
		i = o.Find("Book")
	}
	if i < 0 {
		return nil, nil, cannot("Excel 4 macro sheet outside a Workbook stream")
	}
	wb, err := o.Stream(i, 64<<20)
	if err != nil {
		return nil, nil, cannot("Excel workbook stream: %v", err)
	}
	wb = append([]byte(nil), wb...)
	removed, err := neutraliseBIFF(wb)
	if err != nil {
		return nil, nil, err
	}
	w, err := newOLEWriter(o, data)
	if err != nil {
		return nil, nil, err
	}
	if err := w.writeStream(i, wb); err != nil {
		return nil, nil, err
	}
	return w.out, removed, nil
}

// biffRecord is one record of a BIFF stream: its type and where its
// body is.
type biffRecord struct {
	typ        uint16
	start, end int
}

// neutraliseBIFF changes the workbook stream wb in place (see
// neutraliseXLM) and says what it changed.
func neutraliseBIFF(wb []byte) ([]string, error) {
	var globals []biffRecord
	for p := 0; p+4 <= len(wb); {
		typ := binary.LittleEndian.Uint16(wb[p:])
		n := int(binary.LittleEndian.Uint16(wb[p+2:]))
		if p+4+n > len(wb) {
			return nil, cannot("Excel workbook: record past the end of its stream")
		}
		globals = append(globals, biffRecord{typ, p + 4, p + 4 + n})
		p += 4 + n
		if typ == 0x000a {
			break
		}
	}
	if len(globals) == 0 || globals[0].typ != 0x0809 || globals[0].end-globals[0].start < 4 {
		return nil, cannot("Excel workbook without a BIFF5/BIFF8 BOF record")
	}
	biff8 := false
	switch binary.LittleEndian.Uint16(wb[globals[0].start:]) {
	case 0x0600:
		biff8 = true
	case 0x0500:
	default:
		return nil, cannot("Excel workbook of BIFF version %#x", binary.LittleEndian.Uint16(wb[globals[0].start:]))
	}
	var removed []string
	for _, r := range globals {
		switch r.typ {
		case 0x002f:
			return nil, cannot("encrypted Excel workbook")
		case 0x0085:
			rec := wb[r.start:r.end]
			if len(rec) < 6 || rec[5] != 1 {
				continue
			}
			bof := int(binary.LittleEndian.Uint32(rec))
			if bof < 0 || bof+8 > len(wb) || binary.LittleEndian.Uint16(wb[bof:]) != 0x0809 ||
				binary.LittleEndian.Uint16(wb[bof+2:]) < 4 || binary.LittleEndian.Uint16(wb[bof+6:]) != 0x0040 {
				return nil, cannot("Excel 4 macro sheet whose BOF record is not where its BOUNDSHEET says")
			}
			rec[5] = 0
			binary.LittleEndian.PutUint16(wb[bof+6:], 0x0010)
			removed = append(removed, "Excel 4 macro sheet "+biffSheetName(rec, biff8)+" (now a worksheet)")
		}
	}
	// The defined names: all of them, to keep the new ones unique.
	type name struct {
		rec  []byte
		text string
		at   int // where the name's characters start in rec
		wide bool
	}
	var names []name
	taken := map[string]bool{}
	for _, r := range globals {
		if r.typ != 0x0018 {
			continue
		}
		rec := wb[r.start:r.end]
		if len(rec) < 15 {
			continue
		}
		cch := int(rec[3])
		at, wide := 14, false
		if biff8 {
			if len(rec) < 16 {
				continue
			}
			wide = rec[14]&1 != 0
			at = 15
		}
		size := cch
		if wide {
			size = 2 * cch
		}
		if at+size > len(rec) {
			return nil, cannot("Excel defined name past its record")
		}
		var text string
		if wide {
			u := make([]uint16, cch)
			for k := range u {
				u[k] = binary.LittleEndian.Uint16(rec[at+2*k:])
			}
			text = string(utf16.Decode(u))
		} else {
			text = latin1((rec[at : at+size]))
		}
		names = append(names, name{rec, text, at, wide})
		if binary.LittleEndian.Uint16(rec)&0x0020 == 0 {
			taken[strings.ToLower(text)] = true
		}
	}
	for _, nm := range names {
		grbit := binary.LittleEndian.Uint16(nm.rec)
		builtin := grbit&0x0020 != 0
		if builtin {
			if nm.text == "" || !isAutoBuiltin(nm.text[0]) {
				continue
			}
		} else if !isAutoName(nm.text) {
			continue
		}
		// The new name: the old one with its first character replaced
		// (a built-in name is one character long), a letter that makes
		// it no auto-run name and no name already in the workbook.
		old := []rune(nm.text)
		if old[0] > 0xffff {
			return nil, cannot("defined name %q", nm.text)
		}
		repl := rune(0)
		for _, c := range "xyzqwjkvXYZQWJKV" {
			cand := string(c) + string(old[1:])
			if !taken[strings.ToLower(cand)] && !isAutoName(cand) && (len(old) > 1 || c != 'r' && c != 'c') {
				repl = c
				taken[strings.ToLower(cand)] = true
				break
			}
		}
		if repl == 0 {
			return nil, cannot("no new name for the defined name %q", nm.text)
		}
		if nm.wide {
			binary.LittleEndian.PutUint16(nm.rec[nm.at:], uint16(repl))
		} else {
			nm.rec[nm.at] = byte(repl)
		}
		// Not built in, no function, command or VB procedure.
		binary.LittleEndian.PutUint16(nm.rec, grbit&^(0x0020|0x0002|0x0004|0x0008))
		shown := nm.text
		if builtin {
			shown = autoBuiltinName(nm.text[0])
		}
		removed = append(removed, "auto-run defined name "+shown)
	}
	return removed, nil
}

// isAutoBuiltin: the built-in names Excel runs by themselves
// ([MS-XLS] 2.5.114): Auto_Open, Auto_Close, Auto_Activate,
// Auto_Deactivate.
func isAutoBuiltin(b byte) bool { return autoBuiltinName(b) != "" }

func autoBuiltinName(b byte) string {
	switch b {
	case 0x01:
		return "Auto_Open"
	case 0x02:
		return "Auto_Close"
	case 0x0a:
		return "Auto_Activate"
	case 0x0b:
		return "Auto_Deactivate"
	}
	return ""
}

// isAutoName: a defined name Excel runs as Auto_Open (or Close, ...) is
// any name that starts with it, in any case.
func isAutoName(s string) bool {
	l := strings.ToLower(s)
	for _, p := range []string{"auto_open", "auto_close", "auto_activate", "auto_deactivate"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// biffSheetName reads the name of a BOUNDSHEET record.
func biffSheetName(rec []byte, biff8 bool) string {
	if len(rec) < 7 {
		return "?"
	}
	n := int(rec[6])
	if !biff8 {
		return latin1((rec[7:min(7+n, len(rec))]))
	}
	if len(rec) < 8 {
		return "?"
	}
	if rec[7]&1 == 0 {
		return latin1((rec[8:min(8+n, len(rec))]))
	}
	u := make([]uint16, 0, n)
	for k := 8; k+2 <= len(rec) && len(u) < n; k += 2 {
		u = append(u, binary.LittleEndian.Uint16(rec[k:]))
	}
	return string(utf16.Decode(u))
}

// writeStream writes b over stream i, sector by sector (b is the stream
// with some bytes changed: its length is the stream's).
func (w *oleWriter) writeStream(i int, b []byte) error {
	e := w.o.Entries[i]
	if uint64(len(b)) != e.Size {
		return cannot("OLE2 stream %s: new content of another size", e.Path)
	}
	secs, ok := w.sectors(i)
	if !ok {
		return cannot("OLE2 stream %s: sector chain broken", e.Path)
	}
	ss := w.o.sectorSize
	for k, s := range secs {
		if w.isMini(e) {
			ms := w.o.miniSize
			part := b[min(k*ms, len(b)):min((k+1)*ms, len(b))]
			off := int64(s) * int64(ms)
			j := off / int64(ss)
			if j >= int64(len(w.rootSec)) {
				return cannot("OLE2 stream %s outside the mini stream", e.Path)
			}
			if !w.put(w.rootSec[j], int(off%int64(ss)), part) {
				return cannot("OLE2 stream %s past the end of the file", e.Path)
			}
			continue
		}
		part := b[min(k*ss, len(b)):min((k+1)*ss, len(b))]
		if !w.put(s, 0, part) {
			return cannot("OLE2 stream %s past the end of the file", e.Path)
		}
	}
	return nil
}

// put copies b to offset off of sector s; false when it does not fit in
// the file.
func (w *oleWriter) put(s uint32, off int, b []byte) bool {
	start := (int64(s)+1)*int64(w.o.sectorSize) + int64(off)
	if start+int64(len(b)) > int64(len(w.out)) {
		return false
	}
	copy(w.out[start:], b)
	return true
}
