package attachments

func (s *scanner) ole(f *File, data []byte, depth int) {
	o, err := ParseOLE(data)
	if err != nil {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindOLECorrupt, Path: f.Path, File: f.Name, Detail: "OLE2: " + err.Error()})
		return
	}
	s.active(f, OLEActive(o))
	// OLE Package objects carry a file with a name: check it like an
	// archive member (MailScanner's "Unpack Microsoft Documents").
	for i, e := range o.Entries {
		if e.Type != 2 || e.Name != "\x01Ole10Native" {
			continue
		}
		b, err := o.Stream(i, s.opts.MaxFileSize)
		if err != nil {
			s.add(Finding{Category: CategoryUnscannable, Kind: KindOLECorrupt, Path: f.Path, File: f.Name, Detail: "OLE2: embedded package: " + err.Error()})
			continue
		}
		if name, content, ok := OLEPackage(b); ok {
			if name == "" {
				name = "package"
			}
			s.add(Finding{Category: CategorySuspicious, Kind: KindOLEPackage, Path: f.Path, File: f.Name, Detail: "embedded package " + truncateString(name, 80)})
			s.take(int64(len(content)))
			s.member(f, name, "ole", content, int64(len(content)), true, depth+1, "ole")
		}
	}
}
