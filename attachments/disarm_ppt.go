package attachments

import "encoding/binary"

// neutralisePPTVBA takes the VBA project out of a PowerPoint 97-2003
// presentation in place, in a copy of data. PowerPoint keeps the project
// as an OLE storage, zlib-compressed, in an ExOleObjStg record (type
// 0x1011, instance 1) of the PowerPoint Document stream; the document
// points at it from its VBAInfoContainer (0x03FF, in the
// DocInfoListContainer) whose VBAInfoAtom (0x0400) holds persistIdRef,
// fHasMacros and version ([MS-PPT] 2.4.10).
//
//   - The body of every ExOleObjStg record that holds a VBA project is
//     overwritten with zeros: the record keeps its header and length (no
//     offset of the persist directory moves) but holds no storage any
//     more (a decompressed size of 0, no zlib stream).
//   - fHasMacros of every VBAInfoAtom becomes 0: the presentation says it
//     has no VBA project, so PowerPoint does not look for one.
//
// Nothing else changes; the slides, masters and other OLE objects stay.
func neutralisePPTVBA(o *OLE, data []byte) ([]byte, []string, error) {
	i := o.Find("PowerPoint Document")
	if i < 0 {
		return data, nil, nil
	}
	doc, err := o.Stream(i, 32<<20)
	if err != nil {
		return nil, nil, cannot("PowerPoint Document stream: %v", err)
	}
	doc = append([]byte(nil), doc...)
	var removed []string
	for k := 0; ; k++ {
		h, acts := pptVBAAt(doc)
		if acts == nil {
			break
		}
		if k == 16 {
			return nil, nil, cannot("more than 16 PowerPoint VBA projects")
		}
		n := int(binary.LittleEndian.Uint32(doc[h+4:]))
		clear(doc[h+8 : min(h+8+n, len(doc))])
		removed = append(removed, "PowerPoint VBA project")
	}
	if len(removed) == 0 {
		return data, nil, nil
	}
	pptVBAInfoOff(doc)
	w, err := newOLEWriter(o, data)
	if err != nil {
		return nil, nil, err
	}
	if err := w.writeStream(i, doc); err != nil {
		return nil, nil, err
	}
	return w.out, removed, nil
}

// pptVBAInfoOff sets fHasMacros to 0 in every VBAInfoAtom of a
// PowerPoint Document stream, walking its record tree (containers have
// version 0xF) to a bounded depth; it returns how many it changed.
func pptVBAInfoOff(doc []byte) int {
	changed := 0
	type span struct{ start, end, depth int }
	stack := []span{{0, len(doc), 0}}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for p := s.start; p+8 <= s.end; {
			ver := binary.LittleEndian.Uint16(doc[p:]) & 0xf
			typ := binary.LittleEndian.Uint16(doc[p+2:])
			n := int64(binary.LittleEndian.Uint32(doc[p+4:]))
			if int64(p)+8+n > int64(s.end) {
				break
			}
			body := doc[p+8 : p+8+int(n)]
			switch {
			case typ == 0x0400 && len(body) >= 12:
				binary.LittleEndian.PutUint32(body[4:], 0)
				changed++
			case ver == 0xf && s.depth < 16:
				stack = append(stack, span{p + 8, p + 8 + int(n), s.depth + 1})
			}
			p += 8 + int(n)
		}
	}
	return changed
}
